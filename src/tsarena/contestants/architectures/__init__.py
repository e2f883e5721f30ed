"""One file per architecture, and nothing else: `<name>.py` defines `Params` and `Model` (see
tsarena.contestants.registry). Adding a file here registers it."""

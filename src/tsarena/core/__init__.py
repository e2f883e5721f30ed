"""Layer 0, what every layer uses: one error type and the stage wrapper, atomic outputs, and the
params sections' base class. Imports nothing of tsarena's."""

"""check: validate the whole params.yaml, so no edit is silently ignored.

Each stage validates only the sections it reads, and DVC runs a stage only when a key it lists
changes: a misspelt key (`train.max_epoch`) or section (`trainer:`) is listed by no stage, so on a
cached pipeline nothing would run and nothing would say so. This stage tracks the whole file, fails on
the first bad key, and notes valid edits that no stage reads (an architecture not in arena.models)
and lookbacks longer than the window (the model reads the whole window).
Its output is a constant, so a valid edit re-runs only the stages that list the key.
"""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

import yaml

from tsarena import config
from tsarena.core.errors import TsarenaError, stage_main
from tsarena.core.io import atomic_file
from tsarena.core.params import capped_lookback_note

OUT = "data/checked.txt"


def previous_params(lock: str = "dvc.lock") -> dict:
    """The params this stage last validated (dvc.lock is rewritten only after it succeeds)."""
    try:
        stage = yaml.safe_load(open(lock))["stages"]["check"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}
    return stage.get("params", {}).get(config.PARAMS_FILE, {})


def unread_edits(old: dict, new: dict, models: list[str]) -> list[str]:
    """Dotted keys whose value changed but that no stage reads: an architecture's section, or its tuning
    space, while the architecture is not in arena.models."""
    old_flat, new_flat = config.flatten(old), config.flatten(new)
    changed = sorted(k for k in old_flat.keys() | new_flat.keys() if old_flat.get(k) != new_flat.get(k))
    unused = set(config.known_sections()) - set(config.SECTIONS) - set(models)
    return [k for k in changed if k.split(".")[0] in unused
            or (k.startswith("tune.space.") and k.split(".")[2] in unused)]


@stage_main
def main() -> None:
    raw = config.read_params()
    params = {name: config.parse_section(name, raw.get(name)) for name in [*config.SECTIONS, *raw]}
    models = params["arena"].models
    if old := previous_params():
        for key in unread_edits(old, raw, models):
            print(f"note: {key} was edited, but {key.removeprefix('tune.space.').split('.')[0]} is not in "
                  f"arena.models {models}: no stage reads it")
    if params["arena"].ensemble_members and params["data"].news.path is None:
        from tsarena.contestants.baselines import SENTIMENT_ONLY  # sklearn's import: only where it can matter

        if SENTIMENT_ONLY in params["arena"].members:
            raise TsarenaError(f"{SENTIMENT_ONLY} reads news sentiment, and data.news.path is null: give the news, or "
                               f"leave {SENTIMENT_ONLY} out", "arena.ensemble_members")
    for name in models:
        section = params.get(name) or config.parse_section(name, None)
        if note := capped_lookback_note(name, getattr(section, "lookback", None), params["window"].seq_len):
            print(note)
    with atomic_file(OUT) as tmp:
        tmp.write_text("params.yaml: every section and key validated (pipeline/check.py)\n")
    print(f"check: {config.PARAMS_FILE} valid, {len(raw)} sections")


if __name__ == "__main__":
    main()

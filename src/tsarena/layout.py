"""Where each stage's outputs live: one place, so stages find producers by name, never by glob
(a stale folder of a model no longer in arena.models is never picked up)."""

from __future__ import annotations

from pathlib import Path

SPLIT = Path("data/split")
BASELINES = ("random_walk", "drift", "ar", "ridge_last", "linear")
ORACLE = "oracle"  # the known optimal forecast of a synthetic source: shown, never ranked or registered
# registry aliases compare sets: the best-ranked trained model every time, champion only on the corrected evidence
CHAMPION, BEST_RANKED = "champion", "best_ranked"


def producing_stage(name: str) -> str:
    """The DVC stage (and MLflow `stage` tag) of a contestant's parent run."""
    if name in BASELINES or name == ORACLE:
        return "baselines"
    return "ensemble" if name == "ensemble" else f"train@{name}"


def tuned_path(name: str) -> Path:
    """The configuration train@<name> uses: the tuned one, or params.yaml's as it is (tune.trials 0)."""
    return Path("data/tuned") / f"{name}.json"


def model_dir(name: str) -> Path:
    return Path("data/ensemble") if name == "ensemble" else Path("data/models") / name


def predictions_path(name: str) -> Path:
    if name in BASELINES or name == ORACLE:
        return Path("data/baselines/predictions.parquet")
    return Path("data/ensemble/predictions.parquet") if name == "ensemble" else Path("data/predictions") / f"{name}.parquet"


def trained(arena) -> list[str]:
    """The contestants that train and are logged to MLflow: the architectures, then the ensemble."""
    return [*arena.models, *(["ensemble"] if arena.ensemble else [])]


def producers(arena) -> dict[str, Path]:
    """Every contestant's predictions table: the trained ones and the baselines."""
    return {name: predictions_path(name) for name in [*trained(arena), *BASELINES]}

"""Every producer of forecasts in one table: its name, its kind, the DVC stage (and MLflow `stage` tag)
that makes it, where its predictions live and, for a trained one, its served model. The benchmark is
baselines.BENCHMARK, defined beside the baselines it is one of. Stages, report and tests read these;
nothing else spells a producer's name.

A baseline is added in baselines.py alone (its entry in BASELINES), an architecture by its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsarena.contestants.baselines import BASELINES

NEURAL, BASELINE = "neural", "baseline"
ENSEMBLE = "ensemble"  # the ensemble's name, kind and stage
ORACLE = "oracle"  # the known optimal forecast of a synthetic source: shown, never ranked or registered
SPLIT = Path("data/split")
BASELINE_PREDICTIONS = Path("data/baselines/predictions.parquet")  # every baseline's and the oracle's: one file


@dataclass(frozen=True)
class Producer:
    name: str
    kind: str  # neural | baseline | ensemble | oracle
    stage: str
    predictions: Path
    model_dir: Path | None = None  # the served model (`bundle/`, `served.json`); the oracle has none


def producer(name: str) -> Producer:
    """The row of the table for `name`: a baseline, the oracle, the ensemble, or (any other name) an architecture."""
    if name in BASELINES:
        return Producer(name, BASELINE, "baselines", BASELINE_PREDICTIONS, BASELINE_PREDICTIONS.parent / "models" / name)
    if name == ORACLE:
        return Producer(name, ORACLE, "baselines", BASELINE_PREDICTIONS)
    if name == ENSEMBLE:
        return Producer(name, ENSEMBLE, ENSEMBLE, Path("data/ensemble/predictions.parquet"), Path("data/ensemble"))
    return Producer(name, NEURAL, f"train@{name}", Path("data/predictions") / f"{name}.parquet",
                    Path("data/models") / name)


def kind(name: str) -> str:
    return producer(name).kind


def producing_stage(name: str) -> str:
    """The DVC stage (and MLflow `stage` tag) of a contestant's parent run."""
    return producer(name).stage


def predictions_path(name: str) -> Path:
    return producer(name).predictions


def model_dir(name: str) -> Path:
    return producer(name).model_dir


def without_news_path(name: str) -> Path:
    """An architecture's forecasts from the same fits without the news sentiment features (sentiment.ablate),
    inside its model folder: present only where the features held news. Evaluate tests what the news added."""
    return model_dir(name) / "without_news.parquet"


def without_news_name(name: str) -> str:
    """How the fits without news are named in tables and the report."""
    return f"{name} without news"


def tuned_path(name: str) -> Path:
    """The configuration train@<name> uses: the tuned one, or params.yaml's as it is (tune.trials 0)."""
    return Path("data/tuned") / f"{name}.json"


def trained(arena: Any) -> list[str]:
    """The contestants that train and are logged to MLflow: the architectures, then the ensemble."""
    return [*arena.models, *([ENSEMBLE] if arena.ensemble else [])]


def producers(arena: Any) -> dict[str, Path]:
    """Every contestant's predictions table: the trained ones and the baselines."""
    return {name: predictions_path(name) for name in [*trained(arena), *BASELINES]}

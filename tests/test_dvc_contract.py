"""dvc.yaml against the code: every module a stage's script imports (transitively, inside
src/tsarena) is a dependency of that stage, and every stage lists exactly the params it reads.
Otherwise DVC serves stale cached results, or re-runs for nothing."""

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


sys.path.insert(0, str(ROOT / "scripts"))
from code_deps import (SCORING_AND_PRESENTATION, closure, declared, sections_read, stages,  # noqa: E402
                       training_side)


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_code_deps_are_exactly_its_derived_closure(name):
    """Every module the stage's script imports (at any depth, in functions too) or loads by name is a dep,
    and nothing else: a missing one serves stale results, an extra one re-runs the stage for an edit that
    cannot change its outputs. `python scripts/code_deps.py --write` makes them so."""
    missing = sorted(set(closure(name)) - set(declared(name)))
    extra = sorted(set(declared(name)) - set(closure(name)))
    assert not missing and not extra, f"{name}: dvc.yaml misses {missing}, lists beyond its imports {extra}"


@pytest.mark.parametrize("name", [s for s in sorted(stages()) if training_side(s)])
def test_no_stage_that_makes_forecasts_depends_on_code_that_only_scores_or_presents(name):
    """The closure contract (scripts/code_deps.py's table): rewording the report or adding a metric never
    retrains a network, refits a baseline or rebuilds the data."""
    assert not set(closure(name)) & set(SCORING_AND_PRESENTATION), name


WHOLE_FILE = {"params.yaml": None}  # dvc.yaml's `- params.yaml:`: every key of the file


def test_one_stage_tracks_the_whole_params_file_and_everything_runs_after_it():
    """`check` validates every section (an edit no other stage lists still runs it); ingest, the root of
    every other stage, depends on its output, so nothing runs before it."""
    whole = [name for name, stage in stages().items() if WHOLE_FILE in stage.get("params", [])]
    assert whole == ["check"] and stages()["check"]["params"] == [WHOLE_FILE]
    (out,) = stages()["check"]["outs"]
    assert out in stages()["ingest"]["deps"]
    assert "config.read_params()" in (ROOT / "pipeline/check.py").read_text()


@pytest.mark.parametrize("name", sorted(set(stages()) - {"check"}))
def test_stage_lists_exactly_the_params_it_reads(name):
    stage = stages()[name]
    declared = {p.split(".")[0] for p in stage.get("params", [])}
    read = sections_read(ROOT / stage["cmd"].split()[1], name)
    assert declared == read, f"{name}: dvc.yaml lists {declared}, code reads {read}"


@pytest.mark.parametrize("name", __import__("tsarena.contestants.registry", fromlist=["x"]).architecture_names())
def test_every_listed_param_is_in_params_yaml_for_any_contestant(name):
    """DVC refuses a listed param that params.yaml lacks ("Parameters ... are missing"), so a default
    that only the code knows is not enough: every dotted key must be in the file, for any architecture
    a user may list in arena.models."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for stage_name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        body = stage.get("do", stage)
        for key in body.get("params", []):
            if key == WHOLE_FILE:
                continue
            node = params
            for part in key.replace("${item}", name).split("."):
                assert isinstance(node, dict) and part in node, f"{stage_name}: {key} ({name}) is not in params.yaml"
                node = node[part]


def test_tuning_lists_every_training_param_it_trains_with():
    """A trial trains with the whole train section but the seeds (tune.seed replaces them) and jobs."""
    from tsarena.config import SPEED_ONLY
    from tsarena.fitting.params import TrainParams

    listed = set(stages()["tune@lstm"]["params"])
    assert {f"train.{field}" for field in TrainParams.model_fields} - {"train.seeds", *SPEED_ONLY} <= listed
    assert not {"train.seeds", "train", *SPEED_ONLY} & listed


def test_training_lists_every_training_param_but_the_speed_knobs():
    """train.jobs and where the fits run (backend, the Ray cluster, the GPU share) change no result (fits are
    bit-identical side by side and on Ray), so editing them re-runs nothing; every other train field changes a
    fit and is listed."""
    from tsarena.config import SPEED_ONLY
    from tsarena.fitting.params import TrainParams

    listed = set(stages()["train@lstm"]["params"])
    assert SPEED_ONLY == ("train.jobs", "train.backend", "train.ray_address", "train.gpus_per_fit")
    assert {f"train.{field}" for field in TrainParams.model_fields} - set(SPEED_ONLY) <= listed
    assert not {"train", *SPEED_ONLY} & listed


def test_a_lookback_longer_than_the_window_is_said_by_check(new_repo):
    """A model reads at most the window: a longer `lookback` (patchtst's shipped 20 under a 10-step window, a
    user's 50) would change nothing params.yaml shows, so check names each such contestant in arena.models."""
    repo = new_repo({"arena": {"models": ["patchtst", "lstm", "mlp"]}, "lstm": {"lookback": 50}, "mlp": {"lookback": 10}})
    out = repo.dvc("repro", "check").stdout
    notes = [line for line in out.splitlines() if "lookback" in line]
    assert notes == ["note: patchtst.lookback is 20, longer than window.seq_len 10: patchtst reads the whole window (10 steps)",
                     "note: lstm.lookback is 50, longer than window.seq_len 10: lstm reads the whole window (10 steps)"]

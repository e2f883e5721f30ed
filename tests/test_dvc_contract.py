"""dvc.yaml against the code: every module a stage's script imports (transitively, inside
src/tsarena) is a dependency of that stage, and every stage lists exactly the params it reads.
Otherwise DVC serves stale cached results, or re-runs for nothing."""

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def stages() -> dict[str, dict]:
    """dvc.yaml's stages with `foreach` expanded over params.yaml's arena.models, as DVC does."""
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    out = {}
    for name, stage in raw.items():
        if "foreach" not in stage:
            out[name] = stage
            continue
        assert stage["foreach"] == "${arena.models}"
        for item in params["arena"]["models"]:
            text = yaml.safe_dump(stage["do"]).replace("${item}", item)
            out[f"{name}@{item}"] = yaml.safe_load(text)
    return out


def module_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_files(path: Path, seen: set[Path] | None = None) -> set[Path]:
    """tsarena files `path` imports anywhere (top level or inside functions), with their packages."""
    seen = set() if seen is None else seen
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if not name.startswith("tsarena"):
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                found = module_file(".".join(parts[:i]))
                if found and found not in seen:
                    seen.add(found)
                    imported_files(found, seen)
    return seen


def dynamic_files(stage_name: str) -> set[Path]:
    """What a stage loads by name rather than by import: a train stage's architecture file, and the params
    class of each section it reads (config.SECTIONS: module paths, imported when the section is loaded);
    `check` reads every section, every architecture's included."""
    from tsarena.config import SECTIONS

    files = set()
    if "@" in stage_name:
        files.add(SRC / "tsarena" / "contestants" / "architectures" / f"{stage_name.split('@')[1]}.py")
    script = ROOT / stages()[stage_name]["cmd"].split()[1]
    read = set(SECTIONS) if stage_name == "check" else sections_read(script, stage_name)
    files |= {module_file(SECTIONS[name].split(":")[0]) for name in read if name in SECTIONS}
    if stage_name == "check":
        files |= set((SRC / "tsarena" / "contestants" / "architectures").glob("*.py"))
    return files


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(dep) or Path(dep) in rel.parents for dep in deps)


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_depends_on_every_module_its_script_imports(name):
    stage = stages()[name]
    script = ROOT / stage["cmd"].split()[1]
    needed = {script} | imported_files(script)
    for path in dynamic_files(name):
        needed |= {path} | imported_files(path)
    if SRC / "tsarena" / "serving" / "bundle.py" in needed:  # the models-from-code file handed to MLflow by path
        needed.add(SRC / "tsarena" / "serving" / "pyfunc_model.py")
    missing = sorted(str(p.relative_to(ROOT)) for p in needed if not covered(p, stage["deps"]))
    assert not missing, f"{name}: dvc.yaml misses code deps {missing}"


def sections_read(script: Path, stage_name: str) -> set[str]:
    """The params sections a stage script validates: its config.load(...) arguments; a bare `name`
    argument is the architecture the templated stage was given."""
    names = set()
    for call in re.findall(r"config\.load\(([^)]*)\)", script.read_text()):
        names |= set(re.findall(r'"(\w+)"', call))
        if re.search(r"(^|,\s*)name(\s*,|$)", call):
            names.add(stage_name.split("@")[1])
    return names


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

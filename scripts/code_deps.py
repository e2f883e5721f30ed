"""Each stage's code closure, derived from its imports, and dvc.yaml's code deps rewritten to equal it.

A stage's code deps are its script, every tsarena module it imports (top level or inside a function,
transitively, with their packages), what it loads by name (a train stage's architecture file, the params
class of each section it reads) and their imports. tests/test_dvc_contract.py fails when dvc.yaml differs.

    python scripts/code_deps.py          # says which stages differ
    python scripts/code_deps.py --write  # rewrites their code deps in dvc.yaml (comments and order kept)
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
ITEM = "${item}"


# The closure contract: what only scores or presents results, and the stages that make the forecasts, which
# never depend on it (an edit to the report re-runs compare only; to a metric, evaluate and what reads it)
SCORING_AND_PRESENTATION = [f"src/tsarena/{m}.py" for m in (
    "judging/report", "judging/plots", "judging/referee", "judging/significance", "judging/metrics",
    "judging/scoring", "judging/trading", "judging/attributions", "judging/params", "judging/difference",
    "tracking/registry")]
TRAINING_SIDE = ("ingest", "sentiment", "feature", "split", "tune@", "train@", "baselines", "ensemble")


def training_side(stage_name: str) -> bool:
    return stage_name.startswith(TRAINING_SIDE) and (stage_name in TRAINING_SIDE or "@" in stage_name)


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
            out[f"{name}@{item}"] = yaml.safe_load(yaml.safe_dump(stage["do"]).replace(ITEM, item))
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


def sections_read(script: Path, stage_name: str) -> set[str]:
    """The params sections a stage script reads: its config.load(...) arguments (a bare `name` argument is
    the architecture the templated stage was given), and `numerics` where it imports the pin."""
    names = {"numerics"} if "import tsarena.core.pinned" in script.read_text() else set()  # the pin reads it
    for call in re.findall(r"config\.load\(([^)]*)\)", script.read_text()):
        names |= set(re.findall(r'"(\w+)"', call))
        if re.search(r"(^|,\s*)name(\s*,|$)", call):
            names.add(stage_name.split("@")[1])
    return names


def dynamic_files(stage_name: str) -> set[Path]:
    """What a stage loads by name rather than by import: a train stage's architecture file, and the params
    class of each section it reads (config.SECTIONS: module paths, imported when the section is loaded);
    `check` reads every section, every architecture's included."""
    sys.path.insert(0, str(SRC))
    from tsarena.config import SECTIONS

    files = set()
    if "@" in stage_name:
        files.add(SRC / "tsarena" / "contestants" / "architectures" / f"{stage_name.split('@')[1]}.py")
    script = ROOT / stages()[stage_name]["cmd"].split()[1]
    read = set(SECTIONS) if stage_name == "check" else sections_read(script, stage_name)
    files |= {module_file(SECTIONS[name].split(":")[0]) for name in read if name in SECTIONS}
    if stage_name == "check":
        files |= set((SRC / "tsarena" / "contestants" / "architectures").glob("*.py"))
    return {f for f in files if f is not None}


def closure(stage_name: str) -> list[str]:
    """The stage's code deps, relative to the repo: its script first, then the package's files sorted."""
    script = ROOT / stages()[stage_name]["cmd"].split()[1]
    needed = imported_files(script)
    for path in dynamic_files(stage_name):
        needed |= {path} | imported_files(path)
    if SRC / "tsarena" / "serving" / "bundle.py" in needed:  # the models-from-code file handed to MLflow by path
        needed.add(SRC / "tsarena" / "serving" / "pyfunc_model.py")
    return [str(script.relative_to(ROOT))] + sorted(str(p.relative_to(ROOT)) for p in needed - {script})


def is_code(dep: str) -> bool:
    """A module dvc.yaml lists by file; a folder (what a stage loads by name at run time, such as the served
    bundles' architectures) is declared by hand, with its reason beside it."""
    return dep.startswith(("pipeline/", "src/")) and not (ROOT / dep).is_dir()


def declared(stage_name: str) -> list[str]:
    return [d for d in stages()[stage_name]["deps"] if is_code(d)]


def templated(stage: str, item: str, deps: list[str]) -> list[str]:
    return [d.replace(f"architectures/{item}.py", f"architectures/{ITEM}.py") for d in deps]


def write() -> list[str]:
    """Rewrite every stage's code deps in dvc.yaml as the derived closure; the stages changed."""
    text = (ROOT / "dvc.yaml").read_text()
    raw = yaml.safe_load(text)["stages"]
    items = yaml.safe_load((ROOT / "params.yaml").read_text())["arena"]["models"]
    changed = []
    for name, stage in raw.items():
        if "foreach" in stage:
            wanted = {tuple(templated(name, i, closure(f"{name}@{i}"))) for i in items}
            assert len(wanted) == 1, f"{name}: the templated stages' closures differ beyond their architecture file"
            new = list(wanted.pop())
        else:
            new = closure(name)
        old = [d for d in (stage["do"] if "foreach" in stage else stage)["deps"] if is_code(d)]
        if old == new:
            continue
        changed.append(name)
        block = re.search(rf"^  {re.escape(name)}:\n(.*?)(?=^  \S|\Z)", text, re.M | re.S)
        body = block.group(1)
        deps = re.search(r"^(\s+)deps:\n((?:\1  - .*\n)+)", body, re.M)
        indent = deps.group(1) + "  "
        lines = deps.group(2).splitlines(keepends=True)
        kept = [line for line in lines if not is_code(line.strip()[2:].split("#")[0].strip())]
        body = body.replace(deps.group(2), "".join(f"{indent}- {d}\n" for d in new) + "".join(kept))
        text = text[:block.start(1)] + body + text[block.end(1):]
    (ROOT / "dvc.yaml").write_text(text)
    return changed


if __name__ == "__main__":
    if "--write" in sys.argv:
        print("rewrote", write() or "nothing")
    else:
        differ = [s for s in stages() if declared(s) != closure(s)]
        print("differ:", differ or "none")
        sys.exit(1 if differ else 0)

"""The package's layout is its architecture: layers that import only downwards, no import cycle, and every
producer and metric name written once (its one definition), so the next change cannot miss a copy."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tsarena"
# bottom to top: a module imports only from its own layer or one below (README "Architecture")
LAYERS = ["core", "data", "split", "contestants", "fitting", "judging", "tracking", "serving", "config", "cli"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    return 0 if len(parts) == 1 else LAYERS.index(parts[1])  # tsarena/__init__: the version, at the bottom


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every tsarena import in the file, top level or inside a function, except those under
    `if TYPE_CHECKING:` (type hints only: never run)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for child in node.body for n in ast.walk(child)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("tsarena")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("tsarena"):
            for alias in node.names:  # `from tsarena.x import y`: y may be a module of x
                sub = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").is_file() or \
                    (PACKAGE.parent / sub.replace(".", "/")).is_dir()
                found.append((node.lineno, sub if is_module else node.module))
    return found


def test_every_module_is_in_a_layer_and_imports_only_from_its_own_or_below():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        mine = module_name(path)
        for line, other in imports(path):
            if other != "tsarena" and layer(other) > layer(mine):
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({LAYERS[layer(mine)]}) imports {other} "
                             f"({LAYERS[layer(other)]})")
    assert not wrong, "imports that run up the layers:\n" + "\n".join(wrong)


def test_the_layers_are_the_packages_folders():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert folders | modules == set(LAYERS)


CYCLE_CHECK = r"""
import builtins, importlib, importlib.abc, pkgutil, sys
loading, cycles = [], []

class Watch(importlib.abc.MetaPathFinder):
    "Marks a tsarena module as loading while its body runs."
    def find_spec(self, name, path, target=None):
        if not name.startswith("tsarena"):
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        else:
            return None
        run = spec.loader.exec_module
        def exec_module(module, run=run, name=name):
            loading.append(name)
            try:
                run(module)
            finally:
                loading.pop()
        spec.loader.exec_module = exec_module
        return spec

real = builtins.__import__
def watched(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name.startswith("tsarena") and name in loading[:-1]:
        cycles.append(" -> ".join([*loading, name]))
    return real(name, globals, locals, fromlist, level)

sys.meta_path.insert(0, Watch())
builtins.__import__ = watched
import tsarena
for info in pkgutil.walk_packages(tsarena.__path__, "tsarena."):
    importlib.import_module(info.name)
print("\n".join(cycles) if cycles else "no cycle")
"""


def test_importing_every_module_in_a_fresh_interpreter_meets_no_cycle():
    """A module that imports one still running its own imports is a cycle (it sees a half-built module); the
    hook fails on one while every module of the package is imported."""
    out = subprocess.run([sys.executable, "-c", CYCLE_CHECK], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(PACKAGE.parent), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "no cycle", out.stdout


def string_constants(paths: list[Path]) -> dict[str, list[str]]:
    """Every string literal (whole, not inside another string) -> where it is written."""
    where: dict[str, list[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                where.setdefault(node.value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return where


def names_to_write_once() -> dict[str, str]:
    """Producer names and kinds, and every metric's names (its column, interval bounds, metrics.json name)."""
    from tsarena.contestants.baselines import BASELINES
    from tsarena.contestants.producers import BASELINE, ENSEMBLE, NEURAL, ORACLE
    from tsarena.judging.metrics import BY_NAME, HEADLINE

    return {**{name: "producer" for name in [*BASELINES, ORACLE, ENSEMBLE, NEURAL, BASELINE]},
            **{name: "metric" for name in [*BY_NAME, *HEADLINE]}}


@pytest.mark.parametrize("name, what", sorted(names_to_write_once().items()))
def test_a_producer_or_metric_name_is_written_once_in_the_code(name, what):
    """The package and the stage scripts spell each name once, where it is defined; everything else uses
    the constant (a new metric or baseline cannot be missed by a table that lists names again)."""
    code = sorted([*PACKAGE.rglob("*.py"), *(ROOT / "pipeline").glob("*.py")])
    places = string_constants(code).get(name, [])
    assert len(places) == 1, f"{what} {name!r} is written {len(places)} times: {places}"

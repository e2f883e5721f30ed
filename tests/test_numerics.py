"""Portable numerics: every process that computes a tracked number pins the CPU kernels before numpy or
PyTorch loads, so one commit gives the same bits on any x86-64 CPU with AVX2. Machines without AVX-512 are
emulated here with the libraries' own switches; `native` must differ under them (so the test can fail)."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import make_repo
from tsarena.core import numerics

ROOT = Path(__file__).resolve().parents[1]
# what another x86-64 CPU would choose, as far as this one can be made to: its defaults, set before start
MACHINES = {
    "this CPU (AVX-512)": {},
    "a CPU without AVX-512": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                              "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Haswell"},
    "AVX-512 everywhere, OpenBLAS's SkylakeX kernels": {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AVX512",
                                                        "OPENBLAS_CORETYPE": "SkylakeX"},
    "ATen's default kernels, more threads": {"ATEN_CPU_CAPABILITY": "default", "OPENBLAS_NUM_THREADS": "2",
                                             "OMP_NUM_THREADS": "2"},
}


def entry_points() -> list[Path]:
    return [*sorted((ROOT / "pipeline").glob("*.py")), ROOT / "src/tsarena/cli.py"]


@pytest.mark.parametrize("path", entry_points(), ids=lambda p: p.name)
def test_every_entry_point_pins_before_it_imports_anything_else(path):
    """The pin is the first import of each stage script and of the CLI: numpy reads its knobs when imported."""
    tree = ast.parse(path.read_text())
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
               and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]
    first = imports[0]
    assert isinstance(first, ast.Import) and first.names[0].name == "tsarena.core.pinned", path


def test_pin_sets_every_knob_for_this_process_and_its_children(monkeypatch):
    for name in [*numerics.PORTABLE_ENVIRONMENT, numerics.MODE_VARIABLE]:
        monkeypatch.delenv(name, raising=False)
    import numpy  # noqa: F401  loaded before the pin, as in a notebook

    assert numerics.pin("portable") == ["numpy"]  # too late for numpy's knobs: said, not hidden
    child = subprocess.run([sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
                           capture_output=True, text=True, check=True)
    inherited = json.loads(child.stdout)
    assert {k: inherited[k] for k in numerics.PORTABLE_ENVIRONMENT} == numerics.PORTABLE_ENVIRONMENT
    assert inherited[numerics.MODE_VARIABLE] == "portable"
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx512")
    numerics.pin("native")  # native leaves the machine's (and the user's) settings alone
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx512" and os.environ[numerics.MODE_VARIABLE] == "native"


def test_the_mode_comes_from_params_and_a_bad_value_is_the_check_stage_s_error(tmp_path):
    from tsarena import config
    from tsarena.core.errors import TsarenaError

    params = tmp_path / "params.yaml"
    assert numerics.mode_from_params(params) == "portable"  # no file: the default
    params.write_text("numerics:\n  mode: native\n")
    assert numerics.mode_from_params(params) == "native"
    params.write_text("numerics:\n  mode: fast\n")
    with pytest.raises(TsarenaError, match=r"numerics\.mode"):
        config.load("numerics", path=params)
    assert yaml.safe_load((ROOT / "params.yaml").read_text())["numerics"] == {"mode": "portable"}


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("numerics") / "repo",
                     {"data": {"synthetic": {"n_days": 1000}}, "train": {"max_epochs": 2}})
    repo.dvc("repro", "split")
    return repo


def run_as(repo, machine: dict[str, str], mode: str, scratch: Path) -> dict[str, str]:
    """numerics_run.py in a fresh process started with `machine`'s settings, params.yaml in `mode`."""
    folder = scratch / mode
    folder.mkdir(parents=True, exist_ok=True)
    params = {**repo.params, "numerics": {"mode": mode}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in repo.env().items() if k not in numerics.PORTABLE_ENVIRONMENT}
    env.update(machine)
    proc = subprocess.run([sys.executable, str(ROOT / "tests/numerics_run.py"), str(repo.path / "data/split"),
                           str(folder)], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.system
def test_portable_numerics_give_the_same_bits_on_every_emulated_cpu_and_native_does_not(split, tmp_path):
    portable = {name: run_as(split, machine, "portable", tmp_path / str(i)) for i, (name, machine) in enumerate(MACHINES.items())}
    assert all(r["mode"] == "portable" for r in portable.values())
    reference = portable["this CPU (AVX-512)"]
    for name, result in portable.items():
        assert result == reference, name
    native = {name: run_as(split, machine, "native", tmp_path / f"n{i}") for i, (name, machine) in enumerate(MACHINES.items())}
    # each knob the pin sets moves some number when left to the machine: the linear baseline (OpenBLAS's
    # threads), the fits (ATen's kernels), and on a CPU with AVX-512 the prices too (numpy's exp)
    avx512 = "avx512f" in Path("/proc/cpuinfo").read_text()
    for what in ("linear", "lstm", "transformer", *(["prices"] if avx512 else [])):
        assert len({r[what] for r in native.values()}) > 1, (what, native)

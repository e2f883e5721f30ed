"""Benchmark 3: wall time of a cold `dvc repro` on the default data, a no-op `dvc repro`, and
a repro after editing one `lstm.*` param (only train@lstm and what reads it may run).
The no-op is timed --noop-rounds times, alternating with and without ruamel's C YAML parser
(ruamel.yaml.clib, hidden by a module on PYTHONPATH that fails to import): DVC parses params.yaml
and dvc.lock once per stage, 17 parses for this pipeline.
With --robust, also `dvc exp run -S 'train.seeds=[0,1,2]' -S window.folds=4` (~12 min here).

Works in a temporary copy of this repo (fresh git + DVC, its own MLflow store).
    python benchmarks/pipeline.py [--robust]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from common import edit_params, save, table

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def sh(cwd: Path, *cmd: str, path: str = "") -> tuple[float, str]:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(Path.home()), "CI": "true",
           "PYTHONPATH": ":".join(p for p in (path, str(cwd / "src")) if p),
           "GIT_AUTHOR_NAME": "b",
           "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, out


def fresh_repo(prefix: str, **sections: dict) -> Path:
    """A temporary copy of this repo (its own git, DVC and MLflow store), params.yaml edited, committed."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    for item in ("dvc.yaml", "params.yaml", "pipeline", "src", "data/input", ".gitignore", ".dvcignore"):
        (shutil.copytree if (ROOT / item).is_dir() else shutil.copy)(ROOT / item, work / item)
    edit_params(work, **sections)
    sh(work, "git", "init", "-q")
    sh(work, str(BIN / "dvc"), "init", "-q")
    sh(work, "git", "add", "-A")
    sh(work, "git", "commit", "-qm", "bench")
    return work


def repro(work: Path, label: str, *cmd: str) -> dict:
    """Time a DVC command; the row says which stages it ran."""
    seconds, out = sh(work, str(BIN / "dvc"), *(cmd or ("repro",)))
    stages = re.findall(r"Running stage '([\w@]+)'", out)
    return {"run": label, "seconds": round(seconds, 2), "stages_run": ",".join(stages) or "-"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--robust", action="store_true", help="also time 3 seeds x 4 walk-forward folds")
    parser.add_argument("--noop-rounds", type=int, default=7)
    args = parser.parse_args()
    work = fresh_repo("tsarena-bench-")
    rows = [repro(work, "cold dvc repro (default data)"), *noop_side_by_side(work, args.noop_rounds)]
    edit_params(work, lstm={"hidden_size": 48})
    rows.append(repro(work, "after editing lstm.hidden_size"))
    if args.robust:
        rows.append(repro(work, "3 seeds x 4 walk-forward folds (dvc exp run)",
                          "exp", "run", "-S", "train.seeds=[0,1,2]", "-S", "window.folds=4"))
    print(table(rows, ["run", "seconds", "stages_run"]))
    print("->", save("pipeline", {"rows": rows}))
    shutil.rmtree(work, ignore_errors=True)


def noop_side_by_side(work: Path, rounds: int) -> list[dict]:
    """Median no-op `dvc repro`, with and without the C YAML parser, alternating."""
    import statistics

    hide = Path(tempfile.mkdtemp(prefix="tsarena-noclib-"))
    (hide / "_ruamel_yaml.py").write_text("raise ImportError('hidden by benchmarks/pipeline.py')\n")
    times: dict[str, list[float]] = {"C parser (ruamel.yaml.clib)": [], "pure-Python parser": []}
    for _ in range(rounds):
        for label, path in (("C parser (ruamel.yaml.clib)", ""), ("pure-Python parser", str(hide))):
            seconds, out = sh(work, str(BIN / "dvc"), "repro", path=path)
            assert "Running stage" not in out, out
            times[label].append(seconds)
    shutil.rmtree(hide, ignore_errors=True)
    return [{"run": f"no-op dvc repro, {label}, median of {rounds}", "seconds": round(statistics.median(t), 2),
             "stages_run": "-"} for label, t in times.items()]


if __name__ == "__main__":
    main()

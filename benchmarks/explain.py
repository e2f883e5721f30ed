"""Benchmark 9: what the explain stage costs `make run` on the default data. Forced `dvc repro -f` of the
whole pipeline with explain.enabled true and false, alternating (--rounds pairs), in a temporary copy of
this repo.
    python benchmarks/explain.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics

from common import edit_params, save, table
from pipeline import BIN, fresh_repo, sh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = fresh_repo("tsarena-bench-explain-")
    sh(work, str(BIN / "dvc"), "repro")  # warm: data downloaded/cached, imports compiled
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for enabled in (True, False):
            edit_params(work, explain={"enabled": enabled})
            seconds, _ = sh(work, str(BIN / "dvc"), "repro", "-f")
            times[enabled].append(round(seconds, 1))
    on, off = statistics.median(times[True]), statistics.median(times[False])
    rows = [{"run": "dvc repro -f, explain.enabled true", "median_s": round(on, 1), "runs": times[True]},
            {"run": "dvc repro -f, explain.enabled false", "median_s": round(off, 1), "runs": times[False]},
            {"run": "added by explain", "median_s": round(on - off, 1), "runs": f"{100 * (on - off) / off:.1f}%"}]
    print(table(rows, ["run", "median_s", "runs"]))
    print("->", save("explain", {"rows": rows, "rounds": args.rounds}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

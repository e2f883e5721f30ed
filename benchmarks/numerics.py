"""Benchmark 12: what portable numerics cost. Training throughput (samples/s: forward, backward, AdamW step,
batch 64, 60 steps of 15 features, one thread, each architecture at its shipped defaults) with the CPU kernels
pinned to AVX2 (`numerics.mode: portable`) and left to this CPU (`native`). The pin must precede torch's
import, so each measurement is its own process: portable and native alternate, round after round.

    python benchmarks/numerics.py [--rounds 3] [--batches 20]
    python benchmarks/numerics.py --pipeline [--rounds 2]   # cold `dvc repro` of the default data, each mode

With --pipeline: a cold `dvc repro` on the default data (what `make run` runs) in a fresh copy of the repo per
mode and round, alternating, and `tsarena diff` between the last portable and native workspaces (on this CPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from common import save, table

N_FEATURES, SEQ_LEN, BATCH = 15, 60, 64


def child(mode: str, batches: int) -> dict[str, float]:
    """In this process: pin, then every architecture's samples/s."""
    from tsarena.core.numerics import pin

    pin(mode)
    import torch

    from tsarena.contestants.registry import architecture_names, build_model

    torch.set_num_threads(1)
    rates = {}
    for name in architecture_names():
        torch.manual_seed(0)
        model = build_model(name, {}, {"n_features": N_FEATURES, "seq_len": SEQ_LEN})
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x, y = torch.randn(BATCH, SEQ_LEN, N_FEATURES), torch.randn(BATCH)

        def step() -> None:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()

        for _ in range(3):
            step()
        start = time.perf_counter()
        for _ in range(batches):
            step()
        rates[name] = batches * BATCH / (time.perf_counter() - start)
    rates["capability"] = torch.backends.cpu.get_cpu_capability()
    return rates


def pipeline(rounds: int) -> None:
    """Cold `dvc repro` per mode, alternating; then how the two modes' results differ."""
    from pipeline import BIN, fresh_repo, repro

    rows, last = [], {}
    for round_ in range(rounds):
        for mode in (("portable", "native") if round_ % 2 == 0 else ("native", "portable")):
            work = fresh_repo(f"numerics-{mode}-", numerics={"mode": mode})
            rows.append({"mode": mode, **repro(work, f"cold dvc repro, round {round_ + 1}")})
            last[mode] = work
    print(table(rows, ["mode", "run", "seconds", "stages_run"]))
    for mode in ("portable", "native"):
        print(f"{mode}: median {statistics.median(r['seconds'] for r in rows if r['mode'] == mode):.1f} s")
    diff = subprocess.run([str(BIN / "tsarena"), "diff", str(last["portable"]), str(last["native"])],
                          capture_output=True, text=True)
    print(f"tsarena diff portable native (exit {diff.returncode}):\n{diff.stdout}{diff.stderr}")
    print("->", save("numerics_pipeline", {"rows": rows, "diff": diff.stdout, "diff_exit": diff.returncode}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--child", choices=["portable", "native"])
    parser.add_argument("--pipeline", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.batches)))
        return
    if args.pipeline:
        pipeline(args.rounds)
        return
    runs: dict[str, list[dict]] = {"portable": [], "native": []}
    for round_ in range(args.rounds):
        for mode in (("portable", "native") if round_ % 2 == 0 else ("native", "portable")):
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--batches", str(args.batches)],
                                 capture_output=True, text=True, check=True).stdout
            runs[mode].append(json.loads(out.strip().splitlines()[-1]))
    names = [k for k in runs["portable"][0] if k != "capability"]
    rows = []
    for name in names:
        portable = statistics.median(r[name] for r in runs["portable"])
        native = statistics.median(r[name] for r in runs["native"])
        rows.append({"model": name, "portable_samples_per_s": round(portable), "native_samples_per_s": round(native),
                     "portable_cost": round(native / portable, 2)})
    print(table(rows, ["model", "portable_samples_per_s", "native_samples_per_s", "portable_cost"]))
    print(f"kernels: portable {runs['portable'][0]['capability']}, native {runs['native'][0]['capability']}; "
          f"median of {args.rounds} alternating rounds, {args.batches} timed batches each, 1 thread")
    print("->", save("numerics", {"rounds": args.rounds, "batches": args.batches, "rows": rows}))


if __name__ == "__main__":
    main()

"""Benchmark 5: train.compile (torch.compile of the model for training) per architecture.

Each architecture at its params.yaml defaults is trained by the engine for --epochs epochs on
4,000 training windows of 60 x 15 (batch 64, --threads threads), eager and compiled, alternating.
Per-epoch times come from the epoch callback: the steady epoch is the median of epochs 2..E; the
compile cost is the compiled first epoch minus a steady one. "Pays after" is how many epochs it
takes for the faster steady epochs to win the compile cost back (a default fit runs 6-20).
    python benchmarks/compile.py [--epochs 4] [--threads 1] [--models lstm tcn ...]
"""

from __future__ import annotations

import argparse
import time

import torch

from common import default_shaped_data, median, save, table
from overhead import SEQ_LEN, default_params
from tsarena.fitting.params import TrainParams
from tsarena.contestants.registry import build_model
from tsarena.fitting.engine import fit, loss_function, seed_all


def epoch_times(name: str, config: dict, data, params: TrainParams) -> list[float]:
    matrix, targets, ends = data
    seed_all(0)
    model = build_model(name, config, {"n_features": matrix.shape[1], "seq_len": SEQ_LEN})
    stamps = [time.perf_counter()]
    fit(model, matrix, targets, ends, SEQ_LEN, params, loss_function("return"), 0,
        on_epoch=lambda row: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="*", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = default_shaped_data(n_rows=round(4000 / 0.7) + SEQ_LEN - 1, seq_len=SEQ_LEN)
    rows = []
    for name, config in default_params().items():
        if args.models and name not in args.models:
            continue
        runs = {}
        for compiled in (False, True):
            params = TrainParams(max_epochs=args.epochs, patience=args.epochs + 1, scheduler="none",
                                 accelerator="cpu", compile=compiled)
            try:
                runs[compiled] = epoch_times(name, config, data, params)
            except Exception as exc:  # a model torch.compile cannot handle: say so, measure the rest
                runs[compiled] = None
                print(f"{name}: compile failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
        eager, comp = runs[False], runs[True]
        steady_e = median(eager[1:])
        row = {"model": name, "eager_s_per_epoch": round(steady_e, 3)}
        if comp:
            steady_c = median(comp[1:])
            cost = comp[0] - steady_c
            gain = steady_e - steady_c
            row.update(compiled_s_per_epoch=round(steady_c, 3), speedup=round(steady_e / steady_c, 2),
                       compile_cost_s=round(cost, 1),
                       pays_after_epochs=round(cost / gain, 1) if gain > 0 else "never")
        else:
            row.update(compiled_s_per_epoch="failed", speedup="", compile_cost_s="", pays_after_epochs="never")
        rows.append(row)
        print(row, flush=True)
    print(table(rows, ["model", "eager_s_per_epoch", "compiled_s_per_epoch", "speedup", "compile_cost_s",
                       "pays_after_epochs"]))
    print("->", save("compile", {"epochs": args.epochs, "threads": args.threads, "rows": rows}))


if __name__ == "__main__":
    main()

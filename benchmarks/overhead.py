"""Benchmark 1: our training engine (Lightning fit, validation, best-epoch weights, early stopping)
versus a plain bare PyTorch loop doing the same work: same model, data, batch, epochs, threads; for
every registered architecture at its params.yaml defaults (seconds per epoch on 4,000 training
windows of 60 x 15, training throughput, and the engine's speed relative to the bare loop).

Runs alternate (ours, bare, bare deterministic, ours, ...) in one process so drift hits all alike.
The bare loop is plain (no torch.use_deterministic_algorithms), as the engine is on CPU, where a
seeded fit is bit-identical without it; a third loop with it on measures what it would cost. The
engine's fixed costs per fit (building the Trainer) are timed on their own.
    python benchmarks/overhead.py [--epochs 3] [--repeats 3] [--threads 1] [--models lstm tcn ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from common import default_shaped_data, median, save, table, timed
from tsarena.fitting.params import TrainParams
from tsarena.contestants.registry import architecture_names, build_model, n_parameters
from tsarena.fitting.engine import BestWeights, fit, loss_function, make_trainer, seed_all

SEQ_LEN = 60
ROOT = Path(__file__).resolve().parents[1]


def default_params() -> dict[str, dict]:
    """Every registered architecture at its params.yaml block (= its defaults)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    return {name: raw[name] for name in architecture_names()}


def bare_loop(model, matrix, targets, ends, params: TrainParams, loss_fn, seed: int, deterministic: bool = False) -> None:
    """What fit() does, by hand: shuffled train batches, grad clipping, AdamW, a val pass per epoch."""
    torch.use_deterministic_algorithms(deterministic)
    torch.manual_seed(seed)
    x, y = torch.from_numpy(matrix), torch.from_numpy(targets)
    offsets = torch.arange(-SEQ_LEN + 1, 1)
    train, val = torch.as_tensor(ends["train"]), torch.as_tensor(ends["val"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(params.max_epochs):
        model.train()
        for batch in train[torch.randperm(len(train), generator=generator)].split(params.batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch.unsqueeze(1) + offsets]), y[batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for batch in val.split(params.batch_size):
                loss_fn(model(x[batch.unsqueeze(1) + offsets]), y[batch])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (train.threads; default 1)")
    parser.add_argument("--train-windows", type=int, default=4000)
    parser.add_argument("--models", nargs="*", default=None, help="default: every registered architecture")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {name: config for name, config in default_params().items() if not args.models or name in args.models}
    matrix, targets, ends = default_shaped_data(n_rows=round(args.train_windows / 0.7) + SEQ_LEN - 1, seq_len=SEQ_LEN)
    params = TrainParams(max_epochs=args.epochs, patience=args.epochs + 1, scheduler="none", accelerator="cpu")
    loss_fn = loss_function("return")
    trainer_s = median([timed(lambda: make_trainer(params, [BestWeights()])) for _ in range(7)])
    rows = []
    for name, config in models.items():
        def make():
            seed_all(0)
            return build_model(name, config, {"n_features": matrix.shape[1], "seq_len": SEQ_LEN})

        fit(make(), matrix, targets, ends, SEQ_LEN, params, loss_fn, 0)  # warm-up: first-call costs hit neither side
        ours, bare, loose = [], [], []
        for _ in range(args.repeats):
            model = make()
            ours.append(timed(lambda: fit(model, matrix, targets, ends, SEQ_LEN, params, loss_fn, 0)) / args.epochs)
            model = make()
            bare.append(timed(lambda: bare_loop(model, matrix, targets, ends, params, loss_fn, 0)) / args.epochs)
            model = make()
            loose.append(timed(lambda: bare_loop(model, matrix, targets, ends, params, loss_fn, 0, True)) / args.epochs)
        torch.use_deterministic_algorithms(False)
        rows.append({"model": name, "n_parameters": n_parameters(make()),
                     "ours_s_per_epoch": round(median(ours), 3), "bare_s_per_epoch": round(median(bare), 3),
                     "ratio": round(median(ours) / median(bare), 3), "speed_vs_bare": round(median(bare) / median(ours), 3),
                     "samples_per_s": round(len(ends["train"]) / median(ours)),
                     "bare_deterministic_s": round(median(loose), 3),
                     "determinism_cost": round(median(loose) / median(bare), 3),
                     "ours_all": [round(t, 3) for t in ours], "bare_all": [round(t, 3) for t in bare],
                     "bare_deterministic_all": [round(t, 3) for t in loose]})
    print(table(rows, ["model", "n_parameters", "ours_s_per_epoch", "samples_per_s", "bare_s_per_epoch", "ratio",
                       "speed_vs_bare", "bare_deterministic_s", "determinism_cost"]))
    print(f"Trainer construction (a fixed cost per fit): {1000 * trainer_s:.1f} ms")
    print(f"epochs {args.epochs}, repeats {args.repeats}, train windows {len(ends['train'])}, "
          f"val windows {len(ends['val'])}, batch {params.batch_size}, threads {torch.get_num_threads()}")
    print("->", save("overhead", {"epochs": args.epochs, "repeats": args.repeats, "threads": args.threads,
                                  "trainer_construction_s": trainer_s, "rows": rows}))


if __name__ == "__main__":
    main()

"""Benchmark 2: training throughput (samples/s: forward, backward, AdamW step) at the default
sizes and at 2x and 4x the hidden size and the sequence length, LSTM and Transformer.

    python benchmarks/throughput.py [--batches 30] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from common import save, table
from tsarena.contestants.registry import build_model
from tsarena.fitting.engine import seed_all

N_FEATURES, BATCH = 15, 64
GRID = [(1, 1), (2, 1), (4, 1), (1, 2), (1, 4)]  # (hidden multiplier, sequence multiplier)


def config(name: str, hidden: int) -> dict:
    if name == "lstm":
        return {"hidden_size": hidden, "num_layers": 2, "dropout": 0.1}
    return {"d_model": hidden, "nhead": 4, "num_layers": 2, "dropout": 0.1, "dim_feedforward": 4 * hidden}


def samples_per_second(name: str, hidden: int, seq_len: int, batches: int, device: str, precision: str) -> float:
    seed_all(0)
    model = build_model(name, config(name, hidden), {"n_features": N_FEATURES, "seq_len": seq_len}).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(BATCH, seq_len, N_FEATURES, device=device)
    y = torch.randn(BATCH, device=device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")

    def step() -> None:
        optimizer.zero_grad()
        with autocast:
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(batches):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batches * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="32", choices=["32", "bf16-mixed"])
    args = parser.parse_args()
    rows = []
    for name in ("lstm", "transformer"):
        base = None
        for hidden_x, seq_x in GRID:
            hidden, seq_len = 64 * hidden_x, 60 * seq_x
            rate = samples_per_second(name, hidden, seq_len, args.batches, args.device, args.precision)
            base = base or rate
            rows.append({"model": name, "hidden": hidden, "seq_len": seq_len, "samples_per_s": round(rate),
                         "cost_vs_default": round(base / rate, 2)})
    print(table(rows, ["model", "hidden", "seq_len", "samples_per_s", "cost_vs_default"]))
    print(f"device {args.device}, precision {args.precision}, batch {BATCH}, {args.batches} timed batches each")
    print("->", save(f"throughput_{args.device}", {"device": args.device, "precision": args.precision,
                                                    "batch": BATCH, "rows": rows}))


if __name__ == "__main__":
    main()

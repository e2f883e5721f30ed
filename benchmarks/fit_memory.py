"""One fit's peak memory on a split's fold, as a train@ worker runs it (the fold's scaled matrix
mapped from a file), printed as `peak_rss_mib`. Training and validation use every --stride-th
window, spread over the whole matrix (so every page of it is touched, as in a full epoch: per-batch
memory does not grow with the number of batches); the test forecast every 10th test window.

    python benchmarks/fit_memory.py <split dir> <architecture> [--stride 50]
"""

import argparse
import resource
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("split")
    parser.add_argument("model")
    parser.add_argument("--stride", type=int, default=50)
    args = parser.parse_args()
    import torch

    from tsarena.fitting.params import TrainParams
    from tsarena.fitting.fit import fit_one
    from tsarena.split.windows import load_fold, write_scaled_fold

    torch.set_num_threads(1)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    with tempfile.TemporaryDirectory() as scratch:
        windows = load_fold(args.split, 1, scaled=write_scaled_fold(args.split, 1, Path(scratch) / "fold_1.npy"))
        windows = replace(windows, ends={"train": windows.ends["train"][:: args.stride],
                                         "val": windows.ends["val"][:: args.stride], "test": windows.ends["test"][::10]})
        train = TrainParams.model_validate({**params["train"], "max_epochs": 1, "accelerator": "cpu"})
        fit = fit_one(args.model, params[args.model], windows, train, 0)
    print(f"windows train {len(windows.ends['train'])} val {len(windows.ends['val'])} test {len(windows.ends['test'])}; "
          f"forecasts {len(fit.predictions)}", file=sys.stderr)
    print(f"peak_rss_mib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Run a stage script (or only import what it imports) and print its peak RSS in MiB on stderr.

    python benchmarks/peak_rss.py pipeline/window.py          # the stage
    python benchmarks/peak_rss.py --imports-only train         # baseline: interpreter + libraries
"""

import resource
import runpy
import sys

IMPORTS = {
    "data": ["pandas", "pyarrow", "tsarena.data", "tsarena.config"],
    "train": ["pandas", "pyarrow", "torch", "lightning", "mlflow", "tsarena.training", "tsarena.tracking",
              "tsarena.models", "mlflow.pytorch"],
}


def report() -> None:
    print(f"peak_rss_mib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}", file=sys.stderr)


if sys.argv[1] == "--imports-only":
    for module in IMPORTS[sys.argv[2]]:
        __import__(module)
    report()
else:
    sys.argv = sys.argv[1:]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        report()

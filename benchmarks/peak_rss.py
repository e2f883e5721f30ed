"""Run a stage script and print its peak RSS in MiB on stderr.

    python benchmarks/peak_rss.py pipeline/split.py
"""

import resource
import runpy
import sys

sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print(f"peak_rss_mib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}", file=sys.stderr)

"""Portable numerics: the same bits from one commit on any x86-64 CPU with AVX2.

numpy, OpenBLAS, PyTorch, MKL and oneDNN each pick their kernels by the CPU they find (AVX-512 or AVX2) and
some by their thread count; each choice rounds differently, so a lock made on one CPU is not another's.
`portable` (the default) pins every such choice to the AVX2 path through the libraries' own environment
variables, set before the library reads them: numpy and OpenBLAS read theirs when numpy is imported,
PyTorch's at its first operation. `native` leaves this CPU's fastest kernels (a faster path; its numbers
are this CPU model's). Imports nothing heavy: it must run before numpy does (tsarena.core.pinned).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

from tsarena.core.params import Section

PORTABLE, NATIVE = "portable", "native"
MODE_VARIABLE = "TSARENA_NUMERICS"  # the mode a process was pinned to; its children inherit it

# each knob, the library that reads it, and why (README "Numerics")
PORTABLE_ENVIRONMENT: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's vectorised kernels (ATen dispatch): never the AVX-512 ones
    "MKL_CBWR": "AVX2,STRICT",  # MKL, PyTorch's BLAS: its reproducible AVX2 branch; STRICT: not by data alignment
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN, PyTorch's JIT kernels (linear, convolution, recurrent layers)
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's SIMD dispatch (log, exp: features)
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS, numpy's and scipy's BLAS/LAPACK (baselines' least squares)
    "OPENBLAS_NUM_THREADS": "1",  # ... whose blocked solves round by their thread count, i.e. by the machine's cores
    "OMP_NUM_THREADS": "1",  # PyTorch's default thread count where no train.threads is set (a fit sets its own)
    "MKL_NUM_THREADS": "1",
}


class NumericsParams(Section):
    """params.yaml `numerics`: read by every stage (tsarena.core.pinned), so DVC re-runs all on a change."""

    mode: Literal["portable", "native"] = PORTABLE


def environment(mode: str) -> dict[str, str]:
    """The variables a process in `mode` runs with (the Ray backend sends them with every task)."""
    return {**(PORTABLE_ENVIRONMENT if mode == PORTABLE else {}), MODE_VARIABLE: mode}


def pin(mode: str) -> list[str]:
    """Pin this process (and every process it starts) to `mode`. Returns the libraries that read their
    knobs already (imported before the pin): their kernels are this CPU's, whatever the mode says."""
    late = [name for name in ("numpy",) if name in sys.modules and mode == PORTABLE]
    os.environ.update(environment(mode))
    return late


def mode_from_params(path: str | Path = "params.yaml") -> str:
    """params.yaml's `numerics.mode`, read without validating (the check stage and config.load do: a bad
    value there is one error line); portable where the file or the key is absent or unreadable."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        mode = (raw.get("numerics") or {}).get("mode", PORTABLE)
    except (OSError, yaml.YAMLError, AttributeError):
        return PORTABLE
    return mode if mode in (PORTABLE, NATIVE) else PORTABLE

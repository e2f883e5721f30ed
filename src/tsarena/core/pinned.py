"""Imported first by every process that computes a tracked number (each pipeline/<stage>.py): pins the CPU
kernels to params.yaml's `numerics.mode` before numpy or PyTorch loads (tsarena.core.numerics). Worker
processes inherit the pin through their environment; Ray tasks are sent it (fitting.cluster)."""

from tsarena.core.numerics import mode_from_params, pin

MODE = mode_from_params()
LATE = pin(MODE)

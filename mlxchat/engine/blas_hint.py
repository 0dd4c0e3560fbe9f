"""The one place that says when prompt processing is slow for want of OpenBLAS, and the fix.

MLX's CPU wheel bundles the reference BLAS (about 5 GFLOP/s); with OpenBLAS loaded before
MLX (`cpu.setup_process`, see `blas.py`) prefill is 15-20x faster. The engine puts the hint in
`ModelInfo.notice`; the chat, the translate screen and `generate -v` show it once.
"""

from __future__ import annotations

from mlxchat.engine import blas, cpu

SLOW_BLAS_HINT = (
    "prompt processing is slow: the CPU runs MLX's reference BLAS; "
    "install OpenBLAS: pip install ngsolve-openblas (x86-64) or sudo apt-get install libopenblas0"
)


def reference_blas() -> bool:
    """Whether MLX computes on the CPU with its reference BLAS (imports MLX).

    False too when the fast path is turned off on purpose (`MLXCHAT_CPU_FAST=0`).
    """
    return cpu.fast_cpu_enabled() and not blas.load().is_openblas and cpu.on_cpu()


def slow_blas_hint() -> str | None:
    """`SLOW_BLAS_HINT` when `reference_blas()`, else None. Call it where a model is loaded."""
    return SLOW_BLAS_HINT if reference_blas() else None

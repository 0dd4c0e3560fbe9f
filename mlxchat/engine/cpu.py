"""The fast path for MLX on a Linux CPU (no Metal, no CUDA).

Two measured facts make MLX's CPU build slow out of the box, and two steps fix them:

1. The `mlx-cpu` wheel bundles the reference BLAS (about 5 GFLOP/s for a float32 matmul).
   Loading the system OpenBLAS with RTLD_GLOBAL *before* `mlx.core` is first imported makes
   MLX call it instead (about 35x faster). `preload_blas` does that; `mlxchat.engine`
   calls it on import, so it must stay cheap and must not import MLX.
2. MLX has no fast CPU kernel for quantized matmuls, so a 4-bit model decodes slower than
   the same model in float32. `apply_cpu_policy` dequantizes small enough models to float32
   (half-precision ones are cast to float32 too) when running on the CPU.

Both are on by default; `MLXCHAT_CPU_FAST=0` (or `fast_cpu=False` when loading) turns them off.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mlx.core as mx
    import mlx.nn as nn

ENV_SWITCH = "MLXCHAT_CPU_FAST"
MAX_RAM_FRACTION = 0.4
"""Dequantize only when the float32 model takes less than this share of physical memory."""

_OPENBLAS_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",  # Debian/Ubuntu (libopenblas0)
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",  # Fedora/RHEL (openblas)
    "/usr/lib64/libopenblasp.so.0",
    "/usr/lib/libopenblas.so.0",  # Arch
    "/usr/lib/libopenblas.so",
)

_preloaded: str | None = None


def fast_cpu_enabled() -> bool:
    """Whether the CPU fast path is allowed by the environment (`MLXCHAT_CPU_FAST` != "0")."""
    return os.environ.get(ENV_SWITCH, "1").strip() != "0"


def _cuda_installed() -> bool:
    """Whether an `mlx-cuda*` distribution is installed on sys.path.

    Looks for its `.dist-info` folder by name, as `importlib.metadata` does, without
    importing `importlib.metadata` (about 80 ms, too slow for every CLI start).
    """
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                for item in it:
                    name = item.name.lower()
                    if name.startswith(("mlx_cuda", "mlx-cuda")) and name.endswith(
                        (".dist-info", ".egg-info")
                    ):
                        return True
        except OSError:
            continue
    return False


def _find_openblas() -> str | None:
    for path in _OPENBLAS_PATHS:
        if os.path.exists(path):
            return path
    import ctypes.util  # imports subprocess: only when the usual paths have nothing

    return ctypes.util.find_library("openblas")


def preload_blas() -> str | None:
    """Load the system OpenBLAS globally so MLX's CPU backend uses it; return its path.

    Does nothing (returns None) unless on Linux, without an `mlx-cuda` install, with the
    fast path enabled, before `mlx.core` is imported, and with an OpenBLAS on the system.
    """
    global _preloaded
    if _preloaded is not None:
        return _preloaded
    if not sys.platform.startswith("linux") or not fast_cpu_enabled():
        return None
    if "mlx.core" in sys.modules or _cuda_installed():
        return None
    path = _find_openblas()
    if path is None:
        return None
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None
    _preloaded = path
    return path


def preloaded_blas() -> str | None:
    """The OpenBLAS path that `preload_blas` loaded in this process, or None."""
    return _preloaded


def on_cpu() -> bool:
    """Whether MLX computes on the CPU (imports MLX)."""
    import mlx.core as mx

    return mx.default_device() == mx.cpu


def _total_ram() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def float32_size(model: nn.Module) -> int:
    """Bytes the model's parameters would take in float32 (quantized ones dequantized)."""
    from mlx_lm.utils import get_total_parameters

    return 4 * get_total_parameters(model)


def apply_cpu_policy(model: nn.Module, enabled: bool) -> bool:
    """On the CPU, turn a quantized or half-precision model into float32 when it fits.

    Args:
        model: The loaded model; changed in place.
        enabled: The caller's switch (`fast_cpu`); the env switch is honoured as well.

    Returns:
        Whether the model was changed.
    """
    if not enabled or not fast_cpu_enabled() or not on_cpu():
        return False
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_map

    quantized = _quantized_modules(model)
    params = tree_flatten(model.parameters())
    half = any(v.dtype in (mx.float16, mx.bfloat16) for _, v in params)
    if not quantized and not half:
        return False
    ram = _total_ram()
    if ram is None or float32_size(model) >= MAX_RAM_FRACTION * ram:
        return False
    if quantized:
        dequantize_float32(model)
    model.update(
        tree_map(
            lambda v: v.astype(mx.float32) if v.dtype in (mx.float16, mx.bfloat16) else v,
            model.parameters(),
        )
    )
    mx.eval(model.parameters())
    return True


def _quantized_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    import mlx.nn as nn

    kinds = (nn.QuantizedLinear, nn.QuantizedEmbedding)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]


def dequantize_float32(model: nn.Module) -> None:
    """Replace quantized layers by float32 ones, in place.

    Affine-quantized layers are unpacked with vectorized MLX ops in float32, about 4x faster
    on the CPU than `mx.dequantize` (which has no fast CPU kernel) and without rounding
    through float16. Other quantization modes go through `mlx_lm.utils.dequantize_model`.
    """
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_unflatten
    from mlx_lm.utils import dequantize_model

    layers = []
    for name, m in _quantized_modules(model):
        if getattr(m, "mode", "affine") != "affine":
            continue
        weight = _affine_dequantize(m.weight, m.scales, m.biases, m.group_size, m.bits)
        mx.eval(weight)
        if isinstance(m, nn.QuantizedEmbedding):
            new: nn.Module = nn.Embedding(*weight.shape)
        else:
            new = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in m)
            if "bias" in m:
                new.bias = m.bias
        new.weight = weight
        layers.append((name, new))
    if layers:
        model.update_modules(tree_unflatten(layers))
    if _quantized_modules(model):
        dequantize_model(model)


def _affine_dequantize(
    w: mx.array, scales: mx.array, biases: mx.array, group_size: int, bits: int
) -> mx.array:
    """float32 weights from MLX affine-quantized ones (bits dividing 32: 2, 4, 8)."""
    import mlx.core as mx

    if 32 % bits:
        return mx.dequantize(w, scales, biases, group_size, bits).astype(mx.float32)
    shifts = mx.arange(0, 32, bits, dtype=mx.uint32)
    q = (w[..., None] >> shifts) & ((1 << bits) - 1)
    q = q.reshape(*w.shape[:-1], -1, group_size).astype(mx.float32)
    out = q * scales[..., None].astype(mx.float32) + biases[..., None].astype(mx.float32)
    return out.reshape(*w.shape[:-1], -1)


def describe_cpu_path(converted: bool | None = None) -> str:
    """One line for `--verbose` and benchmarks, e.g. "CPU, OpenBLAS /usr/lib/..., float32".

    Args:
        converted: Whether `apply_cpu_policy` changed the loaded model (None: not known).
    """
    import mlx.core as mx

    if mx.default_device() != mx.cpu:
        return f"{mx.default_device()} (MLX {mx.__version__}), weights as stored"
    blas = f"OpenBLAS {_preloaded}" if _preloaded else "bundled BLAS"
    parts = [f"CPU (MLX {mx.__version__})", blas]
    if converted is not None:
        parts.append("float32 (converted at load)" if converted else "weights as stored")
    if not fast_cpu_enabled():
        parts.append(f"fast path off ({ENV_SWITCH}=0)")
    return ", ".join(parts)

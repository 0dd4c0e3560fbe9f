"""The fast path for MLX on a Linux CPU (no Metal, no CUDA).

Two measured facts make MLX's CPU build slow out of the box, and two steps fix them:

1. The `mlx-cpu` wheel bundles the reference BLAS (about 5 GFLOP/s for a float32 matmul).
   An OpenBLAS loaded with RTLD_GLOBAL *before* `mlx.core` is first imported makes MLX
   call it instead (prefill about 15-20x faster). `setup_process` does that (see
   `blas.py` for which OpenBLAS); every entry point calls it first: `mlxchat.cli.main`,
   `Engine()`, the benchmarks, and a server should too.
2. MLX has no fast CPU kernel for quantized matmuls, so a 4-bit model decodes slower than
   the same model in float32. `apply_cpu_policy` dequantizes small enough models to float32
   (half-precision ones are cast to float32 too) when running on the CPU.

Both are on by default; `MLXCHAT_CPU_FAST=0` (or `fast_cpu=False` when loading) turns them off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxchat.engine import blas
from mlxchat.engine.blas import ENV_SWITCH, Blas, fast_cpu_enabled

if TYPE_CHECKING:
    import mlx.core as mx
    import mlx.nn as nn

__all__ = [
    "ENV_SWITCH",
    "MAX_RAM_FRACTION",
    "apply_cpu_policy",
    "convert_or_restore",
    "describe_blas",
    "describe_cpu_path",
    "fast_cpu_enabled",
    "setup_process",
]

MAX_RAM_FRACTION = 0.4
"""Dequantize only when the float32 model takes less than this share of physical memory."""


def setup_process() -> Blas:
    """Prepare this process for MLX: the first step of every entry point.

    Loads the fastest OpenBLAS available (pip, then system; see `blas.py`) so that MLX's
    CPU backend uses it. It must run before anything imports `mlx.core`; it imports no MLX
    itself, costs a few milliseconds, and later calls return the first call's result.
    Where it ran too late, `describe_blas()` says so. It also keeps transformers' import
    table on disk (`import_cache`), which mlx-lm's import otherwise builds at every start.
    """
    from mlxchat.engine import import_cache

    import_cache.install()
    return blas.load()


def describe_blas() -> str:
    """One line naming the BLAS in use, its version, kernels and threads.

    e.g. "OpenBLAS 0.3.33 (SkylakeX kernels, 2 threads; pip ngsolve-openblas)".
    """
    return blas.load().describe()


def machine_busy() -> bool:
    """Whether other work alone fills this machine's CPUs.

    The 1-minute load average counts every runnable thread of the machine (of the host, in
    a container); from it goes what this process may add itself (its OpenBLAS threads,
    which spin while they wait, and MLX's compute thread), and the rest is compared with
    the machine's CPU count.
    """
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return False
    own = blas.load().threads + 1
    return load - own >= (os.cpu_count() or 1)


def threads_for() -> int:
    """OpenBLAS threads for the next model call (0: leave them as they are).

    As `setup_process` set them (`blas.default_threads`: the usable CPUs less one), or 1
    when the machine is busy: a multi-threaded OpenBLAS product waits for all its threads,
    and with other work filling the CPUs they are seldom running at once (on 2 CPUs at a
    load average of 6 to 14, 2 threads made prefill 16x and decode 2.5-9x slower than 1).
    A thread count the user set (`OPENBLAS_NUM_THREADS`) is kept.
    """
    chosen = blas.load()
    if not chosen.is_openblas or blas.user_threads():
        return 0
    return 1 if machine_busy() else chosen.threads


def prepare_model_call(streams: tuple[Any, ...] = ()) -> None:
    """Set OpenBLAS's threads for the next model call (see `threads_for`); call it before
    a prefill and before decoding, where a generation changes phase.

    Args:
        streams: MLX streams that may still compute (e.g. mlx-lm's `generation_stream`
            after a pipelined decode step): synchronized before the thread pool grows.
    """
    wanted = threads_for()
    now = blas.get_threads()
    if not wanted or wanted == now:
        return
    if wanted > now:
        import mlx.core as mx

        for stream in streams:
            mx.synchronize(stream)
        mx.synchronize()
    blas.set_threads(wanted)


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


def convert_or_restore(model: nn.Module, source: Path, enabled: bool) -> bool:
    """`apply_cpu_policy` on a lazily loaded `model`, through its float32 copy in the cache
    (`converted.py`): mapped when there is one, written after a conversion. Evaluates the
    weights either way; returns whether the model runs converted."""
    import mlx.core as mx

    from mlxchat.engine import converted

    if enabled and fast_cpu_enabled() and on_cpu() and converted.restore(model, source):
        return True
    changed = apply_cpu_policy(model, enabled)
    mx.eval(model.parameters())
    if changed:
        converted.store(model, source)
    return changed


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
    """float32 weights from MLX affine-quantized ones (exact: computed in float32).

    Bits dividing 32 (2, 4, 8) are unpacked here; the others (3, 5, 6) by `mx.dequantize`,
    given float32 scales so that it computes in float32 rather than in their float16.
    """
    import mlx.core as mx

    if 32 % bits:
        f32 = mx.float32
        return mx.dequantize(w, scales.astype(f32), biases.astype(f32), group_size, bits)
    shifts = mx.arange(0, 32, bits, dtype=mx.uint32)
    q = (w[..., None] >> shifts) & ((1 << bits) - 1)
    q = q.reshape(*w.shape[:-1], -1, group_size).astype(mx.float32)
    out = q * scales[..., None].astype(mx.float32) + biases[..., None].astype(mx.float32)
    return out.reshape(*w.shape[:-1], -1)


def describe_cpu_path(converted: bool | None = None) -> str:
    """One line for `--verbose`, the chat's status and benchmarks (imports MLX).

    e.g. "CPU (MLX 0.32.4), OpenBLAS 0.3.33 (SkylakeX kernels, 2 threads; pip
    ngsolve-openblas), float32 (converted at load)".

    Args:
        converted: Whether `apply_cpu_policy` changed the loaded model (None: not known).
    """
    import mlx.core as mx

    if mx.default_device() != mx.cpu:
        return f"{mx.default_device()} (MLX {mx.__version__}), weights as stored"
    parts = [f"CPU (MLX {mx.__version__})", describe_blas()]
    if converted is not None:
        parts.append("float32 (converted at load)" if converted else "weights as stored")
    if not fast_cpu_enabled() and blas.load().note != f"fast path off, {ENV_SWITCH}=0":
        parts.append(f"fast path off ({ENV_SWITCH}=0)")
    return ", ".join(parts)

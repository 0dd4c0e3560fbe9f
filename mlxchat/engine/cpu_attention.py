"""Prompt attention on the CPU at the speed of its matrix products.

Measured on a 2-core x86 CPU (benchmarks/prefill_position.py): a prompt chunk's attention
costs far more than its FLOPs, for two reasons, and long prompts pay both per key:

1. `exp` in MLX's CPU backend is scalar libm (about 40 ns per element, where an add is
   about 1 ns): at 8k tokens the softmax of one 256-token chunk is 9 heads x 256 x 8k exps
   per layer, most of the chunk's time. A fused polynomial `exp` (`mx.compile`, exact to
   2e-7 relative, well below float32 softmax rounding) costs about 5 ns.
2. MLX's CPU allocator frees every buffer back to glibc, which hands blocks over 32 MB
   (a score matrix of a long prompt) back to the kernel: every score matrix is paged in
   afresh (~20,000 page faults per 40 MB; an add at 30 ns per element instead of 1).
   `keep_freed_memory` raises glibc's thresholds so freed blocks are reused.

`install` swaps mlx-lm's `scaled_dot_product_attention` in the loaded model's module for
`attention`, which handles prompt chunks (more than one query, a causal or boolean mask,
float32, no quantized cache, no sinks) and hands everything else to mlx-lm unchanged.
CPU only; `MLXCHAT_CPU_FAST=0` turns it off with the rest of the fast path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import partial
from typing import Any

import mlx.core as mx

LOG2E = 1.4426950408889634
_POLY = (8.9893397e-3, 5.5826318e-2, 2.4015361e-1, 6.9315308e-1, 9.9999994e-1)


def _exp(x: mx.array) -> mx.array:
    """exp(x) for x <= 0 as 2^n * p(f) (f in [0, 1)); exactly 0 below 2^-126."""
    y = mx.maximum(x * LOG2E, -127.0)
    n = mx.floor(y)
    f = y - n
    p = f * 1.8775767e-3 + _POLY[0]
    for c in _POLY[1:]:
        p = p * f + c
    scale = mx.left_shift((n + 127.0).astype(mx.int32), 23).view(mx.float32)
    return p * scale


@partial(mx.compile, shapeless=True)
def _masked(scores: mx.array, mask: mx.array) -> mx.array:
    return mx.where(mask, scores, -mx.inf)


@mx.compile
def _weights(masked: mx.array, top: mx.array) -> mx.array:
    return _exp(masked - top)


def attention(
    queries: mx.array,
    keys: Any,
    values: Any,
    cache: Any,
    scale: float,
    mask: Any,
    sinks: Any = None,
) -> mx.array:
    """mlx-lm's `scaled_dot_product_attention`, with prompt chunks computed here."""
    if not _ours(queries, keys, mask, sinks):
        return _ORIGINAL(queries, keys, values, cache=cache, scale=scale, mask=mask, sinks=sinks)
    batch, heads, length, dim = queries.shape
    groups, keys_len = keys.shape[1], keys.shape[2]
    repeats = heads // groups
    rows = (batch, groups, repeats * length)
    q = (queries * scale).reshape(*rows, dim)
    if isinstance(mask, str):  # causal: only the chunk's own keys need a mask
        offset = keys_len - length
        causal = mx.arange(length)[:, None] >= mx.arange(length)[None]
        own = _masked(
            (q @ keys[:, :, offset:].swapaxes(-1, -2)).reshape(*rows[:2], repeats, length, length),
            causal,
        )
        own = own.reshape(*rows, length)
        parts = [own]
        if offset:
            parts.insert(0, q @ keys[:, :, :offset].swapaxes(-1, -2))
        top = (
            mx.maximum(*[part.max(axis=-1, keepdims=True) for part in parts])
            if offset
            else own.max(axis=-1, keepdims=True)
        )
        weights = [_weights(part, top) for part in parts]
        total = sum(w.sum(axis=-1, keepdims=True) for w in weights)
        out = weights[-1] @ values[:, :, offset:]
        if offset:
            out = out + weights[0] @ values[:, :, :offset]
    else:
        scores = (q @ keys.swapaxes(-1, -2)).reshape(*rows[:2], repeats, length, keys_len)
        if mask.ndim == 4:  # (batch | 1, 1, length, keys): one mask for every head
            mask = mask[:, :, None]
        masked = _masked(scores, mask).reshape(*rows, keys_len)
        top = masked.max(axis=-1, keepdims=True)
        weights_all = _weights(masked, top)
        total = weights_all.sum(axis=-1, keepdims=True)
        out = weights_all @ values
    return (out / total).reshape(batch, heads, length, dim)


def _ours(queries: mx.array, keys: Any, mask: Any, sinks: Any) -> bool:
    if mx.default_device() != mx.cpu:
        return False
    if sinks is not None or not isinstance(keys, mx.array) or queries.shape[2] < 2:
        return False
    if queries.dtype != mx.float32 or queries.shape[1] % keys.shape[1]:
        return False
    if isinstance(mask, str):
        return mask == "causal"
    if isinstance(mask, mx.array) and mask.dtype == mx.bool_:
        return mask.ndim == 2 or (mask.ndim == 4 and mask.shape[1] == 1)
    return False


def _original() -> Any:
    from mlx_lm.models.base import scaled_dot_product_attention

    return scaled_dot_product_attention


_ORIGINAL = _original()


def enable(model: Any) -> bool:
    """The whole remedy for `model` (see the module doc); True when its attention is ours."""
    keep_freed_memory()
    return install(model)


def install(model: Any, ours: bool = True) -> bool:
    """Use `attention` in the modules of `model` that call mlx-lm's (`ours=False`: put
    mlx-lm's back); True when any changed."""
    old, new = (_ORIGINAL, attention) if ours else (attention, _ORIGINAL)
    done = False
    for cls in type(model).__mro__:
        module = sys.modules.get(cls.__module__)
        for name in _model_modules(module):
            target = sys.modules.get(name)
            if getattr(target, "scaled_dot_product_attention", None) is old:
                target.scaled_dot_product_attention = new  # type: ignore[union-attr]
                done = True
    return done


def _model_modules(module: Any) -> list[str]:
    """The model's module and the mlx-lm model modules it imports from."""
    if module is None:
        return []
    names = [module.__name__]
    for value in vars(module).values():
        owner = getattr(value, "__module__", None)
        if isinstance(owner, str) and owner.startswith("mlx_lm.models.") and owner not in names:
            names.append(owner)
    return names


def keep_freed_memory(keep: bool = True) -> bool:
    """Let glibc keep freed blocks (up to its largest mmap threshold) for reuse instead
    of returning them to the kernel (`keep=False`: glibc's default thresholds); False
    where there is no glibc."""
    path = ctypes.util.find_library("c")
    if not path or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(path)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    default = 128 * 1024
    ok = mallopt(m_mmap_threshold, 1 << 30 if keep else default) == 1
    ok = mallopt(m_trim_threshold, (1 << 31) - 1 if keep else default) == 1 and ok
    return ok

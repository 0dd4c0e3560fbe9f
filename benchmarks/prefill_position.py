"""Prefill speed against position: one prompt chunk's tok/s at 512, 2k, 4k and 8k tokens.

The cache before the chunk is filled with random keys and values (attention costs the
same whatever they hold), so each point takes one chunk, not a whole prefill. Paths:
`today` (mlx-lm's attention, MLX's `scaled_dot_product_attention` on the CPU, glibc's
default malloc), `malloc` (freed blocks kept, `cpu_attention.keep_freed_memory`) and
`ours` (that plus `cpu_attention.attention`), each at the chunk sizes asked. Also checks
that `ours` gives the logits of `today`.

    python benchmarks/prefill_position.py [--model demo] [--positions 512 2048 4096 8192]
        [--chunks 128 256 512] [--paths today malloc ours]
"""

from __future__ import annotations

import argparse
import platform
import time

from mlxchat.engine import cpu


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--positions", type=int, nargs="+", default=[512, 2048, 4096, 8192])
    parser.add_argument("--chunks", type=int, nargs="+", default=[256])
    parser.add_argument("--paths", nargs="+", default=["today", "malloc", "ours"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cpu.setup_process()
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    from mlxchat.engine import cpu_attention
    from mlxchat.models.loader import load_model

    model, _, info = load_model(args.model)  # with ours: back to today's first
    cpu_attention.install(model, ours=False)
    cpu_attention.keep_freed_memory(False)
    print(f"{platform.machine()}, {cpu.describe_cpu_path()}; model {info.name}")
    module = __import__(type(model).__module__, fromlist=["x"])

    def cache_at(position: int) -> list:
        cache = make_prompt_cache(model)
        for layer, c in zip(model.layers, cache, strict=False):
            attn = layer.self_attn
            heads, dim = attn.n_kv_heads, attn.head_dim if hasattr(attn, "head_dim") else 64
            shape = (1, heads, position, dim)
            c.update_and_fetch(mx.random.normal(shape), mx.random.normal(shape))
        mx.eval([c.state for c in cache])
        return cache

    def chunk_seconds(position: int, size: int) -> float:
        best = float("inf")
        for _ in range(args.rounds):
            cache = cache_at(position)
            tokens = mx.random.randint(0, 1000, (1, size))
            start = time.perf_counter()
            mx.eval(model(tokens, cache=cache))
            best = min(best, time.perf_counter() - start)
        return best

    def logits(position: int) -> mx.array:
        mx.random.seed(0)
        cache = cache_at(position)
        mx.random.seed(1)
        return model(mx.random.randint(0, 1000, (1, 64)), cache=cache)

    reference = logits(1024)
    header = "path     chunk " + "".join(f"{p:>10}" for p in args.positions)
    print(header + "   (prompt tok/s of one chunk at that position)")
    for path in args.paths:
        if path in ("malloc", "ours"):
            cpu_attention.keep_freed_memory()
        if path == "ours":
            cpu_attention.install(model)
            diff = mx.abs(logits(1024) - reference).max().item()
            print(f"ours: largest logit difference from today's {diff:.2e}")
        for size in args.chunks:
            rates = [size / chunk_seconds(p, size) for p in args.positions]
            print(f"{path:8} {size:5} " + "".join(f"{r:10.1f}" for r in rates), flush=True)
    del module


if __name__ == "__main__":
    main()

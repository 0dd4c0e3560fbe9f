"""Where one decode step's time goes on the CPU (demo model in float32, fast BLAS).

Each part is timed synchronously, best and median of many runs, for 1 OpenBLAS thread and
for all usable CPUs:

    step        one token through the model with a ~110-token cache (build + compute)
    build       building that step's graph in Python (no compute)
    products    the step's weight products alone (210 layer products + the output head)
    head        the output head alone (tied embeddings: 49152 x 576)
    rest        the step with every weight product replaced by a zero fill: norms, RoPE,
                attention over the cache, SwiGLU, residuals, and the per-op overhead
    loop        mlx-lm's decode loop (graph building overlaps compute), ms per token

    python benchmarks/decode_profile.py [--reps 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlxchat.engine import blas  # noqa: E402
from mlxchat.engine.cpu import setup_process  # noqa: E402


def timed(fn, reps: int) -> tuple[float, float]:
    """Best and median milliseconds of `fn()` (which evaluates what it computes)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3, statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=64, help="tokens for the loop")
    args = parser.parse_args()
    setup_process()
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.generate import stream_generate
    from mlx_lm.models.cache import make_prompt_cache

    from mlxchat.models.loader import load_model

    model, tokenizer, info = load_model("demo")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {info.backend}")
    prompt = tokenizer.encode("The lighthouse keeper found a bottle on the beach. " * 10)
    cache = make_prompt_cache(model)
    model(mx.array([prompt]), cache=cache)
    mx.eval([c.state for c in cache])
    token = mx.array([[42]])

    def rewind() -> None:
        for c in cache:
            c.offset -= 1

    def step() -> None:
        mx.eval(model(token, cache=cache))
        rewind()

    def build() -> None:
        model(token, cache=cache)
        rewind()

    linears = [m for _, m in model.named_modules() if isinstance(m, nn.Linear)]
    embed = model.model.embed_tokens.weight
    x_in = {n: mx.random.normal((1, n)) for n in {m.weight.shape[1] for m in linears}}
    mx.eval(list(x_in.values()))

    def products() -> None:
        outs = [x_in[m.weight.shape[1]] @ m.weight.T for m in linears]
        mx.eval(outs, x_in[embed.shape[1]] @ embed.T)

    def head() -> None:
        mx.eval(x_in[embed.shape[1]] @ embed.T)

    def rest() -> None:
        original = nn.Linear.__call__
        nn.Linear.__call__ = lambda self, x: mx.zeros((*x.shape[:-1], self.weight.shape[0]))
        embedding = nn.Embedding.as_linear
        nn.Embedding.as_linear = lambda self, x: mx.zeros((*x.shape[:-1], self.weight.shape[0]))
        try:
            step()
        finally:
            nn.Linear.__call__ = original
            nn.Embedding.as_linear = embedding

    def loop() -> float:
        *_, last = stream_generate(model, tokenizer, mx.array(prompt), max_tokens=args.tokens)
        return 1e3 / last.generation_tps

    weights = sum(m.weight.nbytes for m in linears) + embed.nbytes
    print(
        f"weights read per token: {weights / 1e6:.0f} MB ({len(linears)} layer products "
        f"+ the output head); cache {len(prompt)} tokens"
    )
    counts = sorted({1, blas.usable_cpus()})
    print(f"{'ms per token':14}" + "".join(f"{t:>8} thr best  median" for t in counts))
    rows = {}
    for threads in counts:
        blas.set_threads(threads)
        for name, fn in (
            ("step", step),
            ("build", build),
            ("products", products),
            ("head", head),
            ("rest", rest),
        ):
            rows.setdefault(name, []).append(timed(fn, args.reps))
        loops = [loop() for _ in range(3)]
        rows.setdefault("loop", []).append((min(loops), statistics.median(loops)))
    for name, values in rows.items():
        print(f"{name:14}" + "".join(f"{best:17.1f}{med:8.1f}" for best, med in values))
    for (best, _), threads in zip(rows["products"], counts, strict=True):
        print(f"weight products with {threads} thread(s): {weights / best / 1e6:.1f} GB/s")
    print(f"load average at end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

"""What live prefill progress costs: prefill speed by mlx-lm `prefill_step_size`.

Smaller steps give more progress events (one per step) but smaller matrix products. This
prefills the same prompt with each step size in turn (alternating, several rounds) and
prints the median speed of each relative to the first (2048: mlx-lm's default).

    python benchmarks/prefill_step.py [MODEL] [--tokens N] [--rounds R] [--steps 2048 256 64]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from mlxchat.engine import cpu  # preloads OpenBLAS when there is one (before MLX)


def main() -> None:
    """Measure and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="demo")
    parser.add_argument("--tokens", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, nargs="+", default=[2048, 256, 64])
    args = parser.parse_args()
    steps = args.steps

    import mlx.core as mx
    from mlx_lm.generate import generate_step
    from mlx_lm.models.cache import make_prompt_cache

    from mlxchat.models.loader import load_model

    model, tokenizer, info = load_model(args.model)
    words = ("the quick brown fox jumps over the lazy dog " * args.tokens).split()
    prompt = tokenizer.encode(" ".join(words))[: args.tokens]
    print(f"{platform.machine()} {platform.processor() or ''}, {cpu.describe_cpu_path()}")
    print(f"model {info.name}, prompt {len(prompt)} tokens, {args.rounds} rounds")
    seconds: dict[int, list[float]] = {step: [] for step in steps}
    for _ in range(args.rounds):
        for step in steps:
            cache = make_prompt_cache(model)
            start = time.perf_counter()
            tokens = generate_step(
                mx.array(prompt), model, max_tokens=1, prompt_cache=cache, prefill_step_size=step
            )
            next(tokens)
            seconds[step].append(time.perf_counter() - start)
    base = statistics.median(seconds[steps[0]])
    for step in steps:
        median = statistics.median(seconds[step])
        rate = len(prompt) / median
        print(f"step {step:>5}: {rate:8.1f} tok/s  ({base / median:.2f}x step {steps[0]})")


if __name__ == "__main__":
    main()

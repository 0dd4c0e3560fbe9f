"""Which sampling defaults make the demo model answer well: greedy against a mild
repetition penalty (and, for reference, the old chat default temp 0.7 / top-p 0.95).

For each prompt and setting: whether the answer has the expected word, whether it ended by
itself (not cut at the token limit), and the share of repeated 4-word sequences (0 = none;
a model stuck in a loop scores near 1). Settings alternate per prompt; sampled runs use
seeds 0..N-1.

    python benchmarks/sampling_defaults.py [--model demo] [--tokens 200] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import platform

from mlxchat.engine.cpu import setup_process

PROMPTS = [
    ("What is the capital of France?", "paris"),
    ("What is 12 + 7?", "19"),
    ("Name the largest planet in the solar system.", "jupiter"),
    ("Who wrote Romeo and Juliet?", "shakespeare"),
    ("Write a Python function that returns the square of a number.", "def"),
    ("Give three tips for sleeping better.", "sleep"),
]


def repeated_share(text: str, n: int = 4) -> float:
    """The share of n-word sequences that already appeared earlier in `text`."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    setup_process()  # first: the fast BLAS, before anything imports MLX

    from mlxchat.engine.engine import Engine
    from mlxchat.engine.types import Message, SamplingParams

    settings = {
        "greedy": [SamplingParams(max_tokens=args.tokens)],
        "greedy + rp 1.1": [SamplingParams(max_tokens=args.tokens, repetition_penalty=1.1)],
        "temp 0.7 top-p 0.95": [
            SamplingParams(temp=0.7, top_p=0.95, seed=seed, max_tokens=args.tokens)
            for seed in range(args.seeds)
        ],
    }
    engine = Engine()
    info = engine.load_sync(args.model)
    print(
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores (shared); "
        f"model: {info.name}; max {args.tokens} tokens; chat template, no system prompt"
    )
    totals = {name: [0, 0, 0.0, 0] for name in settings}  # right, ended, repeated, runs
    order = list(settings)
    for i, (prompt, expected) in enumerate(PROMPTS):
        for name in order if i % 2 == 0 else order[::-1]:
            for params in settings[name]:
                result = engine.generate_sync([Message("user", prompt)], params)
                right = expected in result.text.lower()
                ended = result.finish_reason == "stop"
                share = repeated_share(result.text)
                total = totals[name]
                total[0] += right
                total[1] += ended
                total[2] += share
                total[3] += 1
                first = " ".join(result.text.split())[:70]
                print(f"{name:>20} | {prompt[:28]:<28} | {right:d} {ended:d} {share:.2f} | {first}")
    print(f"\n{'setting':>20} | right | ended by itself | repeated 4-grams (mean)")
    for name, (right, ended, share, runs) in totals.items():
        print(f"{name:>20} | {right}/{runs}   | {ended}/{runs}             | {share / runs:.3f}")
    engine.close()


if __name__ == "__main__":
    main()

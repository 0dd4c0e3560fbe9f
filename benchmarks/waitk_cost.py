"""Wait-k cost: the incremental KV cache against the naive full re-encode, side by side.

For each k, every sentence of `tests/data/sentences.en.txt` is translated greedily by both
translators, alternating which goes first. Printed per k: total tokens run through the
model, wall time, their ratios (naive ÷ incremental) and whether the target tokens are
identical. Goal at k = 3: ≥ 3× fewer tokens, ≥ 2× less wall time, identical outputs.

    python benchmarks/waitk_cost.py [--model demo] [--ks 1 3 5] [--sentences 24]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from mlxchat.engine.cpu import setup_process

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "sentences.en.txt"


def run(fn: object, model: object, tokenizer: object, sentence: str, k: int, cap: int | None):
    """Translate one sentence; return (seconds, SegmentDone)."""
    from mlxchat.translate import SegmentDone, WaitKSettings

    start = time.perf_counter()
    events = fn(model, tokenizer, sentence, WaitKSettings(wait_k=k, max_new_words=cap))
    done = [e for e in events if isinstance(e, SegmentDone)]
    return time.perf_counter() - start, done[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--sentences", type=int, default=24)
    parser.add_argument("--max-new-words", type=int, default=None)
    args = parser.parse_args()
    setup_process()  # first: the fast BLAS, before anything imports MLX

    import mlx.core as mx

    from mlxchat.engine.cpu import describe_cpu_path
    from mlxchat.models.loader import load_model
    from mlxchat.translate import naive_translate, stream_translate

    sentences = DATA.read_text().splitlines()[: args.sentences]
    model, tokenizer, info = load_model(args.model)
    print(
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}; mlx {mx.__version__}"
    )
    print(f"model: {info.name}; {describe_cpu_path(info.dequantized)}")
    print(f"data: {len(sentences)} sentences from {DATA.name}; greedy; English -> French")
    run(stream_translate, model, tokenizer, sentences[0], 3, 2)  # warm up
    header = (
        f"{'k':>2} {'tokens inc':>11} {'tokens naive':>13} {'ratio':>6}"
        f" {'wall inc':>9} {'wall naive':>11} {'ratio':>6}  identical  words"
    )
    print(header)
    for k in args.ks:
        tokens = {"inc": 0, "naive": 0}
        wall = {"inc": 0.0, "naive": 0.0}
        identical = True
        words = 0
        for i, sentence in enumerate(sentences):
            order = [("inc", stream_translate), ("naive", naive_translate)]
            results = {}
            for name, fn in order if i % 2 == 0 else order[::-1]:
                seconds, done = run(fn, model, tokenizer, sentence, k, args.max_new_words)
                results[name] = done
                wall[name] += seconds
                tokens[name] += done.tokens_computed
            identical &= results["inc"].target_tokens == results["naive"].target_tokens
            words += len(results["inc"].target_words)
        print(
            f"{k:>2} {tokens['inc']:>11} {tokens['naive']:>13}"
            f" {tokens['naive'] / tokens['inc']:>5.2f}x"
            f" {wall['inc']:>8.1f}s {wall['naive']:>10.1f}s"
            f" {wall['naive'] / wall['inc']:>5.2f}x  {'yes' if identical else 'NO':>9}  {words:>5}"
        )


if __name__ == "__main__":
    main()

"""Translation quality: BLEU and chrF of the full sentence and of wait-k, per model, in one run.

On the held-out pairs of `benchmarks/data/translation_en_fr.tsv` (English -> French, written
for mlxchat; see its header), each model translates every sentence with the full source
known ("full": k larger than any sentence) and live under wait-k for each k. Printed per
model and condition: BLEU and chrF (sacrebleu, corpus level), mean AL and LAAL, mean wall
time per sentence; then, at k = 3, the time from the k-th source word to the first target
word when words are fed one by one (as a live speaker gives them), and whether the
incremental translator's target tokens equal the naive re-encode's on every sentence.

Goals (the translate demo, this 2-core CPU): k = 3 BLEU >= 30 and >= 90 % of the same
model's full-sentence BLEU; incremental == naive; first word within 1 s of the k-th word.

    python benchmarks/translation_quality.py [--models demo demo-translate] [--ks 1 3 5]
    python benchmarks/translation_quality.py --choose   # the few-shot prompt, on the dev pairs
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from mlxchat.engine.cpu import setup_process

DATA = Path(__file__).resolve().parent / "data" / "translation_en_fr.tsv"
FULL = 32  # the largest k, more than any sentence here has words: the whole source first


LIMIT: int | None = None


def pairs(split: str) -> list[tuple[str, str]]:
    """(English, French) pairs of one split of the data file (the first LIMIT)."""
    rows = [ln.split("\t") for ln in DATA.read_text(encoding="utf-8").splitlines()]
    return [(r[1], r[2]) for r in rows if r[0] == split][:LIMIT]


def settings(k: int, **extra: Any) -> Any:
    from mlxchat.translate import WaitKSettings

    return WaitKSettings(wait_k=k, **extra)


def translate_all(model: Any, tokenizer: Any, sources: list[str], k: int) -> dict[str, Any]:
    """Translate every source with wait-k `k`; outputs, metrics and seconds per sentence."""
    from mlxchat.translate import SegmentDone, stream_translate

    outputs, tokens, al, laal, seconds = [], [], [], [], []
    for source in sources:
        start = time.perf_counter()
        done = [
            e
            for e in stream_translate(model, tokenizer, source, settings(k))
            if isinstance(e, SegmentDone)
        ][-1]
        seconds.append(time.perf_counter() - start)
        outputs.append(done.translation.strip())
        tokens.append(done.target_tokens)
        if not math.isnan(done.metrics.get("AL", math.nan)):
            al.append(done.metrics["AL"])
            laal.append(done.metrics["LAAL"])
    return {
        "outputs": outputs,
        "tokens": tokens,
        "AL": statistics.fmean(al) if al else math.nan,
        "LAAL": statistics.fmean(laal) if laal else math.nan,
        "seconds": statistics.fmean(seconds),
    }


def scores(outputs: list[str], references: list[str]) -> tuple[float, float]:
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(outputs, [references]).score
    chrf = sacrebleu.corpus_chrf(outputs, [references]).score
    return bleu, chrf


def naive_tokens(model: Any, tokenizer: Any, sources: list[str], k: int) -> list[tuple[int, ...]]:
    from mlxchat.translate import SegmentDone, naive_translate

    return [
        [
            e
            for e in naive_translate(model, tokenizer, source, settings(k))
            if isinstance(e, SegmentDone)
        ][-1].target_tokens
        for source in sources
    ]


def first_word_after_kth(model: Any, tokenizer: Any, sources: list[str], k: int) -> list[float]:
    """Seconds from feeding the k-th source word to the first target word, word by word."""
    from mlxchat.translate import SimultaneousTranslator, TargetWord

    translator = SimultaneousTranslator(model, tokenizer, settings(k), auto_segment=False)
    translator.prepare()  # the prompt head, as the live screens do before the first word
    waits = []
    for source in sources:
        words = source.split()
        fed_kth = math.nan
        for i, word in enumerate(words):
            if i == k - 1:
                fed_kth = time.perf_counter()
            events = list(translator.feed(word, last=i == len(words) - 1))
            if any(isinstance(e, TargetWord) for e in events) and not math.isnan(fed_kth):
                waits.append(time.perf_counter() - fed_kth)
                fed_kth = math.nan
    return waits


def report_model(name: str, ks: list[int], split: str, check: bool) -> None:
    from mlxchat.engine.cpu import describe_cpu_path
    from mlxchat.models.loader import load_model
    from mlxchat.translate.prompt import uses_few_shot

    data = pairs(split)
    sources, references = [s for s, _ in data], [r for _, r in data]
    start = time.perf_counter()
    model, tokenizer, info = load_model(name)
    prompt = "few-shot completion" if uses_few_shot(tokenizer, settings(3)) else "chat template"
    print(
        f"\nmodel: {name} ({info.num_parameters / 1e6:.0f}M parameters; "
        f"{describe_cpu_path(info.dequantized)}; loaded in {time.perf_counter() - start:.1f} s); "
        f"prompt: {prompt}; {len(data)} {split} pairs"
    )
    translate_all(model, tokenizer, sources[:1], 3)  # warm up
    print(f"{'condition':<10} {'BLEU':>6} {'chrF':>6} {'AL':>6} {'LAAL':>6} {'s/sentence':>11}")
    results = {}
    for k in [FULL, *ks]:
        result = translate_all(model, tokenizer, sources, k)
        bleu, chrf = scores(result["outputs"], references)
        results[k] = (bleu, result)
        label = "full" if k == FULL else f"k={k}"
        print(
            f"{label:<10} {bleu:6.1f} {chrf:6.1f} {result['AL']:6.2f} {result['LAAL']:6.2f} "
            f"{result['seconds']:11.2f}"
        )
    if 3 in results:
        full_bleu, k3 = results[FULL][0], results[3][0]
        share = k3 / full_bleu if full_bleu else math.nan
        print(f"k=3 BLEU / full-sentence BLEU: {share:.2f}")
        for source, output in list(zip(sources, results[3][1]["outputs"], strict=True))[:3]:
            print(f"  {source} -> {output}")
        if check:
            waits = first_word_after_kth(model, tokenizer, sources, 3)
            print(
                f"first target word after the 3rd source word: median "
                f"{statistics.median(waits):.2f} s, max {max(waits):.2f} s "
                f"({len(waits)} sentences)"
            )
            naive = naive_tokens(model, tokenizer, sources, 3)
            same = sum(a == tuple(b) for a, b in zip(results[3][1]["tokens"], naive, strict=True))
            print(f"incremental == naive re-encode (k=3): {same}/{len(sources)} sentences")


def choose(name: str) -> None:
    """Compare few-shot prompts on the dev pairs (0, 1, 3 and 5 examples) at full and k=3."""
    from mlxchat.models.loader import load_model
    from mlxchat.translate import prompt

    data = pairs("dev")
    sources, references = [s for s, _ in data], [r for _, r in data]
    model, tokenizer, _ = load_model(name)
    original = prompt.few_shot_layout
    print(f"\nfew-shot prompt on {len(data)} dev pairs, model {name}")
    print(f"{'examples':>8} {'full BLEU':>10} {'k=3 BLEU':>9} {'k=3 chrF':>9} {'s/sentence':>11}")
    for shots in (0, 1, 3, 5):
        prompt.few_shot_layout = functools.partial(original, shots=shots)  # type: ignore[assignment]
        full = translate_all(model, tokenizer, sources, FULL)
        k3 = translate_all(model, tokenizer, sources, 3)
        k3_bleu, k3_chrf = scores(k3["outputs"], references)
        print(
            f"{shots:>8} {scores(full['outputs'], references)[0]:10.1f} {k3_bleu:9.1f} "
            f"{k3_chrf:9.1f} {k3['seconds']:11.2f}"
        )
    prompt.few_shot_layout = original  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["demo", "demo-translate"])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--split", default="test", choices=["test", "dev"])
    parser.add_argument("--choose", action="store_true", help="compare few-shot prompts (dev)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    parser.add_argument("--no-check", action="store_true", help="skip the latency/naive checks")
    args = parser.parse_args()
    setup_process()  # first: the fast BLAS, before anything imports MLX
    global LIMIT
    LIMIT = args.limit

    import mlx.core as mx

    print(
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}; mlx {mx.__version__}; greedy; English -> French"
    )
    if args.choose:
        choose(args.models[-1])
        return
    for name in args.models:
        report_model(name, args.ks, args.split, check=not args.no_check)


if __name__ == "__main__":
    main()

"""Engine overhead and the CPU fast path, measured side by side in one run.

Part 1 — raw `mlx_lm.stream_generate` against the engine's async stream: same model, same
prompt tokens, greedy, fresh cache each run, runs alternated. Both are timed from the
consumer's side (the engine's numbers include the hop from its thread to the event loop).
Goal: engine decode tok/s ≥ 0.97 × raw, TTFT within +15 ms.

Part 2 — the CPU fast path (float32 weights + system OpenBLAS) against the plain path
(weights as stored, bundled BLAS): each measured in its own subprocess, since the BLAS is
chosen when MLX is first imported. Runs alternate.

    python benchmarks/engine_overhead.py [--model demo] [--runs 5] [--tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from mlxchat.engine.cpu import setup_process

PROMPT = (
    "You are reviewing a short story for a magazine. Summarise its plot in three sentences, "
    "then list two strengths and two weaknesses of the writing. The story: a lighthouse "
    "keeper on a remote island finds a message in a bottle that seems to predict the weather "
    "for the coming week. At first she ignores it, but when a storm arrives exactly as "
    "written, she begins to rely on the bottle's messages, and each day a new one washes up."
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} cores"


def raw_run(model: object, tokenizer: object, tokens: list[int], max_tokens: int) -> dict:
    import mlx.core as mx
    from mlx_lm.generate import stream_generate

    start = time.perf_counter()
    first = last = None
    count = 0
    for _ in stream_generate(model, tokenizer, mx.array(tokens), max_tokens=max_tokens):
        last = time.perf_counter()
        first = first or last
        count += 1
    return {"ttft": first - start, "tps": (count - 1) / (last - first), "tokens": count}


async def engine_run(engine: object, messages: list, max_tokens: int) -> dict:
    from mlxchat.engine.types import Chunk, SamplingParams

    start = time.perf_counter()
    first = last = None
    count = 0
    async for event in engine.stream(messages, SamplingParams(max_tokens=max_tokens)):
        if isinstance(event, Chunk):
            last = time.perf_counter()
            first = first or last
            count += 1
    return {"ttft": first - start, "tps": (count - 1) / (last - first), "tokens": count}


def overhead(model_name: str, runs: int, max_tokens: int, ttft_runs: int) -> None:
    from mlxchat.engine.cpu import describe_cpu_path
    from mlxchat.engine.engine import Engine
    from mlxchat.engine.types import Message
    from mlxchat.models.loader import load_model

    messages = [Message("user", PROMPT)]
    model, tokenizer, info = load_model(model_name)
    tokens = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True
    )
    engine = Engine()
    engine.load_sync(model_name)
    print(f"model: {info.name} ({info.path})")
    print(f"path: {describe_cpu_path(info.dequantized)}")
    print(
        f"prompt: {len(tokens)} tokens, generate {max_tokens} tokens, greedy, {runs} pairs"
        f" (+{ttft_runs} short pairs for TTFT)"
    )
    raw_run(model, tokenizer, tokens, 8)  # warm up both
    asyncio.run(engine_run(engine, messages, 8))
    raw, eng = [], []
    for _ in range(runs):
        raw.append(raw_run(model, tokenizer, tokens, max_tokens))
        eng.append(asyncio.run(engine_run(engine, messages, max_tokens)))
    assert {r["tokens"] for r in raw} == {e["tokens"] for e in eng}, "different token counts"
    # TTFT varies by tens of ms from run to run here: take it from more, shorter runs.
    for _ in range(ttft_runs):
        raw.append(raw_run(model, tokenizer, tokens, 3))
        eng.append(asyncio.run(engine_run(engine, messages, 3)))
    raw_tps = statistics.median(r["tps"] for r in raw[:runs])
    eng_tps = statistics.median(e["tps"] for e in eng[:runs])
    raw_ttft = statistics.median(r["ttft"] for r in raw)
    eng_ttft = statistics.median(e["ttft"] for e in eng)
    print(f"{'':24}{'raw mlx-lm':>14}{'engine':>14}")
    print(f"{'decode tok/s (median)':24}{raw_tps:14.1f}{eng_tps:14.1f}")
    print(f"{'TTFT ms (median)':24}{raw_ttft * 1e3:14.1f}{eng_ttft * 1e3:14.1f}")
    verdict = "ok" if eng_tps >= 0.97 * raw_tps else "BELOW GOAL"
    print(f"engine/raw decode tok/s ratio: {eng_tps / raw_tps:.3f}  (goal >= 0.97: {verdict})")
    delta = (eng_ttft - raw_ttft) * 1e3
    verdict = "ok" if delta <= 15 else "ABOVE GOAL"
    print(f"engine TTFT - raw TTFT: {delta:+.1f} ms  (goal <= +15 ms: {verdict})")


def cpu_path_child(model_name: str, max_tokens: int) -> None:
    """Measure prefill and decode tok/s in this process; print one JSON line."""
    import mlx.core as mx
    from mlx_lm.generate import stream_generate

    from mlxchat.engine.cpu import describe_cpu_path
    from mlxchat.models.loader import load_model

    model, tokenizer, info = load_model(model_name)
    tokens = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True
    )
    for _ in stream_generate(model, tokenizer, mx.array(tokens[:8]), max_tokens=2):
        pass
    *_, last = stream_generate(model, tokenizer, mx.array(tokens), max_tokens=max_tokens)
    print(
        json.dumps(
            {
                "path": describe_cpu_path(info.dequantized),
                "prefill": last.prompt_tps,
                "decode": last.generation_tps,
                "prompt_tokens": last.prompt_tokens,
            }
        )
    )


def cpu_path(model_name: str, runs: int, max_tokens: int) -> None:
    results: dict[str, list[dict]] = {"fast": [], "plain": []}
    for _ in range(runs):
        for label, switch in (("fast", "1"), ("plain", "0")):
            env = {**os.environ, "MLXCHAT_CPU_FAST": switch}
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--model", model_name]
                + ["--tokens", str(max_tokens)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
            results[label].append(json.loads(out.strip().splitlines()[-1]))
    print(f"prompt: {results['fast'][0]['prompt_tokens']} tokens, decode {max_tokens} tokens")
    print(f"{'':10}{'prefill tok/s':>15}{'decode tok/s':>14}  path")
    for label in ("fast", "plain"):
        rows = results[label]
        prefill = statistics.median(r["prefill"] for r in rows)
        decode = statistics.median(r["decode"] for r in rows)
        print(f"{label:10}{prefill:15.1f}{decode:14.1f}  {rows[0]['path']}")
    ratio = {
        key: statistics.median(r[key] for r in results["fast"])
        / statistics.median(r[key] for r in results["plain"])
        for key in ("prefill", "decode")
    }
    print(f"fast/plain: prefill x{ratio['prefill']:.1f}, decode x{ratio['decode']:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--ttft-runs", type=int, default=10)
    parser.add_argument("--cpu-runs", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup_process()  # first: the fast BLAS, before anything imports MLX
    if args.child:
        cpu_path_child(args.model, args.tokens)
        return
    import mlx.core as mx

    print(f"machine: {machine()}; python {platform.python_version()}; mlx {mx.__version__}")
    print("\n== engine overhead ==")
    overhead(args.model, args.runs, args.tokens, args.ttft_runs)
    print("\n== CPU fast path vs plain ==")
    cpu_path(args.model, args.cpu_runs, 32)
    sys.stdout.flush()
    # MLX was used from two threads (main and engine); skip its teardown at exit, which
    # can abort ("terminate called without an active exception") after all output is out.
    os._exit(0)


if __name__ == "__main__":
    main()

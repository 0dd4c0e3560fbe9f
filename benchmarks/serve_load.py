"""Many clients at once: `mlxchat serve` against `mlx_lm.server`, and the engine alone.

Both servers run as subprocesses on the same model directory (each as users run it:
mlxchat with its CPU fast path, mlx-lm with the weights as stored and its own batching).
For N = 1, 4, 8, 16 concurrent streaming clients with distinct prompts (an async httpx
client reading SSE), `--tokens` tokens each, the two servers take turns; then the
in-process engine alone at the same N. Printed per N: total completion tok/s, time to
first token p50/p95, inter-token gap p50/p99, errors, whether every stream ended with
[DONE]; mlxchat's prompt cache at its peak against its budget; the goals as ratios.

`--long-prompt N` measures fairness instead, on `mlxchat serve` alone: a short request's
time to first token alone, then sent (three times, one after another) while a prompt of
N tokens is prefilled, and that long request's own time alone and with the short ones.

    python benchmarks/serve_load.py [--model demo] [--tokens 64] [--clients 1,4,8,16]
    python benchmarks/serve_load.py --long-prompt 2000 [--short-delay 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxchat.engine.cpu import describe_blas, setup_process

TOPICS = [
    "a lighthouse keeper", "a chess club", "a lost umbrella", "a night train", "a bakery",
    "a mountain village", "a robot gardener", "a jazz band", "an old map", "a winter fair",
    "a river ferry", "a quiet library", "a kite festival", "a clockmaker", "a beekeeper",
    "a tiny island",
]  # fmt: skip


def prompt(n: int, round_: int) -> str:
    """Client n's prompt in a round: distinct, so no request reuses another's cache."""
    return f"Story {round_}-{n}. Write a short story about {TOPICS[n % len(TOPICS)]}."


@dataclass
class Load:
    """One round of N clients."""

    ttft: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    tokens: int = 0
    errors: int = 0
    done: int = 0
    wall: float = 0.0

    def line(self, n: int) -> str:
        gaps = sorted(self.gaps) or [0.0]
        ttft = sorted(self.ttft) or [0.0]
        return (
            f"{self.tokens / self.wall:9.1f} tok/s  TTFT p50 {_pct(ttft, 50):6.2f} s "
            f"p95 {_pct(ttft, 95):6.2f} s  gap p50 {_pct(gaps, 50) * 1000:6.0f} ms "
            f"p99 {_pct(gaps, 99) * 1000:6.0f} ms  errors {self.errors}  "
            f"[DONE] {self.done}/{n}"
        )

    @property
    def rate(self) -> float:
        return self.tokens / self.wall if self.wall else 0.0


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def one_client(client: Any, url: str, model: str, text: str, tokens: int, load: Load) -> None:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
    }
    start = time.perf_counter()
    last = None
    try:
        async with client.stream("POST", f"{url}/chat/completions", json=body) as reply:
            if reply.status_code != 200:
                load.errors += 1
                return
            async for line in reply.aiter_lines():
                if line == "data: [DONE]":
                    load.done += 1
                elif line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    choices = chunk.get("choices") or [{}]
                    if (choices[0].get("delta") or {}).get("content"):
                        now = time.perf_counter()
                        if last is None:
                            load.ttft.append(now - start)
                        else:
                            load.gaps.append(now - last)
                        last = now
                        load.tokens += 1
    except Exception:
        load.errors += 1


async def round_of(url: str, model: str, n: int, tokens: int, round_: int) -> Load:
    import httpx

    load = Load()
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(
            *(one_client(client, url, model, prompt(i, round_), tokens, load) for i in range(n))
        )
        load.wall = time.perf_counter() - start
    return load


async def engine_round(engine: Any, n: int, tokens: int, round_: int) -> Load:
    from mlxchat.engine.types import Chunk, Message, SamplingParams

    load = Load()
    params = SamplingParams(max_tokens=tokens)

    async def client(i: int) -> None:
        start, last = time.perf_counter(), None
        async for event in engine.stream([Message("user", prompt(i, round_))], params):
            if isinstance(event, Chunk) and event.text:
                now = time.perf_counter()
                (load.ttft.append(now - start) if last is None else load.gaps.append(now - last))
                last = now
                load.tokens += 1
        load.done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(n)))
    load.wall = time.perf_counter() - start
    return load


def agreement(batched: Any, single: Any, tokens: int, prompts: int = 16) -> None:
    """Greedy answers of `prompts` requests together against each alone: how many differ,
    and where (float sums in another order can flip a near-tie late in an answer)."""
    from mlxchat.engine.types import Message, SamplingParams

    params = SamplingParams(max_tokens=tokens)
    texts = [[Message("user", prompt(i, 9000))] for i in range(prompts)]
    alone = [single.generate_sync(t, params).tokens for t in texts]

    async def together() -> list[list[int]]:
        results = await asyncio.gather(*(batched.generate(t, params) for t in texts))
        return [r.tokens for r in results]

    batch = asyncio.run(together())
    differ = [
        next(i for i, (a, b) in enumerate(zip(x, y, strict=False)) if a != b) if x != y else None
        for x, y in zip(alone, batch, strict=True)
    ]
    where = [d for d in differ if d is not None]
    print(
        f"greedy, {prompts} prompts x {tokens} tokens together vs alone: "
        f"{prompts - len(where)} identical; differing from token {where or '-'}"
    )


SHORT = "What is the capital of France?"


def document(tokens: int, n: int) -> str:
    """A plain document of about `tokens` tokens, distinct from its first words on."""
    words = [f"Document {n}."]
    lines = range(tokens * 10 // 110)
    words += [f"line {i}: the {TOPICS[i % len(TOPICS)]} and its notes." for i in lines]
    return "\n".join(words) + "\nSummarize the document in one sentence."


async def timed(client: Any, url: str, model: str, text: str, tokens: int) -> tuple[float, float]:
    """One streamed request: (time to its first token, its whole time)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
    }
    start, first = time.perf_counter(), None
    async with client.stream("POST", f"{url}/chat/completions", json=body) as reply:
        async for line in reply.aiter_lines():
            if first is None and line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    first = time.perf_counter() - start
    return first or 0.0, time.perf_counter() - start


async def fairness(url: str, model: str, long_tokens: int, delay: float, tokens: int) -> None:
    """Short requests during a long prefill against each alone (see the module doc)."""
    import httpx

    async with httpx.AsyncClient(timeout=3600) as client:
        await timed(client, url, model, "Hello", 4)  # warm
        alone = [(await timed(client, url, model, f"{i}. {SHORT}", tokens))[0] for i in range(3)]
        long_alone = (await timed(client, url, model, document(long_tokens, 1), 1))[1]
        long_task = asyncio.create_task(timed(client, url, model, document(long_tokens, 2), 1))
        await asyncio.sleep(delay)
        during = []
        for i in range(3):
            during.append(await timed(client, url, model, f"{i + 10}. {SHORT}", tokens))
        long_with = (await long_task)[1]
    base = statistics.median(alone)
    print(f"long prompt about {long_tokens} tokens; short requests {tokens} tokens, greedy")
    print(f"short request alone: TTFT {', '.join(f'{t:.2f}' for t in alone)} s")
    for i, (ttft, total) in enumerate(during):
        print(f"short request {i + 1} during the long prefill: TTFT {ttft:.2f} s ({total:.2f} s)")
    print(
        f"long request alone {long_alone:.1f} s; with the short ones {long_with:.1f} s "
        f"({100 * (long_with / long_alone - 1):+.1f} %, goal <= +15 %)"
    )
    worst = max(ttft for ttft, _ in during)
    print(f"worst short TTFT {worst:.2f} s (goal <= 2 x {base:.2f} s + one chunk, <= 5 s)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(argv: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    import httpx

    proc = subprocess.Popen(
        [sys.executable, *argv],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[:3]} did not start")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--clients", default="1,4,8,16")
    parser.add_argument("--concurrency", type=int, default=8, help="mlxchat's --max-concurrency")
    parser.add_argument("--single-rounds", type=int, default=4)
    parser.add_argument("--long-prompt", type=int, default=0, help="fairness: prompt tokens")
    parser.add_argument("--short-delay", type=float, default=5.0)
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    setup_process()
    import httpx
    import mlx.core as mx
    import mlx_lm

    from mlxchat.engine.engine import Engine
    from mlxchat.models.loader import resolve_model

    print(
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores; "
        f"BLAS: {describe_blas()}; python {platform.python_version()}; mlx {mx.__version__}; "
        f"mlx-lm {mlx_lm.__version__}"
    )
    model_dir = str(resolve_model(args.model))
    print(f"model: {args.model} ({model_dir}); {args.tokens} tokens per client, greedy\n")
    ours, theirs = free_port(), free_port()
    mlxchat_argv = ["-m", "mlxchat", "serve", "-m", model_dir, "--port", str(ours)]
    mlxchat_argv += ["--max-concurrency", str(args.concurrency), "--max-queue", "64"]
    mlx_argv = ["-m", "mlx_lm", "server", "--model", model_dir, "--port", str(theirs)]
    mlx_argv += ["--decode-concurrency", "16", "--prompt-concurrency", "8"]
    if args.long_prompt:
        with server(mlxchat_argv, ours) as mine:
            asyncio.run(fairness(mine, model_dir, args.long_prompt, args.short_delay, 12))
        return
    hf_home = Path(os.environ.get("TMPDIR", "/tmp")) / "serve-load-hf"
    results: dict[str, dict[int, Load]] = {"mlxchat serve": {}, "mlx_lm.server": {}}
    peak_cache = 0
    budget = 0
    with (
        server(mlxchat_argv, ours) as mine,
        server(mlx_argv, theirs, {"HF_HOME": str(hf_home)}) as other,
    ):
        for round_, n in enumerate(counts):
            for name, url, model in (
                ("mlxchat serve", mine, model_dir),
                ("mlx_lm.server", other, model_dir),
            ):
                asyncio.run(round_of(url, model, 1, 4, 1000 + round_))  # warm
                results[name][n] = asyncio.run(round_of(url, model, n, args.tokens, round_))
                if name == "mlxchat serve":
                    cache = httpx.get(f"{url.removesuffix('/v1')}/health").json()["prompt_cache"]
                    peak_cache, budget = max(peak_cache, cache["bytes"]), cache["budget"]
                print(f"N={n:<3} {name:14} {results[name][n].line(n)}", flush=True)
    engine = Engine(max_batch=args.concurrency)
    engine.load_sync(model_dir)
    alone: dict[int, Load] = {}
    for round_, n in enumerate(counts):
        asyncio.run(engine_round(engine, 1, 4, 2000 + round_))
        alone[n] = asyncio.run(engine_round(engine, n, args.tokens, 3000 + round_))
        print(f"N={n:<3} {'engine alone':14} {alone[n].line(n)}", flush=True)
    # one stream: the batch against the code before it (one answer at a time), alternated
    single = Engine(batched=False)
    single.load_sync(model_dir)
    rates: dict[str, list[float]] = {"batched": [], "one at a time": []}
    for round_ in range(args.single_rounds):
        for name, which in (("batched", engine), ("one at a time", single)):
            load = asyncio.run(engine_round(which, 1, 128, 4000 + round_))
            rates[name].append(1 / statistics.median(load.gaps))
    agreement(engine, single, args.tokens)
    single.close()
    engine.close()
    for name, values in rates.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(
            f"one stream, {name:14} decode tok/s: {shown} (median {statistics.median(values):.1f})"
        )
    ratio = statistics.median(rates["batched"]) / statistics.median(rates["one at a time"])
    print(f"one stream: batched / one at a time = {ratio:.3f} (goal >= 0.97)")

    ours_r, theirs_r = results["mlxchat serve"], results["mlx_lm.server"]
    print(f"\nprompt cache peak: {peak_cache / 1e6:.1f} MB of {budget / 1e6:.0f} MB budget")
    if 1 in ours_r and 8 in ours_r:
        ratio = ours_r[8].rate / ours_r[1].rate
        print(f"mlxchat at 8 clients / at 1: {ratio:.2f}x total tok/s (goal >= 4)")
    if 8 in ours_r and 8 in theirs_r:
        ratio = ours_r[8].rate / theirs_r[8].rate
        print(f"mlxchat / mlx_lm.server at 8 clients: {ratio:.2f}x total tok/s (goal >= 3)")
        p95 = (_pct(sorted(ours_r[8].ttft), 95), _pct(sorted(theirs_r[8].ttft), 95))
        print(f"TTFT p95 at 8 clients: {p95[0]:.2f} s vs {p95[1]:.2f} s (goal: <=)")


if __name__ == "__main__":
    main()

"""What serving over HTTP costs, measured side by side in one run.

Part 1 — raw `mlx_lm.stream_generate` against a streaming request to `mlxchat serve`
(in-process uvicorn on loopback, read by httpx): same model, same prompts, greedy, runs
alternated. Goals: served decode tok/s >= 0.95 x raw, TTFT within +30 ms.

Part 2 — `mlxchat serve` against `mlx_lm.server`, both as subprocesses on the demo model's
directory, the same streaming requests alternated (each server as users run it: mlxchat
with its CPU fast path, mlx-lm with the weights as stored).

Part 3 — time to cancel: a client drops a stream mid-answer; the time until the engine is
free again (a no-op engine job queued behind the answer completes), in token times.

Part 4 — the listening socket: the same app served from a socket made as `mlxchat serve`
makes it (`IPPROTO_TCP`: asyncio sets TCP_NODELAY on each connection) and from one made with
protocol 0 (as before: no TCP_NODELAY), alternated: a tiny keep-alive request's latency
(`GET /health`) and the gaps between streamed tokens as the client receives them.

    python benchmarks/serve_overhead.py [--model demo] [--runs 3] [--tokens 128] [--skip-mlx-server]
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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlxchat.engine.cpu import describe_blas, setup_process

TOPICS = ["a lighthouse keeper", "a chess club", "a lost umbrella", "a night train", "a bakery"]
TEMPLATE = "Story {n}. Write a short story about {topic}, in about two hundred words."


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} cores; "
        f"BLAS: {describe_blas()}"
    )


def prompt(n: int) -> str:
    """Run n's prompt: different from the start, so no server reuses another run's cache."""
    return TEMPLATE.format(n=n, topic=TOPICS[n % len(TOPICS)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_run(model: Any, tokenizer: Any, text: str, max_tokens: int) -> dict[str, float]:
    import mlx.core as mx
    from mlx_lm.generate import stream_generate

    messages = [{"role": "user", "content": text}]
    start = time.perf_counter()
    tokens = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    first = last = 0.0
    count = 0
    for _ in stream_generate(model, tokenizer, mx.array(tokens), max_tokens=max_tokens):
        last = time.perf_counter()
        first = first or last
        count += 1
    return {"ttft": first - start, "tps": (count - 1) / (last - first), "tokens": count}


def http_run(base: str, text: str, max_tokens: int, model: str = "demo") -> dict[str, float]:
    """One streaming chat request read with httpx; tokens counted from the usage chunk."""
    import httpx

    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    first = last = 0.0
    tokens = 0
    start = time.perf_counter()
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
            if event.get("choices") and event["choices"][0]["delta"].get("content"):
                last = time.perf_counter()
                first = first or last
    return {"ttft": first - start, "tps": (tokens - 1) / (last - first), "tokens": tokens}


def in_process_server(engine: Any) -> Any:
    """The app on `mlxchat serve`'s stack in this process (its socket, protocol and uvicorn)."""
    return socket_server(engine, nodelay=True)


def table(rows: dict[str, list[dict[str, float]]]) -> None:
    names = list(rows)
    print(f"{'':28}" + "".join(f"{n:>16}" for n in names))
    for key, label, scale in (
        ("tps", "decode tok/s (median)", 1),
        ("ttft", "TTFT ms (median)", 1e3),
    ):
        cells = "".join(
            f"{statistics.median(r[key] for r in rows[n]) * scale:16.1f}" for n in names
        )
        print(f"{label:28}{cells}")
    print(f"{'tokens per answer':28}" + "".join(f"{rows[n][0]['tokens']:16.0f}" for n in names))


def part1(model_name: str, runs: int, max_tokens: int) -> tuple[Any, str]:
    from mlxchat.engine.engine import Engine
    from mlxchat.models.loader import load_model

    print("== raw mlx-lm vs a streaming request to mlxchat serve (in-process) ==")
    model, tokenizer, info = load_model(model_name)
    engine = Engine()
    engine.load_sync(model_name)
    print(f"model: {info.name} ({info.path}), {info.dtype}")
    print(f"prompts: {TEMPLATE!r}, generate {max_tokens} tokens, greedy, {runs} pairs")
    rows: dict[str, list[dict[str, float]]] = {"raw mlx-lm": [], "mlxchat serve": []}
    with in_process_server(engine) as base:
        http_run(base, prompt(99), 8)  # warm-up both sides
        raw_run(model, tokenizer, prompt(99), 8)
        for n in range(runs):
            rows["raw mlx-lm"].append(raw_run(model, tokenizer, prompt(n), max_tokens))
            rows["mlxchat serve"].append(http_run(base, prompt(n), max_tokens))
        table(rows)
        raw, served = rows["raw mlx-lm"], rows["mlxchat serve"]
        ratio = statistics.median(r["tps"] for r in served) / statistics.median(
            r["tps"] for r in raw
        )
        ttft = statistics.median(r["ttft"] for r in served) - statistics.median(
            r["ttft"] for r in raw
        )
        print(
            f"serve/raw decode tok/s ratio: {ratio:.3f}  (goal >= 0.95: {verdict(ratio >= 0.95)})"
        )
        print(
            f"serve TTFT - raw TTFT: {ttft * 1e3:+.1f} ms  "
            f"(goal <= +30 ms: {verdict(ttft <= 0.03)})"
        )
        part3(engine, base, max_tokens, statistics.median(r["tps"] for r in served))
    del model
    return engine, info.path


def part3(engine: Any, base: str, max_tokens: int, tps: float) -> None:
    import httpx

    print("\n== time to cancel after a client disconnects ==")
    times = []
    for n in range(5):
        body = {
            "messages": [{"role": "user", "content": prompt(n)}],
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=600) as r:
            for _, _line in zip(range(5), r.iter_lines(), strict=False):
                pass  # read 5 events, then drop the connection
            gone = time.perf_counter()
        asyncio.run(engine.call(lambda: None))  # queued behind the answer: runs once it stopped
        times.append(time.perf_counter() - gone)
    token = 1 / tps
    worst = max(times)
    print(
        "5 disconnects after 5 events: engine free after "
        + ", ".join(f"{t * 1e3:.0f}" for t in times)
        + " ms"
    )
    print(
        f"one token takes {token * 1e3:.0f} ms; worst = {worst / token:.2f} token times "
        f"(goal <= 2: {verdict(worst <= 2 * token)})"
    )


@contextmanager
def subprocess_server(argv: list[str], port: int) -> Iterator[str]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise SystemExit(f"{argv[2:4]} exited with {process.returncode}") from None
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        process.wait(30)


def part2(model_dir: str, runs: int, max_tokens: int) -> None:
    print("\n== mlxchat serve vs mlx_lm.server (subprocesses, same prompts) ==")
    p1, p2 = free_port(), free_port()
    mlxchat_argv = [sys.executable, "-m", "mlxchat", "serve", "-m", model_dir, "--port", str(p1)]
    mlxlm_argv = [sys.executable, "-m", "mlx_lm", "server", "--model", model_dir, "--port", str(p2)]
    print(f"model dir: {model_dir} (mlxchat: float32 CPU fast path; mlx_lm.server: as stored)")
    rows: dict[str, list[dict[str, float]]] = {"mlxchat serve": [], "mlx_lm.server": []}
    with subprocess_server(mlxchat_argv, p1) as a, subprocess_server(mlxlm_argv, p2) as b:
        http_run(a, prompt(98), 4, model_dir)
        http_run(b, prompt(98), 4, "default_model")
        for n in range(runs):
            rows["mlxchat serve"].append(http_run(a, prompt(10 + n), max_tokens, model_dir))
            rows["mlx_lm.server"].append(http_run(b, prompt(10 + n), max_tokens, "default_model"))
    table(rows)
    ours, theirs = rows["mlxchat serve"], rows["mlx_lm.server"]
    ratio = statistics.median(r["tps"] for r in ours) / statistics.median(r["tps"] for r in theirs)
    ttft = statistics.median(r["ttft"] for r in ours) - statistics.median(r["ttft"] for r in theirs)
    print(f"mlxchat/mlx_lm.server decode tok/s: {ratio:.2f}x; TTFT difference {ttft * 1e3:+.0f} ms")


@contextmanager
def socket_server(engine: Any, nodelay: bool) -> Iterator[str]:
    """The app on the `mlxchat serve` stack, from a TCP_NODELAY-capable socket or not."""
    from mlxchat.server.app import create_app
    from mlxchat.server.serving import listen, server

    if nodelay:
        listener = listen("127.0.0.1", 0)
    else:  # protocol 0: asyncio does not set TCP_NODELAY on accepted connections
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
    running = server(create_app(engine), engine)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    running.should_exit = True
    thread.join(10)
    listener.close()


def tiny_latencies(base: str, count: int) -> list[float]:
    """Milliseconds per `GET /health` over one keep-alive connection."""
    import httpx

    times = []
    with httpx.Client() as client:
        client.get(f"{base}/health")
        for _ in range(count):
            start = time.perf_counter()
            client.get(f"{base}/health").raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    return times


def token_gaps(base: str, tokens: int) -> list[float]:
    """Milliseconds between streamed tokens as the client receives them."""
    import httpx

    body = {
        "messages": [{"role": "user", "content": prompt(7)}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
    }
    arrivals = []
    url = f"{base}/v1/chat/completions"
    with httpx.Client(timeout=120) as client, client.stream("POST", url, json=body) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                arrivals.append(time.perf_counter())
    return [(b - a) * 1000 for a, b in zip(arrivals, arrivals[1:], strict=False)]


def part4(engine: Any, rounds: int, tokens: int) -> None:
    print("\n== the listening socket: TCP_NODELAY (IPPROTO_TCP) vs protocol 0 ==")
    tiny: dict[bool, list[float]] = {True: [], False: []}
    gaps: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for nodelay in (True, False):
            with socket_server(engine, nodelay) as base:
                tiny[nodelay] += tiny_latencies(base, 50)
                gaps[nodelay] += token_gaps(base, tokens)
    print(f"{rounds} rounds alternated; 50 keep-alive GET /health, {tokens} streamed tokens each")
    print(f"{'':28}{'median':>10}{'p90':>10}{'max':>10}")
    for nodelay, label in ((True, "nodelay"), (False, "protocol 0")):
        for name, values in (("GET /health ms", tiny[nodelay]), ("token gap ms", gaps[nodelay])):
            ordered = sorted(values)
            p90 = ordered[int(0.9 * (len(ordered) - 1))]
            print(
                f"{label + ' ' + name:28}{statistics.median(ordered):10.1f}"
                f"{p90:10.1f}{ordered[-1]:10.1f}"
            )
    ratio = statistics.median(tiny[False]) / statistics.median(tiny[True])
    print(f"tiny request: protocol 0 / nodelay median latency = {ratio:.1f}x")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--skip-mlx-server", action="store_true", help="Skip part 2.")
    parser.add_argument("--only-socket", action="store_true", help="Part 4 alone.")
    args = parser.parse_args()
    setup_process()  # the fast BLAS, before anything imports MLX
    import mlx.core as mx
    import mlx_lm

    print(
        f"machine: {machine()}; python {platform.python_version()}; "
        f"mlx {mx.__version__}; mlx-lm {mlx_lm.__version__}\n"
    )
    if args.only_socket:
        from mlxchat.engine.engine import Engine

        engine = Engine()
        engine.load_sync(args.model)
        part4(engine, args.runs, min(args.tokens, 32))
        engine.close()
        return
    engine, model_dir = part1(args.model, args.runs, args.tokens)
    part4(engine, args.runs, min(args.tokens, 32))
    engine.close()
    if not args.skip_mlx_server:
        part2(model_dir, args.runs, args.tokens)


if __name__ == "__main__":
    main()

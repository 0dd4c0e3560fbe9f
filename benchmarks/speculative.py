"""Speculative decoding (prompt lookup inside the batch) against plain decoding, side by side.

The same engine API, the same model, greedy: one engine with `speculative="off"`, one with
"auto" (the default), loaded one after the other. Per workload, single-stream decode tok/s
(after the first token, the engine's own `generation_tps`) of each and their ratio, the
acceptance, and whether the tokens are identical; then (`--clients N`) N concurrent clients,
half of them rewriting code (repetitive), half writing prose: total tok/s of "off", "auto"
and "lookup" (every row drafting), and each client's own rate.

    python benchmarks/speculative.py [--model demo] [--tokens 200] [--clients 8]
        [--draft-model NAME]  (then "auto" guesses with the draft model)
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from typing import Any

from mlxchat.engine.cpu import describe_blas, setup_process

CODE = '''def load_orders(path):
    """Read the orders file and return the valid orders, newest first."""
    orders = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.strip().split(",")
            if len(fields) != 4:
                continue
            order_id, customer, amount, day = fields
            try:
                amount = float(amount)
            except ValueError:
                continue
            if amount <= 0:
                continue
            orders.append({"id": order_id, "customer": customer, "amount": amount, "day": day})
    orders.sort(key=lambda order: order["day"], reverse=True)
    return orders


def total_by_customer(orders):
    """Sum the amounts of each customer's orders."""
    totals = {}
    for order in orders:
        totals[order["customer"]] = totals.get(order["customer"], 0.0) + order["amount"]
    return totals
'''

PASSAGE = (
    "The old lighthouse stood at the end of the harbour wall, its white paint worn grey by "
    "a hundred winters. Every evening at dusk the keeper climbed the one hundred and twelve "
    "steps to the lamp room, wound the clockwork that turned the great lens, and lit the "
    "wick. Ships coming home from the fishing grounds watched for its beam sweeping across "
    "the water every eight seconds. In the morning he climbed the steps again, put out the "
    "flame, polished the brass and wrote the night's weather in the log book that his father "
    "had kept before him. Nobody in the village could remember a night when the light had "
    "failed, not even during the great storm of the winter the bridge fell into the river."
)

WORKLOADS: dict[str, tuple[str, str]] = {
    "rewrite code (rename)": (
        "rewrite",
        "Repeat the following code line for line, but rename the function load_orders to "
        f"read_orders. Output only the code.\n\n{CODE}",
    ),
    "rewrite passage (one word)": (
        "rewrite",
        "Repeat the following passage word for word, but replace 'keeper' with 'warden'. "
        f"Output only the passage.\n\n{PASSAGE}",
    ),
    "open-ended prose": ("prose", "Write a short story about a robot who learns to paint."),
    "open-ended prose 2": ("prose", "Explain why the sky is blue to a ten-year-old."),
}


def run_alone(engine: Any, prompt: str, tokens: int) -> Any:
    from mlxchat.engine.types import Message, SamplingParams

    params = SamplingParams(temp=0.0, max_tokens=tokens)
    return engine.generate_sync([Message("user", prompt)], params)


async def run_clients(engine: Any, prompts: list[str], tokens: int) -> tuple[float, list[float]]:
    """Total decode tok/s of all clients together, and each client's own."""
    from mlxchat.engine.types import Chunk, Message, SamplingParams

    params = SamplingParams(temp=0.0, max_tokens=tokens)

    async def one(prompt: str) -> tuple[int, float]:
        count, last = 0, None
        async for event in engine.stream([Message("user", prompt)], params):
            if isinstance(event, Chunk):
                count += event.token is not None
                last = event.stats
        return count, last.generation_tps if last is not None else 0.0

    start = time.perf_counter()
    results = await asyncio.gather(*(one(p) for p in prompts))
    elapsed = time.perf_counter() - start
    return sum(n for n, _ in results) / elapsed, [rate for _, rate in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--clients", type=int, default=0, help="concurrent clients (0: skip)")
    parser.add_argument("--draft-model", default=None, help="auto and lookup engines get it")
    args = parser.parse_args()
    setup_process()
    from mlxchat.engine.engine import Engine

    print(f"{platform.machine()} {platform.processor() or ''} BLAS: {describe_blas()}")
    print(f"model {args.model}, draft model {args.draft_model or 'none'}, greedy, ", end="")
    print(f"up to {args.tokens} tokens per answer\n")
    results: dict[str, dict[str, Any]] = {"off": {}, "auto": {}}
    clients: dict[str, tuple[float, list[float]]] = {}
    names = list(WORKLOADS)
    mixed = [WORKLOADS[names[0]][1] if i % 2 == 0 else WORKLOADS[names[2]][1] for i in range(8)]
    prompts = [f"(client {i}) {mixed[i % len(mixed)]}" for i in range(args.clients)]
    for mode in ("off", "auto", "lookup"):
        if mode == "lookup" and not args.clients:
            break
        draft = None if mode == "off" else args.draft_model
        engine = Engine(progress_interval=0.0, speculative=mode, draft_model=draft)
        engine.load_sync(args.model)
        run_alone(engine, "Hello", 8)  # warm up
        for name, (_, prompt) in WORKLOADS.items() if mode in results else ():
            result = run_alone(engine, prompt, args.tokens)
            results[mode][name] = result
            print(
                f"  {mode:6} {name:28} {result.stats.generation_tokens:4} tokens "
                f"{result.stats.generation_tps:6.2f} tok/s "
                f"(drafted {result.stats.draft_tokens}, accepted {result.stats.accepted_tokens})",
                flush=True,
            )
        if args.clients:
            clients[mode] = asyncio.run(run_clients(engine, prompts, args.tokens))
            each = " ".join(f"{rate:.2f}" for rate in clients[mode][1])
            print(f"  {mode:6} {args.clients} clients: {clients[mode][0]:.2f} tok/s total ({each})")
        engine.close()

    print("\n| workload (one stream) | plain tok/s | auto tok/s | ratio | accepted | identical |")
    print("|---|---|---|---|---|---|")
    for name, (kind, _) in WORKLOADS.items():
        off, on = results["off"][name], results["auto"][name]
        ratio = on.stats.generation_tps / max(off.stats.generation_tps, 1e-9)
        drafted = on.stats.draft_tokens
        accepted = f"{on.stats.accepted_tokens / drafted:.0%}" if drafted else "-"
        same = "yes" if on.tokens == off.tokens else "NO"
        goal = "≥ 2x" if kind == "rewrite" else "≥ 0.97x"
        print(
            f"| {name} ({goal}) | {off.stats.generation_tps:.2f} | "
            f"{on.stats.generation_tps:.2f} | {ratio:.2f}x | {accepted} | {same} |"
        )
    if clients:
        off_total, off_each = clients["off"]
        rewriting = range(0, args.clients, 2)
        for mode in ("auto", "lookup"):
            total, each = clients[mode]
            faster = sum(each[i] > off_each[i] for i in rewriting)
            print(
                f"| {args.clients} clients, half rewriting, {mode} (total) | {off_total:.2f} | "
                f"{total:.2f} | {total / max(off_total, 1e-9):.2f}x | rewriting clients faster: "
                f"{faster} of {len(rewriting)} | |"
            )


if __name__ == "__main__":
    main()

"""Constrained decoding's cost and a mixed batch: JSON schema against free text, same prompts,
one run; then 8 concurrent mixed requests (plain, tools, schema, logprobs) through a real
`mlxchat serve` stack on loopback with the official `openai` client, each checked.

Part 1 runs each prompt free, then with a JSON schema (llguidance bitmask per token,
applied with `mx.where`), one request at a time, and prints decode tok/s of each (the
engine's own `generation_tps`: tokens after the first over the time since it) and the
ratio (goal >= 0.9). Part 2 sends 8 requests at once (2 of each kind) and prints what came
back and whether it is right.

    python benchmarks/structured.py [--model demo] [--tokens 48]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from mlxchat.engine.cpu import describe_blas, setup_process

PROMPTS = [
    "Describe Marie Curie.",
    "Describe the city of Lyon.",
    "Describe a bicycle.",
    "Describe the planet Mars.",
]


class Thing(BaseModel):
    name: str = Field(max_length=40)
    year: int
    kind: Literal["person", "place", "object", "other"]
    summary: str = Field(max_length=200)


class Lookup(BaseModel):
    city: str = Field(max_length=30)
    unit: Literal["celsius", "fahrenheit"]


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": Lookup.model_json_schema(),
    },
}


def part1(engine: Any, tokens: int) -> float:
    from mlxchat.engine.types import Message, RequestOptions, SamplingParams

    params = SamplingParams(temp=0.0, max_tokens=tokens)
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": Thing.model_json_schema()},
    }
    free_rates, json_rates = [], []
    print(f"{'prompt':32} {'free tok/s':>10} {'(tokens)':>8} {'schema tok/s':>12} {'(tokens)':>8}")
    engine.generate_sync("warm up", SamplingParams(temp=0.0, max_tokens=4))
    for text in PROMPTS:
        messages = [Message("user", text + " Answer in JSON.")]
        free = engine.generate_sync(messages, params)
        forced = engine.generate_sync(
            messages, params, options=RequestOptions(response_format=schema)
        )
        free_rates.append(free.stats.generation_tps)
        json_rates.append(forced.stats.generation_tps)
        print(
            f"{text:32} {free.stats.generation_tps:10.1f} {free.stats.generation_tokens:8d} "
            f"{forced.stats.generation_tps:12.1f} {forced.stats.generation_tokens:8d}"
        )
    ratio = statistics.mean(json_rates) / statistics.mean(free_rates)
    print(
        f"mean: free {statistics.mean(free_rates):.1f} tok/s, schema "
        f"{statistics.mean(json_rates):.1f} tok/s, ratio {ratio:.2f} (goal >= 0.9)"
    )
    return ratio


def part2(engine: Any, tokens: int) -> bool:
    import openai

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from server_helpers import running_server

    from mlxchat.config import Settings
    from mlxchat.server.state import ServerConfig

    config = ServerConfig(max_concurrency=8, defaults=Settings(temp=0.0, max_tokens=tokens * 2))
    with running_server(engine, config) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=900)

        def plain(i: int) -> tuple[str, bool, str]:
            answer = client.chat.completions.create(
                model="demo", messages=[{"role": "user", "content": PROMPTS[i]}], max_tokens=tokens
            )
            text = answer.choices[0].message.content or ""
            return "plain", bool(text) and answer.choices[0].logprobs is None, text[:50]

        def tools(i: int) -> tuple[str, bool, str]:
            city = ["Paris", "Tokyo"][i % 2]
            answer = client.chat.completions.create(
                model="demo",
                messages=[{"role": "user", "content": f"Weather in {city}?"}],
                tools=[TOOL],  # type: ignore[list-item]
                tool_choice={"type": "function", "function": {"name": "get_weather"}},
            )
            calls = answer.choices[0].message.tool_calls or []
            ok = len(calls) == 1 and answer.choices[0].finish_reason == "tool_calls"
            try:
                Lookup.model_validate_json(calls[0].function.arguments)  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - reported as not ok
                ok = False
            return "tools", ok, calls[0].function.arguments if calls else ""  # type: ignore[union-attr]

        def schema(i: int) -> tuple[str, bool, str]:
            answer = client.chat.completions.parse(
                model="demo",
                messages=[{"role": "user", "content": PROMPTS[i] + " Answer in JSON."}],
                response_format=Thing,
            )
            parsed = answer.choices[0].message.parsed
            return (
                "schema",
                isinstance(parsed, Thing),
                json.dumps(parsed.model_dump() if parsed else None)[:60],
            )

        def logprobs(i: int) -> tuple[str, bool, str]:
            answer = client.chat.completions.create(
                model="demo",
                messages=[{"role": "user", "content": PROMPTS[i]}],
                max_tokens=tokens,
                logprobs=True,
                top_logprobs=5,
            )
            content = answer.choices[0].logprobs.content  # type: ignore[union-attr]
            usage = answer.usage.completion_tokens  # type: ignore[union-attr]
            joined = "".join(e.token for e in content) == answer.choices[0].message.content
            ok = (
                joined
                and all(len(e.top_logprobs) == 5 for e in content)
                and len(content) >= usage - 1
            )
            return (
                "logprobs",
                ok,
                f"{len(content)} tokens, first {content[0].token!r} {content[0].logprob:.2f}",
            )

        jobs = [(kind, i) for i in range(2) for kind in (plain, tools, schema, logprobs)]
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda job: job[0](job[1]), jobs))
        wall = time.perf_counter() - start
    for kind, ok, shown in results:
        print(f"  {kind:9} {'ok ' if ok else 'BAD'} {shown}")
    good = all(ok for _, ok, _ in results)
    print(f"8 mixed requests at once: {sum(ok for _, ok, _ in results)}/8 correct in {wall:.1f} s")
    return good


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--tokens", type=int, default=48)
    args = parser.parse_args()
    setup_process()
    from mlxchat.engine.engine import Engine

    print(f"BLAS: {describe_blas()}")
    engine = Engine()
    engine.load_sync(args.model)
    try:
        print("\n1. JSON schema against free text (one request at a time)")
        part1(engine, args.tokens)
        print("\n2. 8 concurrent mixed requests (2 plain, 2 tools, 2 schema, 2 logprobs)")
        part2(engine, args.tokens)
    finally:
        engine.close()


if __name__ == "__main__":
    main()

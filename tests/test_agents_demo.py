"""Constrained output end to end on the real demo model (SmolLM2-135M-Instruct, whose chat
template has no tool support): the official `openai` client's `parse()` with a Pydantic
model, and a named `tool_choice`, each 20 of 20 prompts valid, 8 at a time in one batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import openai
import pytest
from pydantic import BaseModel, Field
from server_helpers import running_server

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.server.state import ServerConfig

CONFIG = ServerConfig(
    max_queue=32,
    max_concurrency=8,
    max_body_bytes=64_000,
    keepalive_interval=15.0,
    defaults=Settings(temp=0.0, top_p=1.0, max_tokens=120),
)
PEOPLE = [
    "Marie Curie", "Albert Einstein", "Ada Lovelace", "Alan Turing", "Isaac Newton",
    "Grace Hopper", "Nikola Tesla", "Charles Darwin", "Rosalind Franklin", "Galileo Galilei",
    "Jane Austen", "Leonardo da Vinci", "Frida Kahlo", "Louis Pasteur", "Johann Bach",
    "Mozart", "Cleopatra", "Napoleon", "Gandhi", "Shakespeare",
]  # fmt: skip


class Person(BaseModel):
    name: str = Field(max_length=40)
    birth_year: int
    field: Literal["science", "arts", "politics", "other"]


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


@pytest.fixture(scope="module")
def client(demo_engine: Engine) -> Iterator[openai.OpenAI]:
    with running_server(demo_engine, CONFIG) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=600)


def test_parse_returns_a_valid_object_for_20_of_20_prompts(client: openai.OpenAI) -> None:
    def ask(person: str) -> Person | None:
        answer = client.chat.completions.parse(
            model="demo",
            messages=[{"role": "user", "content": f"Describe {person} as JSON."}],
            response_format=Person,
        )
        return answer.choices[0].message.parsed

    with ThreadPoolExecutor(8) as pool:
        parsed = list(pool.map(ask, PEOPLE))
    assert all(isinstance(p, Person) for p in parsed), parsed


def test_a_named_tool_choice_calls_and_validates_20_of_20(client: openai.OpenAI) -> None:
    cities = [p.split()[-1] for p in PEOPLE]

    def ask(city: str) -> tuple[str, str, str | None]:
        answer = client.chat.completions.create(
            model="demo",
            messages=[{"role": "user", "content": f"What is the weather like in {city}?"}],
            tools=[TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
        (call,) = answer.choices[0].message.tool_calls
        return call.function.name, call.function.arguments, answer.choices[0].finish_reason

    with ThreadPoolExecutor(8) as pool:
        calls = list(pool.map(ask, cities))
    for name, arguments, finish in calls:
        assert (name, finish) == ("get_weather", "tool_calls")
        Lookup.model_validate(json.loads(arguments))

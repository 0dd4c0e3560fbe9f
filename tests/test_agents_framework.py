"""A real agent framework (openai-agents, from PyPI) runs a tool loop to its end against the
server on loopback: a forced first call, the tool's result sent back, then the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from server_helpers import running_server

from mlxchat.config import Settings
from mlxchat.engine.engine import Engine
from mlxchat.server.state import ServerConfig

agents = pytest.importorskip("agents")

CONFIG = ServerConfig(defaults=Settings(temp=0.0, top_p=1.0, max_tokens=300))


@pytest.fixture(scope="module")
def base(tiny_tools: Path) -> Iterator[str]:
    engine = Engine()
    engine.load_sync(str(tiny_tools))
    with running_server(engine, CONFIG) as url:
        yield url
    engine.close()


def test_openai_agents_runs_a_tool_loop_to_its_end(base: str) -> None:
    from openai import AsyncOpenAI

    calls: list[tuple[str, str]] = []

    @agents.function_tool
    def get_weather(city: str, unit: Literal["C", "F"]) -> str:
        """The weather in a city."""
        calls.append((city, unit))
        return f"Sunny, 21 {unit}"

    client = AsyncOpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    agents.set_tracing_disabled(True)
    agent = agents.Agent(
        name="weather",
        instructions="Answer with the weather.",
        tools=[get_weather],
        model=agents.OpenAIChatCompletionsModel(model="tiny-tools", openai_client=client),
        model_settings=agents.ModelSettings(tool_choice="required", max_tokens=300),
    )
    result = asyncio.run(agents.Runner.run(agent, "What is the weather in Paris?", max_turns=4))
    assert len(calls) == 1 and calls[0][1] in ("C", "F")  # the tool ran once, args valid
    kinds = [item.type for item in result.new_items]
    assert kinds[:2] == ["tool_call_item", "tool_call_output_item"]
    assert kinds[-1] == "message_output_item"  # then the model answered: the loop ended
    assert isinstance(result.final_output, str)
    assert len(result.raw_responses) == 2

"""The chat's tools on a model served elsewhere: the chat on `RemoteEngine`, talking to a
real `mlxchat serve` app on loopback whose (scripted) model calls a real MCP server's tool;
the call crosses HTTP to the chat, and its result crosses back to the model."""

from __future__ import annotations

from dataclasses import replace

from pilot_helpers import until
from server_helpers import running_server

from mlxchat.config import Settings
from mlxchat.engine.remote import RemoteEngine
from mlxchat.server.state import ServerConfig

from .fake_engine import FakeEngine
from .helpers import SIZE, ready
from .test_tools import ask, call, servers_settled, shown, tool_messages, with_tools

CONFIG = ServerConfig(
    max_queue=8,
    max_concurrency=4,
    max_body_bytes=64_000,
    keepalive_interval=15.0,
    defaults=Settings(temp=0.0, max_tokens=256),
)


async def test_a_served_models_call_runs_here_and_its_result_goes_back(make_app, settings) -> None:
    answers = [[call("add", {"a": 2, "b": 3})], ["The sum is ", "5."]]
    served = FakeEngine(answers=answers, loaded="fake")
    with running_server(served, CONFIG) as base:  # type: ignore[arg-type]
        remote = RemoteEngine(api_key="unused")
        chat_settings = with_tools(replace(settings, model=f"{base}/v1"))
        app = make_app(engine=remote, settings=chat_settings)
        async with app.run_test(size=SIZE) as pilot:
            screen = await ready(pilot)
            await servers_settled(pilot, screen)
            screen = await ask(pilot, "add 2 and 3")
            assert "Run add (test)?" in shown(pilot)
            first = served.requests[0].options
            assert first is not None and "add" in [t["function"]["name"] for t in first.tools]
            await pilot.press("y")
            await until(
                pilot,
                lambda: len(served.requests) >= 2 and not screen.answering,
                timeout=30,
            )
            await pilot.pause()
            second = served.requests[1]
            results = tool_messages(second)
            assert [(m.content, m.name) for m in results] == [("5", "add")]
            (sent,) = second.messages[-2].tool_calls
            assert sent.name == "add" and results[0].tool_call_id == sent.id
            assert "The sum is 5." in shown(pilot)
        remote.close()

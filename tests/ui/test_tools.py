"""Tools in the chat: a real stdio MCP server (tests/mcp/tool_server.py, the SDK's FastMCP)
called by the scripted engine's tool calls, with the user approving, refusing, stopping."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from pilot_helpers import screen_rows, until

from mlxchat.config import Settings
from mlxchat.engine.types import Message, ToolCall
from mlxchat.tools.config import ServerConfig
from mlxchat.ui.tools.approval import ApprovalBar

from .fake_engine import FakeEngine
from .helpers import SIZE, ready, type_text

SERVER = str(Path(__file__).parent.parent / "mcp_servers" / "tool_server.py")


def config(name: str = "test", *extra: str, **changes: object) -> ServerConfig:
    """The test server as configured in config.toml."""
    return replace(ServerConfig(name, command=sys.executable, args=(SERVER, *extra)), **changes)  # type: ignore[arg-type]


def with_tools(settings: Settings, *servers: ServerConfig, **changes: object) -> Settings:
    return replace(settings, mcp_servers=servers or (config(),), **changes)  # type: ignore[arg-type]


def call(name: str, arguments: dict, call_id: str = "call-1") -> ToolCall:
    return ToolCall(call_id, name, json.dumps(arguments))


async def servers_settled(pilot, screen) -> None:
    servers = screen.tools.toolbox.servers.values()
    await until(pilot, lambda: all(s.state != "starting" for s in servers), timeout=90)


def shown(pilot) -> str:
    return "\n".join(screen_rows(pilot.app))


def tool_messages(request) -> list[Message]:
    return [m for m in request.messages if m.role == "tool"]


async def ask(pilot, text: str):
    """Send `text` and wait for the approval question."""
    screen = pilot.app.chat_screen
    await type_text(pilot, text)
    await pilot.press("enter")
    try:
        await until(pilot, lambda: bool(screen.query(ApprovalBar)), timeout=20)
    except AssertionError:
        print(shown(pilot), screen.tools.worker, screen.chat.turns, screen.engine.requests)
        raise
    await pilot.pause()
    return screen


async def settled(pilot, screen, requests: int) -> None:
    engine = screen.engine
    await until(
        pilot,
        lambda: (
            len(engine.requests) >= requests and not screen.answering and not screen.tools.running
        ),
        timeout=30,
    )
    await pilot.pause()


async def test_approve_runs_the_call_and_the_answer_goes_on(make_app, settings, history) -> None:
    engine = FakeEngine(answers=[[call("add", {"a": 2, "b": 3})], ["The sum is ", "5."]])
    app = make_app(engine=engine, settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        screen = await ask(pilot, "add 2 and 3")
        text = shown(pilot)
        assert "tool call test · add" in text  # the block: server, tool, arguments
        assert '"a": 2,' in text and '"b": 3' in text
        assert "Run add (test)?  y/Enter once · a always · n refuse · Esc stop" in text
        assert len(engine.requests) == 1  # nothing ran, nothing more asked of the model
        first = engine.requests[0].options
        assert first is not None and "add" in [t["function"]["name"] for t in first.tools]
        await pilot.press("y")
        await settled(pilot, screen, 2)
        results = tool_messages(engine.requests[1])
        assert [(m.content, m.tool_call_id, m.name) for m in results] == [("5", "call-1", "add")]
        assert engine.requests[1].messages[-2].tool_calls == (call("add", {"a": 2, "b": 3}),)
        text = shown(pilot)
        assert "tool: add" in text and "The sum is 5." in text
        assert not screen.query(ApprovalBar)
        saved = history.get_conversation(screen.chat.conversation_id)
        roles = [(m.role, m.content, m.tool_name) for m in saved.messages]
        assert roles == [
            ("user", "add 2 and 3", None),
            ("assistant", "", None),
            ("tool", "5", "add"),
            ("assistant", "The sum is 5.", None),
        ]
        assert saved.messages[1].tool_calls[0].name == "add"


async def test_resume_shows_the_calls_and_results(make_app, settings, history) -> None:
    engine = FakeEngine(answers=[[call("lines", {"count": 20})], ["Twenty lines."]])
    tools = with_tools(settings)
    app = make_app(engine=engine, settings=tools)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        await ask(pilot, "write lines")
        await pilot.press("y")
        await settled(pilot, screen, 2)
        text = shown(pilot)
        assert "line 4" in text and "line 5" not in text  # folded to its first lines
        assert "16 more lines" in text
        conversation_id = screen.chat.conversation_id
        # o on the message cursor unfolds it
        screen.conversation.focus()
        result = next(m for m in screen.conversation.messages if m.kind == "tool")
        screen.conversation.set_cursor(result)
        await pilot.press("o")
        await pilot.pause()
        assert "line 20" in "\n".join(m.text for m in screen.conversation.messages)
    again = make_app(engine=FakeEngine(answers=[["ok"]]), settings=tools, resume=conversation_id)
    async with again.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await until(pilot, lambda: len(screen.conversation.messages) == 4)
        kinds = [m.kind for m in screen.conversation.messages]
        assert kinds == ["user", "assistant", "tool", "assistant"]
        text = shown(pilot)
        assert "tool call lines" in text and "tool: lines" in text  # (server not up yet)
        assert "Twenty lines." in text
        # the resumed chat goes on with the call and its result in the prompt
        await type_text(pilot, "thanks")
        await pilot.press("enter")
        await until(pilot, lambda: len(again.chat_screen.engine.requests) == 1)
        sent = again.chat_screen.engine.requests[0].messages
        assert [m.role for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
        assert sent[2].content.startswith("line 1\nline 2") and sent[2].tool_call_id == "call-1"


async def test_refuse_with_a_reason_sends_it_back(make_app, settings) -> None:
    engine = FakeEngine(answers=[[call("env", {"name": "HOME"})], ["Fine."]])
    app = make_app(engine=engine, settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        screen = await ask(pilot, "what is HOME?")
        await pilot.press("n")
        await pilot.press(*"private")
        await pilot.press("enter")
        await settled(pilot, screen, 2)
        results = tool_messages(engine.requests[1])
        assert [m.content for m in results] == ["The user refused to run this tool: private."]
        assert "Fine." in shown(pilot)


async def test_always_skips_the_question_for_that_tool(make_app, settings) -> None:
    engine = FakeEngine(
        answers=[
            [call("add", {"a": 1, "b": 1})],
            [call("add", {"a": 2, "b": 2}, "call-2")],
            ["Done."],
        ]
    )
    app = make_app(engine=engine, settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        screen = await ask(pilot, "add twice")
        await pilot.press("a")
        await settled(pilot, screen, 3)
        assert [m.content for m in tool_messages(engine.requests[2])] == ["2", "4"]
        assert "Done." in shown(pilot)
        assert "test.add" in screen.chat.tool_choices.always


async def test_auto_approve_in_the_config_runs_without_asking(make_app, settings) -> None:
    engine = FakeEngine(answers=[[call("echo", {"text": "hi"})], ["Said hi."]])
    server = config(auto_approve=frozenset({"echo"}))
    app = make_app(engine=engine, settings=with_tools(settings, server))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        await type_text(pilot, "say hi")
        await pilot.press("enter")
        await settled(pilot, screen, 2)
        assert [m.content for m in tool_messages(engine.requests[1])] == ["hi"]


async def test_escape_mid_call_cancels_it_and_keeps_the_chat(make_app, settings) -> None:
    engine = FakeEngine(answers=[[call("sleep", {"seconds": 30})], ["next answer"]])
    app = make_app(engine=engine, settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        screen = await ask(pilot, "sleep")
        await pilot.press("y")
        await until(pilot, lambda: screen.status.state == "tool")
        await pilot.pause(0.3)
        assert "tool: sleep · " in shown(pilot)  # the status bar
        await pilot.press("escape")
        await until(pilot, lambda: not screen.tools.running, timeout=5)
        await pilot.pause()
        assert len(engine.requests) == 1  # the loop stopped: the model was not asked again
        assert screen.chat.turns[-1].content == "error: the user stopped this call"
        assert "the user stopped this call" in shown(pilot)
        await type_text(pilot, "go on")
        await pilot.press("enter")
        await settled(pilot, screen, 2)
        assert [m.role for m in engine.requests[1].messages] == [
            "user",
            "assistant",
            "tool",
            "user",
        ]


async def test_a_crashing_server_returns_an_error_and_the_chat_goes_on(make_app, settings) -> None:
    engine = FakeEngine(answers=[[call("crash", {})], ["It failed."]])
    app = make_app(engine=engine, settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        screen = await ask(pilot, "crash it")
        await pilot.press("y")
        await settled(pilot, screen, 2)
        [result] = tool_messages(engine.requests[1])
        assert result.content.startswith("error: the tool server 'test' failed")
        assert "crashing on purpose" in result.content  # its last stderr line
        notices = [n.message for n in app._notifications if "failed" in n.message]
        assert len(notices) == 1, notices
        assert "It failed." in shown(pilot)
        assert not (engine.requests[1].options and engine.requests[1].options.tools)


async def test_a_call_that_times_out_returns_an_error(make_app, settings) -> None:
    engine = FakeEngine(answers=[[call("sleep", {"seconds": 20})], ["Too slow."]])
    app = make_app(engine=engine, settings=with_tools(settings, tool_timeout=1.0))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        screen = await ask(pilot, "sleep")
        await pilot.press("y")
        await settled(pilot, screen, 2)
        [result] = tool_messages(engine.requests[1])
        assert result.content == "error: the tool 'sleep' gave no result within 1 s"
        assert "Too slow." in shown(pilot)


async def test_a_server_that_cannot_start_gives_one_notice(make_app, settings) -> None:
    broken = ServerConfig("broken", command="no-such-mcp-server-here")
    engine = FakeEngine(answers=[["No tools."]])
    app = make_app(engine=engine, settings=with_tools(settings, broken))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        await pilot.pause()
        notices = [n.message for n in app._notifications]
        assert any("'broken' failed: cannot start 'no-such-mcp-server-here'" in n for n in notices)
        await type_text(pilot, "hello")
        await pilot.press("enter")
        await settled(pilot, screen, 1)
        assert engine.requests[0].options.tools == ()  # no tool on: nothing offered
        await type_text(pilot, "/tools")
        await pilot.press("enter")
        await pilot.pause()
        assert "broken: failed: cannot start" in shown(pilot)


async def test_max_tool_steps_stops_the_loop_with_a_notice(make_app, settings) -> None:
    engine = FakeEngine(answers=[[call("add", {"a": 1, "b": 2})]])  # calls again and again
    app = make_app(
        engine=engine,
        settings=with_tools(settings, config(auto_approve=frozenset({"add"})), max_tool_steps=2),
    )
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        await type_text(pilot, "loop")
        await pilot.press("enter")
        await settled(pilot, screen, 2)
        await pilot.pause(0.3)
        assert len(engine.requests) == 2
        assert any("max_tool_steps" in n.message for n in app._notifications)


async def test_tools_command_turns_tools_off_and_tool_calls_by_hand(
    make_app, settings, history
) -> None:
    engine = FakeEngine(answers=[["ok"]])
    app = make_app(engine=engine, settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        await type_text(pilot, '/tool add {"a": 40, "b": 2}')
        await pilot.press("enter")
        await until(pilot, lambda: any(m.kind == "tool" for m in screen.conversation.messages))
        await pilot.pause()
        assert "42" in shown(pilot)
        saved = history.get_conversation(screen.chat.conversation_id)
        assert [m.role for m in saved.messages] == ["user", "assistant", "tool"]
        await type_text(pilot, "/tools off add")
        await pilot.press("enter")
        await pilot.pause()
        await type_text(pilot, "hi")
        await pilot.press("enter")
        await settled(pilot, screen, 1)
        names = [t["function"]["name"] for t in engine.requests[0].options.tools]
        assert "add" not in names and "echo" in names
        assert [m.role for m in engine.requests[0].messages] == [
            "user",
            "assistant",
            "tool",
            "user",
        ]
        await type_text(pilot, "/tools off test")
        await pilot.press("enter")
        await pilot.pause()
        await type_text(pilot, "/tools")
        await pilot.press("enter")
        await pilot.pause()
        assert "test: ready · off in this chat" in shown(pilot)


@pytest.mark.parametrize("bad", ["/tool nope {}", '/tool add {"a": 1'])
async def test_tool_by_hand_bad_input_is_one_line(make_app, settings, bad) -> None:
    app = make_app(settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        await type_text(pilot, bad)
        await pilot.press("enter")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("usage: /tool NAME" in m for m in messages), messages


async def test_escape_at_the_question_runs_nothing(make_app, settings) -> None:
    engine = FakeEngine(answers=[[call("echo", {"text": "x"})], ["never"]])
    app = make_app(engine=engine, settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        screen = await ask(pilot, "echo x")
        await pilot.press("escape")
        await until(pilot, lambda: not screen.tools.running, timeout=5)
        await pilot.pause()
        assert not screen.query(ApprovalBar) and screen.prompt.has_focus
        assert len(engine.requests) == 1
        assert screen.chat.turns[-1].content == "error: the user stopped this call"


async def test_delete_takes_the_calls_with_their_exchange(make_app, settings, history) -> None:
    engine = FakeEngine(
        answers=[["First answer."], [call("add", {"a": 2, "b": 3})], ["The sum is 5."]]
    )
    app = make_app(engine=engine, settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        await type_text(pilot, "hello")
        await pilot.press("enter")
        await settled(pilot, screen, 1)
        await ask(pilot, "add")
        await pilot.press("y")
        await settled(pilot, screen, 3)
        assert len(screen.chat.turns) == 6
        screen.conversation.focus()
        question = next(m for m in screen.conversation.messages if m.text == "add")
        screen.conversation.set_cursor(question)
        await pilot.press("d", "d")  # asked, then confirmed: the question and its answer
        await pilot.pause()
        assert [t.content for t in screen.chat.turns] == ["hello", "First answer."]
        assert [m.kind for m in screen.conversation.messages] == ["user", "assistant"]
        saved = history.get_conversation(screen.chat.conversation_id)
        assert [m.content for m in saved.messages] == ["hello", "First answer."]


async def test_a_new_chat_stops_the_question_of_the_one_left(make_app, settings, history) -> None:
    engine = FakeEngine(answers=[[call("echo", {"text": "x"})], ["new chat answer"]])
    app = make_app(engine=engine, settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await servers_settled(pilot, screen)
        screen = await ask(pilot, "echo x")
        left = screen.chat
        await pilot.press("ctrl+n")
        await until(pilot, lambda: not screen.tools.running and not screen.query(ApprovalBar))
        assert not screen.answering and screen.chat is not left
        saved = history.get_conversation(left.conversation_id)
        assert [m.role for m in saved.messages] == ["user", "assistant", "tool"]
        assert saved.messages[-1].content == "error: the user stopped this call"
        await type_text(pilot, "hi")
        await pilot.press("enter")
        await settled(pilot, screen, 2)
        assert "new chat answer" in shown(pilot)


async def test_without_the_mcp_package_one_notice_says_how_to_install_it(
    make_app, settings, monkeypatch
) -> None:
    from mlxchat.tools import toolbox

    monkeypatch.setattr(toolbox, "mcp_installed", lambda: False)
    app = make_app(engine=FakeEngine(answers=[["Hi."]]), settings=with_tools(settings))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.pause()
        hint = "MCP servers need the `mcp` package: pip install 'mlxchat[tools]'"
        notices = [n for n in app._notifications if n.message == hint]
        assert len(notices) == 1
        assert not notices[0].markup  # shown as written: "[tools]" is not a markup tag

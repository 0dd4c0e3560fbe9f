"""A thinking model in the chat (scripted stream): the live thinking line, its fold when
the answer begins, `t` and a click to unfold, the status bar, /think, the history."""

from __future__ import annotations

import asyncio

from mlxchat.ui.widgets.message import Message

from .fake_engine import DEFAULT_ANSWER
from .helpers import SIZE, ready, send, shown, until

REASONING = ["Let", " me", " think", " about", " it", "."]
ANSWER = "".join(DEFAULT_ANSWER)


def lines(message: Message) -> list[str]:
    return [line.plain for line in message.header_lines(60)]


async def test_live_line_then_folded_then_unfolded(make_app, engine, history) -> None:
    engine.reasoning = list(REASONING)
    engine.token_delay = 0.05
    engine.hold_after(3)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Why?", wait=False)
        await until(pilot, lambda: engine.current is not None and engine.current.held.is_set())
        view = screen.conversation.messages[-1]
        await until(pilot, lambda: "thinking · 3 tokens" in " ".join(lines(view)))
        assert screen.status.state == "thinking"
        assert view.text == ""  # the reasoning is not the answer
        first = " ".join(lines(view))
        await asyncio.sleep(1.1)  # the seconds go on while it thinks
        await pilot.pause()
        assert " ".join(lines(view)) != first
        engine.release()
        await until(pilot, lambda: not screen.answering)
        await pilot.pause()
        answer = screen.conversation.messages[-1]
        assert answer.source == ANSWER
        head = lines(answer)[1]
        assert head.startswith("▸ thought for ") and head.endswith(" s · 6 tokens")
        assert "Let me think" not in answer.rendered_text(60)
        # t on the message cursor unfolds it, and folds it again
        await pilot.press("ctrl+up")
        await pilot.pause()
        assert screen.conversation.cursor is answer
        await pilot.press("t")
        await pilot.pause()
        assert lines(answer)[1].startswith("▾ thought for")
        assert "Let me think about it." in answer.rendered_text(60)
        await pilot.press("t")
        await pilot.pause()
        assert "Let me think" not in answer.rendered_text(60)
        saved = history.get_conversation(screen.chat.conversation_id).messages[1]
        assert saved.content == ANSWER and saved.reasoning == "Let me think about it."


async def test_resume_shows_it_folded_and_export_writes_details(
    make_app, engine, history, tmp_path
) -> None:
    engine.reasoning = list(REASONING)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Why?")
        cid = screen.chat.conversation_id
        await send(pilot, "And then?")
        second = engine.requests[1]
        assert second.messages[1].content == ANSWER  # the engine leaves the reasoning out
        target = tmp_path / "chat.md"
        await send(pilot, f"/export {target}")
        exported = target.read_text()
        assert "<details>\n<summary>Thinking</summary>\n\nLet me think about it." in exported
        assert exported.index("<details>") < exported.index(ANSWER)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await screen.commands.resume_chat(cid)
        await pilot.pause()
        answer = screen.conversation.messages[1]
        assert lines(answer)[1] == "▸ thought"
        assert answer.toggle_thinking()
        assert "Let me think about it." in answer.rendered_text(60)


async def test_think_off_and_budget_reach_the_request(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "/think off")
        assert "Setting: thinking off" in await shown(pilot)
        await send(pilot, "/thinking-budget 64")
        await send(pilot, "Hi")
        options = engine.requests[-1].options
        assert options.template_kwargs == {"enable_thinking": False}
        assert options.thinking_budget == 64
        await send(pilot, "/think maybe")
        assert any("not on or off" in note for note in await shown(pilot))

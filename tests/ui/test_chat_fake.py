"""The chat screen driven by the scripted engine: exact timing, every path of the UI."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pilot_helpers import screen_rows, screenshot_text
from textual.widgets import OptionList

from mlxchat.ui.screens.help import HelpScreen
from mlxchat.ui.screens.history import HistoryScreen
from mlxchat.ui.screens.models import ModelPicker
from mlxchat.ui.widgets.message import Message

from .fake_engine import DEFAULT_ANSWER
from .helpers import SIZE, model_settled, ready, send, shown, type_text, until

ANSWER = "".join(DEFAULT_ANSWER)


def rows(history, conversation_id: int) -> list[tuple[str, str, str | None]]:
    """(role, content, finish_reason) of every saved message of a chat."""
    path = history.path
    with sqlite3.connect(path) as conn:
        return list(
            conn.execute(
                "SELECT role, content, finish_reason FROM messages WHERE conversation_id = ?"
                " ORDER BY id",
                (conversation_id,),
            )
        )


async def test_send_streams_answer_and_saves(make_app, engine, history) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hello there")
        views = screen.conversation.messages
        assert [(v.kind, v.source) for v in views] == [
            ("user", "Hello there"),
            ("assistant", ANSWER),
        ]
        assert "7 tok" in views[1].header_text
        assert screen.status.state == "idle"
        assert screen.prompt.text == ""
        cid = screen.chat.conversation_id
        assert rows(history, cid) == [("user", "Hello there", None), ("assistant", ANSWER, "stop")]
        saved = history.get_conversation(cid)
        assert saved.messages[1].model == "fake"
        assert saved.messages[1].stats.generation_tokens == 7
        # the request carried the conversation, the settings and a chat session
        request = engine.requests[0]
        assert [m.content for m in request.messages] == ["Hello there"]
        assert request.session.startswith("chat-")
        assert request.params.temp == 0.0
        # the second turn sends the whole conversation on the same session
        await send(pilot, "And again")
        second = engine.requests[1]
        assert [m.role for m in second.messages] == ["user", "assistant", "user"]
        assert second.session == request.session


async def test_empty_and_blank_messages_are_ignored(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("enter")
        await type_text(pilot, "   \n  ")
        await pilot.press("enter")
        await pilot.pause()
        assert engine.requests == []
        assert screen.conversation.messages == []


async def test_mid_stream_the_markdown_holds_what_arrived(make_app, engine) -> None:
    engine.hold_after(3)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hi", wait=False)
        await until(pilot, lambda: engine.current is not None and engine.current.held.is_set())
        answer = screen.conversation.messages[-1]
        await until(pilot, lambda: answer.source == "Hello! How")
        assert screen.answering
        assert screen.status.state == "generating"
        assert answer.status == "writing…"
        engine.release()
        await until(pilot, lambda: not screen.answering)
        assert screen.conversation.messages[-1].source == ANSWER


async def test_escape_stops_and_keeps_partial_answer(make_app, engine, history) -> None:
    engine.hold_after(2)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Tell me a story", wait=False)
        await until(pilot, lambda: engine.current is not None and engine.current.held.is_set())
        await pilot.press("escape")
        await until(pilot, lambda: not screen.answering, timeout=2)
        answer = screen.conversation.messages[-1]
        assert answer.source == "Hello!"
        assert answer.status == "stopped"
        assert answer.stopped
        assert "stopped" in answer.header_text
        assert rows(history, screen.chat.conversation_id)[-1] == (
            "assistant",
            "Hello!",
            "cancelled",
        )
        # the app goes on: the next message is answered
        engine.release()
        await send(pilot, "Go on")
        assert screen.conversation.messages[-1].source == ANSWER


async def test_escape_while_waiting_for_the_model(make_app, engine) -> None:
    engine.hold_loads()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.chat_screen
        await send(pilot, "Anyone?", wait=False)
        assert screen.conversation.messages[-1].status == "waiting for the model…"
        await pilot.press("escape")
        await until(pilot, lambda: not screen.answering, timeout=1)
        assert screen.conversation.messages[-1].status == "stopped"
        engine.release_loads()
        await until(pilot, lambda: model_settled(screen))
        await send(pilot, "Now?")
        assert screen.conversation.messages[-1].source == ANSWER


async def test_message_sent_before_the_model_is_ready_waits_then_runs(make_app, engine) -> None:
    engine.hold_loads()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.chat_screen
        assert screen.status.state == "loading"
        await send(pilot, "Early bird", wait=False)
        assert screen.status.state == "waiting"
        engine.release_loads()
        await until(pilot, lambda: not screen.answering)
        assert screen.conversation.messages[-1].source == ANSWER
        assert engine.loads == ["fake"]


async def test_switch_model_keeps_conversation(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "First")
        await send(pilot, "/model other")
        await until(pilot, lambda: model_settled(screen))
        assert engine.loads == ["fake", "other"]
        assert screen.status.model == "other"
        await send(pilot, "Second")
        assert [m.content for m in engine.requests[-1].messages] == ["First", ANSWER, "Second"]
        assert screen.conversation.messages[-1].label == "other"


async def test_switch_to_missing_model_keeps_old_and_shows_error(make_app, engine) -> None:
    engine.missing = {"nope"}
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "/model nope")
        await until(pilot, lambda: model_settled(screen))
        assert screen.status.model == "fake"
        assert screen.status.state == "idle"
        assert any("no model named 'nope'" in n for n in await shown(pilot))
        await send(pilot, "Still there?")
        assert screen.conversation.messages[-1].source == ANSWER


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/temp abc", "'abc' is not a number — usage: /temp X"),
        ("/temp 9", "/temp must be a number from 0 to 5, got 9 — usage: /temp X"),
        ("/top-p 1.5", "usage: /top-p X"),
        ("/max-tokens 0", "usage: /max-tokens N"),
        ("/max-tokens 2.5", "not a whole number"),
        ("/seed x", "usage: /seed N|off"),
        ("/model", "needs a model name"),
        ("/help me", "takes no argument"),
        ("/frobnicate", "Unknown command /frobnicate"),
        ("/tmp 1", "Did you mean /temp"),
        ("/theme nosuch", "available: "),
    ],
)
async def test_bad_commands_show_usage_and_send_nothing(
    make_app, engine, command: str, expected: str
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await type_text(pilot, command)
        await pilot.press("escape", "enter")  # close the completion list, then run it
        await pilot.pause()
        assert engine.requests == []
        assert screen.conversation.messages == []
        assert any(expected in n for n in await shown(pilot)), await shown(pilot)
        assert screen.prompt.text == command  # kept, to fix it


async def test_typing_after_a_rejected_command_replaces_it(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await type_text(pilot, "/frobnicate")
        await pilot.press("enter")
        notes = await shown(pilot)
        assert any("Unknown command /frobnicate. Type /help" in n for n in notes), notes
        assert not any("Did you mean" in n for n in notes)  # nothing close to suggest
        assert screen.prompt.text == "/frobnicate"
        await pilot.press(*"/help", "enter")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert screen.prompt.text == ""


@pytest.mark.parametrize(
    ("name", "hint"),
    [("hlep", "/help"), ("temperature", "/temp"), ("transalte", "/translate"), ("xyz", None)],
)
def test_unknown_command_suggests_only_close_names(name: str, hint: str | None) -> None:
    from mlxchat.ui.commands import CommandError, find_command

    with pytest.raises(CommandError) as raised:
        find_command(name)
    message = str(raised.value)
    if hint is None:
        assert "Did you mean" not in message
    else:
        assert f"Did you mean {hint}?" in message


async def test_sampling_commands_change_the_next_request(make_app, engine, history) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        for command in ("/temp 0.3", "/top-p 0.5", "/max-tokens 3", "/seed 7", "/system Be brief."):
            assert await screen.submit(command)
        await send(pilot, "Hi")
        request = engine.requests[-1]
        assert (
            request.params.temp,
            request.params.top_p,
            request.params.max_tokens,
            request.params.seed,
        ) == (0.3, 0.5, 3, 7)
        assert request.messages[0].role == "system"
        assert request.messages[0].content == "Be brief."
        answer = screen.conversation.messages[-1]
        assert answer.source == "Hello! How"  # 3 tokens: cut at the limit
        assert "token limit" in answer.header_text
        saved = history.get_conversation(screen.chat.conversation_id)
        assert saved.system_prompt == "Be brief."
        assert saved.settings["max_tokens"] == 3
        assert await screen.submit("/seed off")
        assert await screen.submit("/system -")
        await send(pilot, "Again")
        assert engine.requests[-1].params.seed is None
        assert engine.requests[-1].messages[0].role == "user"


async def test_retry_writes_the_last_answer_again_and_keeps_the_first(
    make_app, engine, history
) -> None:
    engine.answers = [["First", " answer"], ["Second", " answer"]]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Question")
        await send(pilot, "/retry")
        await until(pilot, lambda: not screen.answering)
        await pilot.pause()
        views = screen.conversation.messages
        assert [(v.kind, v.source) for v in views] == [
            ("user", "Question"),
            ("assistant", "Second answer"),
        ]
        assert [m.content for m in engine.requests[1].messages] == ["Question"]
        assert engine.requests[1].session == engine.requests[0].session  # cache reused
        assert rows(history, screen.chat.conversation_id) == [
            ("user", "Question", None),
            ("assistant", "First answer", "stop"),  # kept, as the other version
            ("assistant", "Second answer", "stop"),
        ]
        shown = history.get_conversation(screen.chat.conversation_id).messages
        assert [m.content for m in shown] == ["Question", "Second answer"]  # what resume shows


async def test_retry_with_nothing_to_retry(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert not await screen.submit("/retry")
        assert any("Nothing to retry" in n for n in await shown(pilot))


async def test_clear_and_new(make_app, engine, history, settings) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "One")
        first_id, first_session = screen.chat.conversation_id, screen.chat.session
        await screen.submit("/temp 1.5")
        await send(pilot, "/clear")
        assert screen.conversation.messages == []
        assert engine.reset_sessions == [first_session]
        await send(pilot, "Two")
        assert screen.chat.conversation_id != first_id
        assert [m.content for m in engine.requests[-1].messages] == ["Two"]
        assert engine.requests[-1].params.temp == 1.5  # /clear keeps the settings
        await send(pilot, "/new")
        await send(pilot, "Three")
        assert engine.requests[-1].params.temp == settings.temp  # /new restores them
        assert len(history.list_conversations()) == 3


async def test_context_full_is_shown(make_app, engine) -> None:
    engine.dropped = 4
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Long chat")
        assert "context full: 4 old messages left out" in str(screen.status.render())


async def test_engine_error_is_shown_and_app_goes_on(make_app, engine) -> None:
    engine.error = "the message is 9000 tokens, more than the context of 2048"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "x " * 5000)
        answer = screen.conversation.messages[-1]
        assert answer.status == "failed"
        assert "more than the context" in answer.header_text
        engine.error = None
        await send(pilot, "short")
        assert screen.conversation.messages[-1].source == ANSWER


async def test_control_characters_are_escaped(make_app, engine, history) -> None:
    engine.answers = [["ok\x1b[31m", "red\x07", "\r\n", "done\u202e"]]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "junk \x00\x1b[2J\x9b here")
        user, answer = screen.conversation.messages
        assert user.source == "junk \\x00\\x1b[2J\\x9b here"
        assert answer.source == "ok\\x1b[31mred\\x07\ndone\\u202e"
        # saved as received, nothing lost
        saved = history.get_conversation(screen.chat.conversation_id)
        assert saved.messages[0].content == "junk \x00\x1b[2J\x9b here"


async def test_huge_paste_is_sent_whole_and_shown_cut(make_app, engine, history) -> None:
    big = ("lorem ipsum dolor sit amet " * 40 + "\n") * 1000 + "Summarize this."  # ~1 MB
    assert len(big) > 1_000_000
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.app.chat_screen.prompt._on_paste(_paste(big))
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: not screen.answering)
        user = screen.conversation.messages[0]
        assert len(user.source) < 25_000
        assert "more characters not shown" in user.source
        assert user.source.endswith("Summarize this.")  # what was typed after it stays seen
        assert engine.requests[0].messages[-1].content == big
        saved = history.get_conversation(screen.chat.conversation_id)
        assert saved.messages[0].content == big


def _paste(text: str):
    from textual.events import Paste

    return Paste(text)


async def test_export_puts_a_later_system_prompt_where_it_was_set(
    make_app, engine, tmp_path: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        for question in ("One?", "Two?"):
            await send(pilot, question)
        assert await screen.submit("/system You are a pirate.")
        await send(pilot, "Three?")
        assert await screen.submit(f"/export {tmp_path / 'chat.md'}")
    text = (tmp_path / "chat.md").read_text()
    assert text.index("Two?") < text.index("## System prompt changed") < text.index("Three?")
    assert "## System prompt\n" not in text


async def test_export_and_copy(make_app, engine, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    copied: list[str] = []
    app = make_app()
    monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert not await screen.submit("/export")  # nothing saved yet
        assert not await screen.submit("/copy")
        await send(pilot, "Plan a trip to Paris!")
        assert await screen.submit("/export")
        exported = tmp_path / "data" / "exports" / "plan-a-trip-to-paris.md"
        assert exported.exists()
        assert "Plan a trip to Paris!" in exported.read_text()
        assert ANSWER in exported.read_text()
        assert await screen.submit("/export")  # never overwrites
        assert (exported.parent / "plan-a-trip-to-paris-2.md").exists()
        assert await screen.submit(f"/export {tmp_path / 'chat.md'}")
        assert (tmp_path / "chat.md").exists()
        assert await screen.submit("/copy")
        assert copied == [ANSWER]


async def test_themes_switch_and_errors(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert app.theme == "mlxchat-dark"
        assert await screen.submit("/theme nord-frost")
        assert app.theme == "nord-frost"
        assert not await screen.submit("/theme frost")
        assert any("did you mean nord-frost" in n for n in await shown(pilot))


OUR_THEMES = ["mlxchat-dark", "mlxchat-light", "nord-frost", "solarized-dusk"]


async def test_the_theme_picker_offers_mlxchat_and_user_themes_only(make_app, tmp_path) -> None:
    from mlxchat.ui.themes import builtin_themes_dir, load_themes

    user_dir = tmp_path / "themes"
    user_dir.mkdir()
    (user_dir / "mine.toml").write_text('name = "nord"\nprimary = "#FF0000"\n')
    themes, errors = load_themes(builtin_themes_dir(), user_dir)
    app = make_app(themes=themes, theme_errors=errors)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await ready(pilot)
        assert sorted(app.available_themes) == sorted([*OUR_THEMES, "nord"])
        assert app.get_theme("nord").primary == "#FF0000"  # the user's, not Textual's
        await screen.submit("/theme")
        assert (
            f"Themes: Now: mlxchat-dark. Available: {', '.join(sorted([*OUR_THEMES, 'nord']))}"
            in (await shown(pilot))
        )
        app.action_change_theme()  # the palette's theme picker
        await pilot.pause(0.5)
        text = screenshot_text(app)
        assert "solarized-dusk" in text and "nord-frost" in text
        assert "gruvbox" not in text and "textual-dark" not in text


async def test_broken_theme_file_and_history_notice_are_reported(
    make_app, engine, settings, tmp_path: Path
) -> None:
    from mlxchat.store.history import History
    from mlxchat.ui.themes import builtin_themes_dir, load_themes

    user_dir = tmp_path / "themes"
    user_dir.mkdir()
    (user_dir / "broken.toml").write_text("name = 'broken'\nprimary = 'not a colour'\n")
    themes, errors = load_themes(builtin_themes_dir(), user_dir)
    assert errors
    store = History.in_memory("history is not saved: the folder is read-only")
    app = make_app(themes=themes, theme_errors=errors, history=store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        notes = await shown(pilot)
        assert sum("broken.toml" in n for n in notes) == 1
        assert any("history is not saved" in n for n in notes)
        await send(pilot, "Still works")
        assert screen.conversation.messages[-1].source == ANSWER


async def test_unknown_configured_theme_falls_back(make_app, engine, settings) -> None:
    from dataclasses import replace

    app = make_app(settings=replace(settings, theme="no-such-theme"))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.theme == "mlxchat-dark"
        assert any("no theme named 'no-such-theme'" in n for n in await shown(pilot))


async def test_history_browse_and_resume(make_app, engine, history) -> None:
    cid = history.new_conversation(
        model="old", system_prompt="Be kind.", settings={"temp": 0.9, "max_tokens": 64}
    )
    history.add_message(cid, "user", "Saved question")
    history.add_message(cid, "assistant", "Saved answer", model="old", finish_reason="cancelled")
    other = history.new_conversation()
    history.add_message(other, "user", "Something else entirely")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "/history")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press(*"question")
        await pilot.pause()
        assert app.screen.query_one(OptionList).option_count == 1
        await pilot.press("enter")
        await until(pilot, lambda: len(screen.conversation.messages) == 2)
        assert screen.chat.conversation_id == cid
        user, answer = screen.conversation.messages
        assert (user.source, answer.source) == ("Saved question", "Saved answer")
        assert answer.stopped
        await send(pilot, "Continue")
        request = engine.requests[-1]
        assert [m.content for m in request.messages] == [
            "Be kind.",
            "Saved question",
            "Saved answer",
            "Continue",
        ]
        assert request.params.temp == 0.9 and request.params.max_tokens == 64
        assert len(history.get_conversation(cid).messages) == 4
        # Up recalls the resumed chat's prompts
        await pilot.press("up")
        assert screen.prompt.text == "Continue"
        await pilot.press("up")
        assert screen.prompt.text == "Saved question"


async def test_resume_at_start(make_app, engine, history) -> None:
    cid = history.new_conversation()
    history.add_message(cid, "user", "Hi")
    history.add_message(cid, "assistant", "Hello", finish_reason="stop")
    app = make_app(resume=cid)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await until(pilot, lambda: len(screen.conversation.messages) == 2)
        assert screen.chat.conversation_id == cid


async def test_history_lists_ids_and_counts_messages(make_app, engine, history) -> None:
    one = history.new_conversation()
    history.add_message(one, "user", "Only a question")
    two = history.new_conversation()
    history.add_message(two, "user", "Hi")
    history.add_message(two, "assistant", "Hello", finish_reason="stop")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.pause()
        lines = screenshot_text(app).splitlines()
        only = next(line for line in lines if "Only a question" in line)
        assert f"#{one} " in only and "1 message" in only and "1 messages" not in only
        hi = next(line for line in lines if " Hi " in line)
        assert f"#{two} " in hi and "2 messages" in hi


@pytest.mark.parametrize("saved", [True, False])
async def test_resume_latest_at_start(make_app, engine, history, saved: bool) -> None:
    if saved:
        for text in ("Older chat", "Newest chat"):
            history.add_message(history.new_conversation(), "user", text)
    app = make_app(resume="latest")
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        if saved:
            await until(pilot, lambda: len(screen.conversation.messages) == 1)
            assert screen.conversation.messages[0].source == "Newest chat"
        else:
            notes = await shown(pilot)
            assert "History: There is no saved chat to continue yet." in notes, notes
            assert screen.conversation.messages == []


async def test_a_question_left_unanswered_is_marked_and_ctrl_r_answers_it(
    make_app, engine, history
) -> None:
    cid = history.new_conversation()
    history.add_message(cid, "user", "First question")
    history.add_message(cid, "assistant", "First answer", finish_reason="stop")
    history.add_message(cid, "user", "Lost question")  # the process was killed here
    app = make_app(resume=cid)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await until(pilot, lambda: len(screen.conversation.messages) == 3)
        first, _, lost = screen.conversation.messages
        assert "no answer" not in first.header_text
        assert lost.header_text == "you  no answer — Ctrl+R to answer"
        assert "no answer — Ctrl+R to answer" in screenshot_text(app)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: len(screen.conversation.messages) == 4)
        await until(pilot, lambda: not screen.answering)
        assert screen.conversation.messages[2].header_text == "you"
        assert [m.content for m in engine.requests[-1].messages][-1] == "Lost question"
        assert rows(history, cid)[2:] == [
            ("user", "Lost question", None),
            ("assistant", ANSWER, "stop"),
        ]


async def test_prompt_keys(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("a", "shift+enter", "b", "ctrl+j", "c")
        assert screen.prompt.text == "a\nb\nc"
        await pilot.press("enter")
        await until(pilot, lambda: not screen.answering)
        assert engine.requests[-1].messages[-1].content == "a\nb\nc"
        await send(pilot, "second")
        await pilot.press("up")
        assert screen.prompt.text == "second"
        await pilot.press("up")
        assert screen.prompt.text == "a\nb\nc"
        await pilot.press("down", "down")
        assert screen.prompt.text == ""


async def test_slash_completion(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("/", "t", "e")
        assert screen.completion.is_open
        assert [t for t, _ in screen.completion.items][0] == "/temp X"
        await pilot.press("tab")
        assert screen.prompt.text == "/temp "
        await pilot.press("escape")
        assert not screen.completion.is_open
        screen.prompt.reset()
        await pilot.press("/", "t", "h", "e", "m", "e", "space", "n", "o", "r", "d", "-")
        await pilot.pause()
        assert screen.completion.items[0][0] == "/theme nord-frost"
        await pilot.press("enter")  # takes the highlighted value and runs it
        await until(pilot, lambda: app.theme == "nord-frost")
        screen.prompt.reset()
        await pilot.press("/", "h", "e")
        await pilot.press("enter")  # completes "/he" to "/help" and runs it
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_help_shows_the_export_default_as_written(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await ready(pilot)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        assert "(default: ./<title>.md)" in screenshot_text(app)


async def test_help_models_and_palette(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        source = app.screen.query_one("Markdown").source
        for name in ("/model NAME", "/export [PATH]", "/top-p X", "/quit"):
            assert name in source
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, ModelPicker))
        await pilot.press(*"tiny")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen and model_settled(screen))
        assert engine.loads[-1] == "tiny-llama"
        # the command palette lists the slash-commands
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"retry")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert any("Nothing to retry" in n for n in await shown(pilot))


def conversation_text(app: Any) -> str:
    """The text the conversation shows on screen now (its scrollbar left out)."""
    region = app.chat_screen.conversation.region
    rows = screen_rows(app)[region.y : region.bottom]
    return "\n".join(row[region.x : region.right - 1] for row in rows)


async def test_scrolling_up_is_not_yanked_back(make_app, engine, history) -> None:
    cid = history.new_conversation()
    for i in range(15):
        history.add_message(cid, "user", f"question {i}")
        history.add_message(cid, "assistant", f"answer {i}\n\nwith a second paragraph")
    engine.answers = [[f"word{i} " for i in range(200)]]
    engine.token_delay = 0.002
    app = make_app(resume=cid)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await until(pilot, lambda: len(screen.conversation.messages) == 30)
        view = screen.conversation
        await send(pilot, "more", wait=False)
        await until(pilot, lambda: len(screen.conversation.messages[-1].source) > 50)
        view.scroll_up(animate=False)
        await pilot.pause()
        view.scroll_home(animate=False)  # earlier messages come back above: the top stays
        await pilot.pause(0.1)
        reading = conversation_text(app)
        assert "question" in reading and "word1 " not in reading
        await until(pilot, lambda: not screen.answering)
        await pilot.pause()
        assert conversation_text(app) == reading  # stayed where the user put it
        # back at the end it follows again
        view.scroll_end(animate=False)
        await pilot.pause()
        await send(pilot, "again")
        await pilot.pause(0.1)
        assert view.scroll_y == view.max_scroll_y


async def test_quit_saves_a_running_answer(make_app, engine, history) -> None:
    engine.hold_after(2)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Long answer please", wait=False)
        await until(pilot, lambda: engine.current.held.is_set())
        cid = screen.chat.conversation_id
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert rows(history, cid)[-1] == ("assistant", "Hello!", "cancelled")


async def test_views_are_message_widgets(make_app, engine) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hi")
        assert all(isinstance(v, Message) for v in screen.conversation.messages)


async def test_translate_command_opens_the_translate_screen(make_app, engine) -> None:
    from mlxchat.ui.translate.screen import TranslateScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await screen.submit("/translate 2")
        await pilot.pause()
        assert isinstance(app.screen, TranslateScreen)
        assert app.screen.settings.wait_k == 2
        assert engine.requests == []
        app.screen.action_close()
        await pilot.pause()
        assert app.screen is screen  # back in the chat


@pytest.mark.parametrize("argument", ["0", "x", "99"])
async def test_translate_command_checks_k(make_app, engine, argument: str) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await screen.submit(f"/translate {argument}")
        await pilot.pause()
        assert app.screen is screen
        assert any("/translate" in n for n in await shown(pilot)), await shown(pilot)

"""The transcript's keys in the chat: mouse selection and Ctrl+C, the message cursor and
what its keys do (copy, code, edit, regenerate, delete), and /find."""

from __future__ import annotations

from typing import Any

import pytest
from pilot_helpers import screen_rows, screenshot_text
from textual.geometry import Offset
from textual.selection import Selection
from textual.style import Style

from mlxchat.ui.commands import COMMANDS
from mlxchat.ui.widgets.transcript import Transcript

from .fake_engine import FakeEngine
from .helpers import SIZE, ready, send, shown, until

ANSWER = "Hello! How can I help?"

CODE_ANSWER = ["Two:\n\n```python\nprint(1)\n```\n\nand\n\n```sh\necho 2\n```\n"]


@pytest.fixture
def copied(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return []


def copying(app: Any, copied: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep what the app copies (and still set `app.clipboard`)."""
    original = app.copy_to_clipboard

    def copy(text: str) -> None:
        copied.append(text)
        original(text)

    monkeypatch.setattr(app, "copy_to_clipboard", copy)


def highlighted(transcript: Transcript, row: int) -> tuple[str, str]:
    """The text of row `row` drawn in the selection's background, and the rest of its text
    (its gutter and blank end left out)."""
    segments = list(transcript.render_line(row))[3:]  # after the margin, bar and space
    selected = Style.from_styles(transcript.screen.get_component_styles("screen--selection"))
    assert selected.background is not None
    base = segments[-1].style.bgcolor if segments[-1].style else None  # the right margin
    inside = [s for s in segments if s.style and s.style.bgcolor != base]
    outside = [s for s in segments if s.style and s.style.bgcolor == base]
    shade = {s.style.bgcolor for s in inside if s.style}
    assert len(shade) <= 1  # one background for everything selected
    return "".join(s.text for s in inside), "".join(s.text for s in outside).rstrip()


def row_of(app: Any, text: str) -> int:
    """The screen row showing `text` (the first)."""
    return next(y for y, row in enumerate(screen_rows(app)) if text in row)


async def test_a_mouse_drag_selects_across_messages_and_ctrl_c_copies_it(
    make_app, monkeypatch, copied
) -> None:
    app = make_app()
    copying(app, copied, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Tell me something")
        transcript = screen.conversation
        start_row, end_row = row_of(app, "Tell me something"), row_of(app, ANSWER)
        # from "me" in the question to "How" in the answer (column 3 is the text's first)
        await pilot.mouse_down(Transcript, offset=(3 + 5, start_row))
        await pilot.hover(Transcript, offset=(3 + 9, end_row))
        await pilot.mouse_up(Transcript, offset=(3 + 9, end_row))
        await pilot.pause()
        assert transcript in screen.selections
        expected = f"me something\n\nfake  {screen.conversation.messages[-1].footer}\nHello! How"
        assert screen.get_selected_text() == expected
        # drawn highlighted: the selected characters in a background of their own
        assert highlighted(transcript, start_row) == ("me something", "Tell")
        assert highlighted(transcript, end_row) == ("Hello! How", " can I help?")
        app.clear_notifications()
        await pilot.press("ctrl+c")
        assert copied == [expected] and app.clipboard == expected
        assert any(
            f"Sent the selection ({len(expected)} characters)" in n for n in await shown(pilot)
        )


async def test_a_selection_set_on_the_screen_copies_its_text(make_app, monkeypatch, copied) -> None:
    app = make_app()
    copying(app, copied, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "first line\nsecond line")
        transcript = screen.conversation
        first = next(
            y for y in range(transcript.line_count) if transcript.line_text(y) == "first line"
        )
        screen.selections = {transcript: Selection(Offset(6, first), Offset(6, first + 1))}
        await pilot.pause()
        assert screen.get_selected_text() == "line\nsecond"
        screen.action_copy_text()
        assert copied == ["line\nsecond"]


async def test_ctrl_c_without_a_selection_keeps_its_meaning(make_app, monkeypatch, copied) -> None:
    app = make_app()
    copying(app, copied, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Hi")
        app.clear_notifications()
        await pilot.press("ctrl+c")
        assert copied == []
        assert any("ctrl+q" in n.lower() for n in await shown(pilot))  # Textual's quit hint


async def test_the_cursor_moves_between_messages_and_c_copies_the_one_under_it(
    make_app, monkeypatch, copied
) -> None:
    app = make_app()
    copying(app, copied, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "first question")
        await send(pilot, "second question")
        transcript = screen.conversation
        await pilot.press("ctrl+up")
        await pilot.pause()
        assert screen.focused is transcript
        messages = transcript.messages
        assert transcript.cursor is messages[-1]
        bar = "\n".join(screen_rows(app))
        assert "↑↓ move · c copy · y code · e edit" in bar
        await pilot.press("up", "k")  # two messages up: the first answer
        assert transcript.cursor is messages[1]
        await pilot.press("j")
        assert transcript.cursor is messages[2]
        # its rows are drawn highlighted, the others not
        cursor_bg = transcript.get_visual_style("transcript--cursor").rich_style.bgcolor
        plain_bg = transcript.visual_style.rich_style.bgcolor
        question = row_of(app, "second question")
        other = row_of(app, "first question")
        assert cursor_bg in {s.style.bgcolor for s in transcript.render_line(question)}
        assert cursor_bg not in {s.style.bgcolor for s in transcript.render_line(other)}
        assert cursor_bg != plain_bg
        app.clear_notifications()
        await pilot.press("c")
        assert copied == ["second question"]
        assert any("Sent the message (15 characters)" in n for n in await shown(pilot))
        await pilot.press("escape")
        assert screen.focused is screen.prompt and transcript.cursor is None


async def test_y_copies_the_code_blocks_of_the_message_in_turn(
    make_app, engine: FakeEngine, monkeypatch, copied
) -> None:
    engine.answers = [CODE_ANSWER]
    app = make_app()
    copying(app, copied, monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Code please")
        await pilot.press("ctrl+up")
        await pilot.press("y", "y", "y", "2")
        assert copied == ["print(1)", "echo 2", "print(1)", "echo 2"]
        await pilot.press("up", "y")  # the question has none
        assert len(copied) == 4
        assert any("no code block" in n for n in await shown(pilot))


async def test_e_puts_a_message_of_yours_in_the_prompt_and_sending_replaces_it(
    make_app, engine: FakeEngine
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "first question")
        await send(pilot, "second question")
        await pilot.press("ctrl+up", "up", "e")
        assert screen.prompt.text == "second question"
        assert screen.focused is screen.prompt
        screen.prompt.reset("second question, edited")
        await pilot.press("enter")
        await pilot.pause()
        edited = screen.conversation.messages[2]
        assert edited.header_text == "you · 2/2"  # not "no answer": one is being written
        await until(pilot, lambda: not screen.answering)
        await pilot.pause()
        assert screen.conversation.messages[2].header_text == "you · 2/2"
        assert "no answer" not in screenshot_text(app)
        assert [t.content for t in screen.chat.turns] == [
            "first question",
            ANSWER,
            "second question, edited",
            ANSWER,
        ]
        assert [m.text for m in screen.conversation.messages] == [
            "first question",
            ANSWER,
            "second question, edited",
            ANSWER,
        ]
        assert [m.content for m in engine.requests[-1].messages] == [
            "first question",
            ANSWER,
            "second question, edited",
        ]
        await pilot.press("ctrl+up", "e")  # an answer cannot be edited
        assert screen.prompt.text == ""


async def test_r_writes_an_earlier_answer_again_and_d_deletes(
    make_app, engine: FakeEngine, history
) -> None:
    engine.answers = [["One."], ["Two."], ["Again."]]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "q1")
        await send(pilot, "q2")
        await pilot.press("ctrl+up", "up", "up", "r")  # the first answer
        await until(pilot, lambda: not screen.answering and len(screen.chat.turns) == 2)
        await pilot.pause()
        assert [t.content for t in screen.chat.turns] == ["q1", "Again."]
        assert [m.text for m in screen.conversation.messages] == ["q1", "Again."]
        await pilot.press("escape")  # back to the prompt
        await send(pilot, "q3")
        assert [t.content for t in screen.chat.turns] == ["q1", "Again.", "q3", "Again."]
        await pilot.press("ctrl+up", "up", "up", "up", "d")  # the first question: it asks
        await pilot.pause()
        assert len(screen.chat.turns) == 4
        assert "Delete?: Press d again to delete your question and its answer." in await shown(
            pilot
        )
        await pilot.press("d")  # its answer goes too (with the other version of it)
        await pilot.pause()
        assert [t.content for t in screen.chat.turns] == ["q3", "Again."]
        assert [m.text for m in screen.conversation.messages] == ["q3", "Again."]
        assert "Deleted: Deleted your question and its answer." in await shown(pilot)
        saved = history.get_conversation(screen.chat.conversation_id)
        assert [m.content for m in saved.messages] == ["q3", "Again."]  # what followed stays
        rows = history._read("SELECT content FROM messages")
        assert sorted(r["content"] for r in rows) == ["Again.", "q3"]
        await pilot.press("ctrl+up", "d", "d")  # the last answer: only it
        await pilot.pause()
        assert [t.content for t in screen.chat.turns] == ["q3"]
        assert [m.text for m in screen.conversation.messages] == ["q3"]
        assert "Deleted: Deleted the answer." in await shown(pilot)
        kept = [m.content for m in history.get_conversation(screen.chat.conversation_id).messages]
        assert kept == ["q3"]  # deleted from the saved chat too


async def test_find_highlights_and_counts_every_hit_and_n_moves_between_them(
    make_app, history
) -> None:
    cid = history.new_conversation()
    for n in range(40):
        history.add_message(
            cid, "user", f"question {n}" + (" with a needle" if n % 10 == 3 else "")
        )
        history.add_message(cid, "assistant", f"answer {n}")
    app = make_app(resume=cid)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        transcript = screen.conversation
        await until(pilot, lambda: len(transcript.messages) == 80)
        assert "find" in COMMANDS
        assert await screen.submit("/find NEEDLE")
        await pilot.pause()
        hits = transcript.hits
        assert [h.message.text for h in hits] == [
            f"question {n} with a needle" for n in (3, 13, 23, 33)
        ]
        assert transcript.current_hit == 3 and screen.focused is transcript
        rows = "\n".join(screen_rows(app))
        assert "find “NEEDLE”: 4/4 · n next · N previous" in rows
        assert "question 33 with a needle" in rows

        def hit_in_view() -> bool:
            hit = hits[transcript.current_hit]
            y = transcript._start(transcript.index_of(hit.message)) + hit.line
            top = round(transcript.scroll_y)
            return top <= y < top + transcript.size.height

        # the hit is drawn in the current hit's colours, the others in the hit colours
        current = transcript._component_style("transcript--hit-current").background
        assert current is not None
        row = row_of(app, "question 33 with a needle")
        assert current.rgb in {
            s.style.bgcolor.triplet
            for s in transcript.render_line(row)
            if s.style and s.style.bgcolor and s.text == "needle"
        }
        await pilot.press("n")  # wraps around to the first
        assert transcript.current_hit == 0 and hit_in_view()
        assert "question 3 with a needle" in "\n".join(screen_rows(app))
        assert "find “NEEDLE”: 1/4" in "\n".join(screen_rows(app))
        await pilot.press("n", "n", "N")
        assert transcript.current_hit == 1 and hit_in_view()
        await pilot.press("escape")
        assert transcript.hits == [] and screen.focused is screen.prompt
        assert "find “" not in "\n".join(screen_rows(app))
        # nothing found: said so, the prompt keeps the keys
        assert await screen.submit("/find haystack")
        assert transcript.hits == [] and screen.focused is screen.prompt
        assert any("not in this chat" in n for n in await shown(pilot))


async def test_ctrl_f_starts_a_find_in_the_prompt(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hi")
        await pilot.press("ctrl+f")
        assert screen.prompt.text == "/find "
        await pilot.press(*"hello", "enter")
        await pilot.pause()
        assert [h.message.text for h in screen.conversation.hits] == [ANSWER]


async def test_regenerate_and_edit_keep_the_earlier_version_and_arrows_switch(
    make_app, engine: FakeEngine, history
) -> None:
    engine.answers = [["One."], ["Two."], ["Three."]]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "q")
        await pilot.press("ctrl+up", "r")  # the answer, written again beside the first
        await until(pilot, lambda: not screen.answering and len(screen.chat.turns) == 2)
        await pilot.pause()
        assert [m.text for m in screen.conversation.messages] == ["q", "Two."]
        conversation_id = screen.chat.conversation_id
        saved = history.get_conversation(conversation_id)
        assert [m.content for m in saved.messages] == ["q", "Two."]
        answer = screen.chat.turns[1].message_id
        assert len(history.alternatives(answer)) == 2  # "One." is kept
        assert any("2/2" in row for row in screen_rows(app)), screen_rows(app)
        await pilot.press("ctrl+up", "left")  # the earlier version
        await pilot.pause()
        assert [m.text for m in screen.conversation.messages] == ["q", "One."]
        assert any("1/2" in row for row in screen_rows(app)), screen_rows(app)
        assert [m.content for m in history.get_conversation(conversation_id).messages] == [
            "q",
            "One.",
        ]  # remembered: a resume shows it
        await pilot.press("right")
        await pilot.pause()
        assert [m.text for m in screen.conversation.messages] == ["q", "Two."]
        await pilot.press("up", "e")  # edit the question: a new branch from it
        screen.prompt.reset("q, edited")
        await pilot.press("enter")
        await until(pilot, lambda: not screen.answering and len(screen.chat.turns) == 2)
        await pilot.pause()
        assert [m.text for m in screen.conversation.messages] == ["q, edited", "Three."]
        question = screen.chat.turns[0].message_id
        assert len(history.alternatives(question)) == 2
        assert any("you · 2/2" in row for row in screen_rows(app)), screen_rows(app)


async def test_edit_n_puts_that_message_of_yours_back_in_the_prompt(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "first question")
        await send(pilot, "second question")
        await screen.submit("/edit 1")
        await pilot.pause()
        assert screen.prompt.text == "first question"
        screen.prompt.reset("")
        await screen.submit("/edit")  # your last
        await pilot.pause()
        assert screen.prompt.text == "second question"
        screen.prompt.reset("")
        await screen.submit("/edit 3")
        await pilot.pause()
        assert any("2 messages of yours, not 3" in n for n in await shown(pilot))


async def test_keys_already_on_their_way_after_esc_are_not_actions(make_app) -> None:
    """Esc then "do…" typed fast: the "d" reaches the transcript before the focus moves to
    the prompt; it must not delete the message under the cursor."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "keep me")
        await pilot.press("ctrl+up")
        transcript = screen.conversation
        transcript.action_leave()
        transcript.action_act("delete")  # handled before the focus has moved
        await pilot.pause()
        assert [m.text for m in transcript.messages] == ["keep me", ANSWER]
        await pilot.press("ctrl+up", "d", "d")  # back in the transcript, d acts again
        await pilot.pause()
        assert [m.text for m in transcript.messages] == ["keep me"]


async def test_d_on_the_answer_of_a_second_version_deletes_it_and_then_that_version(
    make_app, engine: FakeEngine, history
) -> None:
    """With two versions of a question, d deletes what the cursor is on, asks first, says
    what went, and the chat shows a branch that still exists (saved as such)."""
    engine.answers = [["Rome."], ["Madrid."]]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Capital of Italy?")
        await pilot.press("ctrl+up", "up", "e")
        screen.prompt.reset("Capital of Spain?")
        await pilot.press("enter")
        await until(pilot, lambda: not screen.answering)
        await pilot.pause()
        await pilot.press("ctrl+up", "d", "d")  # the answer of version 2/2: only it
        await pilot.pause()
        assert [m.text for m in screen.conversation.messages] == ["Capital of Spain?"]
        assert screen.conversation.messages[0].header_text.startswith("you · 2/2")
        assert "Deleted: Deleted the answer." in await shown(pilot)
        await pilot.press("ctrl+up", "d")  # the question: asks again, then the version goes
        await pilot.pause()
        assert "Delete?: Press d again to delete this version of your question." in await shown(
            pilot
        )
        await pilot.press("d")
        await pilot.pause()
        assert [m.text for m in screen.conversation.messages] == ["Capital of Italy?", "Rome."]
        assert [t.content for t in screen.chat.turns] == ["Capital of Italy?", "Rome."]
        saved = history.get_conversation(screen.chat.conversation_id)
        assert [m.content for m in saved.messages] == ["Capital of Italy?", "Rome."]
        assert screen.conversation.cursor is screen.conversation.messages[0]

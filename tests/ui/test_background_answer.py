"""A new chat while an answer is written: the answer goes on in the background, is saved to
ITS chat, and never shows in the new one, which takes messages (answered at the same time)."""

from __future__ import annotations

import pytest
from pilot_helpers import screen_rows
from textual.widgets import OptionList

from mlxchat.ui.screens.history import HistoryScreen

from .helpers import SIZE, ready, send, shown, until

FIRST = ["Once", " upon", " a", " time", " there", " was", " a", " long", " story", "."]
SECOND = ["Paris", "."]


def saved(history, conversation_id: int) -> list[tuple[str, str, str | None]]:
    """(role, content, finish_reason) of a chat's saved messages, read from the store."""
    conversation = history.get_conversation(conversation_id)
    assert conversation is not None
    return [(m.role, m.content, m.finish_reason) for m in conversation.messages]


def transcript(screen) -> list[tuple[str, str]]:
    return [(v.kind, v.source) for v in screen.conversation.messages]


@pytest.mark.parametrize("leave", ["ctrl+n", "/clear"])
async def test_a_new_chat_while_an_answer_streams(make_app, engine, history, leave) -> None:
    engine.answers = [FIRST, SECOND]
    engine.hold_after(2)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Tell me a long story", wait=False)
        first = engine.current
        await until(pilot, lambda: first.held.is_set())
        first_id = screen.chat.conversation_id
        engine.let_new_streams_run()  # the first stays held; the next one runs
        if leave.startswith("/"):
            await send(pilot, leave, wait=False)
        else:
            await pilot.press(leave)
        await pilot.pause()
        # at once: an empty chat, not answering, the prompt free; the first goes on
        assert screen.conversation.messages == []
        assert not screen.answering and screen.status.state == "idle"
        assert screen.chat.conversation_id is None
        assert any("goes on in the background" in n for n in await shown(pilot))
        assert not first.finished and not first.cancelled
        # a message in the new chat is answered while the first is still held
        await send(pilot, "What is the capital of France?")
        second_id = screen.chat.conversation_id
        assert second_id not in (None, first_id)
        assert transcript(screen) == [
            ("user", "What is the capital of France?"),
            ("assistant", "Paris."),
        ]
        assert [m.content for m in engine.requests[1].messages] == [
            "What is the capital of France?"
        ]
        assert engine.requests[1].session != engine.requests[0].session
        assert not first.finished
        assert saved(history, first_id) == [("user", "Tell me a long story", None)]
        # the first ends: saved to ITS chat, nothing of it in this one
        engine.release()
        await until(pilot, lambda: len(saved(history, first_id)) == 2)
        await pilot.pause()
        assert saved(history, first_id) == [
            ("user", "Tell me a long story", None),
            ("assistant", "".join(FIRST), "stop"),
        ]
        stats = history.get_conversation(first_id).messages[1].stats
        assert stats is not None and stats.generation_tokens == len(FIRST)
        assert saved(history, second_id) == [
            ("user", "What is the capital of France?", None),
            ("assistant", "Paris.", "stop"),
        ]
        assert transcript(screen) == [
            ("user", "What is the capital of France?"),
            ("assistant", "Paris."),
        ]
        assert screen.status.state == "idle"
        assert screen.status.stats.generation_tokens == len(SECOND)  # not the first's
        assert any("has ended and is saved" in n for n in await shown(pilot))
        assert engine.requests[0].session in engine.reset_sessions  # its cache freed
        # resuming the first chat shows the whole answer
        await send(pilot, "/history")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press(*"long story")
        await until(pilot, lambda: app.screen.query_one(OptionList).option_count == 1)
        await pilot.press("enter")
        await until(pilot, lambda: screen.chat.conversation_id == first_id)
        await until(pilot, lambda: len(screen.conversation.messages) == 2)
        assert transcript(screen) == [
            ("user", "Tell me a long story"),
            ("assistant", "".join(FIRST)),
        ]


async def test_a_chat_whose_answer_runs_in_the_background_opens_once_it_ends(
    make_app, engine, history
) -> None:
    engine.answers = [FIRST]
    engine.hold_after(2)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Tell me a long story", wait=False)
        await until(pilot, lambda: engine.current.held.is_set())
        first_id = screen.chat.conversation_id
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not await screen.commands.resume_chat(first_id)
        assert any("still being written in the background" in n for n in await shown(pilot))
        assert screen.chat.conversation_id is None and screen.conversation.messages == []
        assert "1 more answering" in screen_rows(app)[-2]  # the status bar says it runs
        await send(pilot, "/history")  # and the saved chats mark it
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.pause()
        assert any("Tell me a long story  (answering…)" in row for row in screen_rows(app))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        engine.release()
        await until(pilot, lambda: len(saved(history, first_id)) == 2)
        await pilot.pause()
        assert "more answering" not in screen_rows(app)[-2]
        assert await screen.commands.resume_chat(first_id)
        await pilot.pause()
        assert transcript(screen)[-1] == ("assistant", "".join(FIRST))


async def test_quit_stops_and_saves_the_background_answer_too(make_app, engine, history) -> None:
    engine.answers = [FIRST, SECOND * 3]
    engine.hold_after(2)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Tell me a long story", wait=False)
        first = engine.current
        await until(pilot, lambda: first.held.is_set())
        first_id = screen.chat.conversation_id
        await pilot.press("ctrl+n")
        await send(pilot, "And another", wait=False)  # held too, in this chat
        second = engine.current
        await until(pilot, lambda: second is not first and second.held.is_set())
        second_id = screen.chat.conversation_id
        at_exit: list[list[tuple[str, str, str | None]]] = []
        leave = app.exit

        def exit_app(*args, **kwargs) -> None:  # what is saved when the app leaves
            at_exit.append([saved(history, first_id)[-1], saved(history, second_id)[-1]])
            leave(*args, **kwargs)

        app.exit = exit_app
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert at_exit == [
        [("assistant", "Once upon", "cancelled"), ("assistant", "Paris.", "cancelled")]
    ]


async def test_escape_in_the_new_chat_leaves_the_background_answer_alone(
    make_app, engine, history
) -> None:
    engine.answers = [FIRST, SECOND * 3]
    engine.hold_after(2)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Tell me a long story", wait=False)
        first = engine.current
        await until(pilot, lambda: first.held.is_set())
        first_id = screen.chat.conversation_id
        await pilot.press("ctrl+n")
        await send(pilot, "And another", wait=False)
        second = engine.current
        await until(pilot, lambda: second is not first and second.held.is_set())
        await pilot.press("escape")
        await until(pilot, lambda: not screen.answering)
        assert transcript(screen)[-1] == ("assistant", "Paris.")
        assert not first.cancelled and not first.finished
        engine.release()
        await until(pilot, lambda: len(saved(history, first_id)) == 2)
        assert saved(history, first_id)[-1] == ("assistant", "".join(FIRST), "stop")


async def test_without_a_history_the_answer_left_behind_is_stopped(make_app, engine) -> None:
    engine.hold_after(2)
    app = make_app(history=None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hi", wait=False)
        first = engine.current
        await until(pilot, lambda: first.held.is_set())
        await pilot.press("ctrl+n")
        await until(pilot, lambda: first.finished)
        assert first.cancelled
        assert any("was stopped" in n for n in await shown(pilot))
        assert screen.conversation.messages == []


def test_the_saved_chats_keep_their_order_while_the_list_is_open() -> None:
    """A chat updated while the list is open (its background answer ended) stays where it
    was listed; a chat seen for the first time goes below."""
    from datetime import UTC, datetime

    from mlxchat.store.records import ConversationSummary

    def chat(cid: int) -> ConversationSummary:
        now = datetime.now(UTC)
        return ConversationSummary(cid, f"chat {cid}", "demo", now, now, 2)

    orders = [[3, 2, 1], [1, 3, 2, 4]]  # chat 1 updated meanwhile, chat 4 new
    screen = HistoryScreen(lambda text: [chat(c) for c in orders.pop(0)], current=2)
    assert [c.id for c in screen.find("")[0]] == [3, 2, 1]
    assert [c.id for c in screen.find("chat")[0]] == [3, 2, 1, 4]
    labels = [label.plain for label in screen.labels([chat(2), chat(3)])]
    assert "(on screen)" in labels[0] and "(on screen)" not in labels[1]

"""The conversation keeps only its newest messages mounted, while it follows the bottom."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

from mlxchat.ui.widgets.conversation import ConversationView
from mlxchat.ui.widgets.message import MessageView


class OneView(App[None]):
    def compose(self) -> ComposeResult:
        yield ConversationView(window=3)


def earlier_line(app: App[None]) -> str:
    line = app.query_one("#earlier", Static)
    return str(line.render()) if line.display else ""


async def test_old_messages_go_only_while_following_the_bottom() -> None:
    app = OneView()
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(ConversationView)
        for n in range(5):
            await view.add(MessageView("user", f"message {n}"))
        await pilot.pause()
        assert [m.rendered_text() for m in view.messages][0].endswith("message 2")
        assert earlier_line(app).startswith("↑ 2 earlier messages")

        view.release_anchor()  # the user scrolled up to read: nothing is taken away
        for n in range(5, 7):
            await view.add(MessageView("user", f"message {n}"))
        await pilot.pause()
        assert len(view.messages) == 5
        assert earlier_line(app).startswith("↑ 2 earlier messages")


class TallMessages(App[None]):
    def compose(self) -> ComposeResult:
        yield ConversationView(window=40, screens=2)


async def test_only_the_messages_that_fill_two_screens_stay_mounted() -> None:
    app = TallMessages()
    async with app.run_test(size=(60, 20)) as pilot:  # 19 rows of messages
        view = app.query_one(ConversationView)
        for n in range(12):
            await view.add(MessageView("user", f"line 1\nline 2\nline 3\nline 4 of message {n}"))
            await pilot.pause()
        # 6 rows each (header, 4 lines, margin): 7 fill 38 rows; the newest is not laid out
        # yet when the oldest go
        assert len(view.messages) == 8
        assert earlier_line(app).startswith("↑ 4 earlier messages")
        assert view.messages[0].rendered_text().endswith("message 4")
        assert sum(m.outer_size.height + 1 for m in view.messages[1:]) >= 2 * 19

"""The scrolling list of messages.

It follows the bottom while new text arrives only as long as the user is at the bottom
(Textual's anchor: scrolling up releases it, scrolling back to the end restores it), so
reading earlier text is never interrupted.

Only the most recent messages are mounted as widgets: those that fill the last `screens`
heights of the view (at most `window` of them); older ones are kept as `MessageRecord`s
behind an "earlier messages" line at the top, and come back, a page at a time, when the user
scrolls up to it (or clicks it). Textual lays out every mounted widget whenever the
streaming answer grows, so this keeps streaming fast however long the chat is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from mlxchat.ui.textual_compat import OneLayoutPass, RowsAlikeBelow, follows_bottom
from mlxchat.ui.widgets.message import HeaderedMarkdown, MessageRecord, MessageView

AnyMessage = HeaderedMarkdown
"""A finished message or the answer being written."""


class EarlierMessages(Static):
    """The line at the top standing for messages not shown yet; a click shows more."""

    DEFAULT_CSS = """
    EarlierMessages {
        width: 1fr;
        color: $text-muted;
        text-align: center;
        margin: 0 0 1 0;
        display: none;
    }
    EarlierMessages:hover { color: $text; text-style: underline; }
    """

    def on_click(self, event: events.Click) -> None:
        """Show a page of earlier messages."""
        event.stop()
        parent = self.parent
        if isinstance(parent, ConversationView):
            self.app.run_worker(parent.show_earlier(), exit_on_error=False)


class ConversationView(VerticalScroll, OneLayoutPass, RowsAlikeBelow, can_focus=True):
    """The messages of the current chat, oldest first, with a welcome text when empty.

    Attributes:
        window: Most messages mounted while following the bottom.
        screens: How many heights of the view the mounted messages fill while following the
            bottom (older ones are unmounted when a message is added).
        page: How many earlier messages come back at a time.
    """

    DEFAULT_CSS = """
    ConversationView {
        height: 1fr;
        padding: 1 1 0 1;
        background: $background;
        scrollbar-size-vertical: 1;
    }
    ConversationView > #welcome {
        color: $text-muted;
        padding: 1 2;
        width: 1fr;
    }
    """

    def __init__(
        self,
        welcome: str = "",
        *,
        window: int = 40,
        screens: float = 2.0,
        page: int = 20,
        id: str | None = None,
    ) -> None:
        """Create an empty view.

        Args:
            welcome: Markup shown while there are no messages.
            window: Most messages mounted while following the bottom.
            screens: How many heights of the view the mounted messages fill while following
                the bottom.
            page: How many earlier messages come back at a time.
        """
        super().__init__(id=id)
        self._welcome_text = welcome
        self.window = window
        self.screens = screens
        self.page = page
        self._earlier: list[MessageRecord] = []
        self._showing_earlier = False

    def rows_alike_from(self) -> int | None:
        """Its own rows (the background around and between messages) are all alike."""
        return 0

    def compose(self) -> ComposeResult:
        """The earlier-messages line and the welcome text."""
        yield EarlierMessages(id="earlier")
        yield Static(self._welcome_text, id="welcome")

    def on_mount(self) -> None:
        """Follow the bottom."""
        self.anchor()

    # ----- reading ----------------------------------------------------------------------------
    @property
    def messages(self) -> list[AnyMessage]:
        """The mounted message widgets (and the answer being written), oldest first."""
        return [c for c in self.children if isinstance(c, HeaderedMarkdown)]

    @property
    def earlier_count(self) -> int:
        """How many older messages are kept off screen."""
        return len(self._earlier)

    # ----- changing ---------------------------------------------------------------------------
    async def add(self, *views: AnyMessage) -> None:
        """Append messages (the view keeps following the bottom if it was there)."""
        self.query_one("#welcome").display = False
        await self.mount_all(views)
        if follows_bottom(self):
            await self._trim()

    async def replace(self, old: AnyMessage, new: AnyMessage) -> None:
        """Put `new` where `old` is (the answer being written by the finished one)."""
        if old.parent is self:
            await self.mount(new, before=old)
            await old.remove()
        else:
            await self.add(new)

    async def load(self, records: Sequence[MessageRecord]) -> None:
        """Replace everything by `records`, mounting only the newest `window` of them."""
        await self.clear()
        if not records:
            return
        self._earlier = list(records[: -self.window]) if len(records) > self.window else []
        shown = records[-self.window :]
        self._update_earlier()
        await self.add(*(MessageView.from_record(r) for r in shown))

    async def clear(self) -> None:
        """Remove every message and show the welcome text again."""
        self._earlier = []
        self._update_earlier()
        await self.remove_children(self.messages)
        self.query_one("#welcome").display = True
        self.anchor()

    async def show_earlier(self, count: int | None = None) -> int:
        """Mount up to `count` (default `page`) earlier messages above the first one shown.

        The message that was at the top stays in view. Returns how many came back.
        """
        if not self._earlier or self._showing_earlier:
            return 0
        self._showing_earlier = True
        try:
            count = count or self.page
            batch, self._earlier = self._earlier[-count:], self._earlier[:-count]
            first = next(iter(self.messages), None)
            views = [MessageView.from_record(r) for r in batch]
            if first is not None:
                await self.mount_all(views, before=first)
            else:
                await self.mount_all(views)
            self._update_earlier()
            if first is not None:
                self.call_after_refresh(self._keep_in_view, first)
            return len(batch)
        finally:
            self._showing_earlier = False

    def _keep_in_view(self, widget: AnyMessage) -> None:
        self.scroll_to_widget(widget, animate=False, top=True, immediate=True)
        self.release_anchor()

    async def _trim(self) -> None:
        """Unmount the oldest messages not needed to fill `screens` heights of the view, or
        beyond `window` (kept as records)."""
        views = self.messages
        extra = len(views) - min(self.window, self._filling(views))
        if extra <= 0:
            return
        old = [v for v in views[:extra] if isinstance(v, MessageView)]
        self._earlier.extend(v.record() for v in old)
        self._update_earlier()
        await self.remove_children(old)

    def _filling(self, views: Sequence[AnyMessage]) -> int:
        """How many of the newest `views` fill `screens` heights of the view (as last laid
        out: a view not laid out yet counts as no height)."""
        rows, wanted = 0, self.screens * self.scrollable_content_region.height
        for count, view in enumerate(reversed(views), 1):
            rows += view.outer_size.height + view.styles.margin.bottom
            if wanted and rows >= wanted:
                return count
        return len(views)

    def _update_earlier(self) -> None:
        line = self.query_one("#earlier", EarlierMessages)
        count = len(self._earlier)
        noun = "message" if count == 1 else "messages"
        line.update(f"↑ {count} earlier {noun} — scroll up or click to show them")
        line.display = count > 0

    def follow(self) -> None:
        """Jump to the end and follow the bottom again."""
        self.anchor()
        self.scroll_end(animate=False, immediate=True)

    def watch_scroll_y(self, old: float, new: float) -> None:
        """Bring back earlier messages when the user reaches the top."""
        super().watch_scroll_y(old, new)
        if new <= 0 < old and self._earlier and not self._showing_earlier:
            self.run_worker(self.show_earlier(), exit_on_error=False)

    def records(self) -> Iterable[MessageRecord]:
        """Every message, kept or mounted, oldest first."""
        yield from self._earlier
        for view in self.messages:
            yield view.record()

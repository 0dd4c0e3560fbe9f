"""The status bar: model, state, speeds, tokens, context and memory on one line.

Any screen can use it (the chat screen and the translate screen do). Feed it from the
engine's events as often as they come; it repaints a few times a second, never per token:

    status.set_model("demo")
    status.set_state("prefill")
    status.set_stats(chunk.stats)      # cheap: stores a reference
    status.repaint_if_due()            # optional: when streamed text is repainted
    status.set_progress(progress)      # a Progress event (prefill counts, phase)
    status.set_state("idle")
    status.set_context(tokens)         # what the next request will hold (after /system …)

It shows only what is true: a speed once it is measured over enough tokens and time
(`measured_rate`), the context the next request holds, "messages left out" only for the
numbers it shows. When the line is narrower than everything, the least important parts
are left out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.content import Content
from textual.reactive import reactive
from textual.strip import Strip
from textual.style import Style
from textual.widget import Widget

from mlxchat.engine.types import LoadProgress, Progress, Stats
from mlxchat.text import sanitize
from mlxchat.ui.rates import format_tps, measured_rate, prefill_detail

State = Literal[
    "idle", "loading", "waiting", "prefill", "thinking", "generating", "stopping", "error", "tool"
]

_STATE_STYLE = {
    "idle": "$text-muted",
    "loading": "$warning",
    "waiting": "$warning",
    "prefill": "$secondary",
    "thinking": "$secondary",
    "generating": "$success",
    "stopping": "$warning",
    "error": "$error",
    "tool": "$warning",
}


@dataclass
class _Part:
    """One segment of the line: its text, style and priority (lower is kept longer)."""

    text: str
    style: str = ""
    priority: int = 5


def format_count(value: int) -> str:
    """A token count: 1234 → "1.2k", 2048 → "2k", 512 → "512"."""
    if value < 1000:
        return str(value)
    if value % 1024 == 0 and value < 1_048_576:
        return f"{value // 1024}k"
    if value < 100_000:
        return f"{value / 1000:.1f}k"
    return f"{value / 1000:.0f}k"


def format_seconds(value: float) -> str:
    """A duration: "85ms", "1.24s", "12.3s"."""
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 10:
        return f"{value:.2f}s"
    return f"{value:.1f}s"


def format_memory(active: float, peak: float) -> str:
    """Active/peak memory in GB (or MB when small)."""
    if max(active, peak) < 1:
        return f"mem {active * 1000:.0f}/{peak * 1000:.0f} MB"
    return f"mem {active:.2f}/{peak:.2f} GB"


class StatusBar(Widget):
    """One line of live numbers about the model and the answer being written.

    Reactives:
        model: The model's name ("" before one is chosen).
        state: idle, loading, waiting (for the model), prefill, generating, stopping, error.
        detail: A short text after the state (load progress, prefill counts, an error).
    """

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    model: reactive[str] = reactive("")
    state: reactive[State] = reactive("idle")
    detail: reactive[str] = reactive("")

    def __init__(
        self,
        *,
        refresh_interval: float = 0.25,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create an empty status bar.

        Args:
            refresh_interval: Seconds between repaints when numbers changed.
        """
        super().__init__(name=name, id=id, classes=classes)
        self.refresh_interval = refresh_interval
        self.stats: Stats | None = None
        """The latest numbers (set with `set_stats`)."""
        self.background = 0
        """Answers being written in other chats (see `set_background`)."""
        self.context_size: int = 0
        """The model's context size, shown until an answer reports the limit in force."""
        self.context_tokens: int | None = None
        """Tokens the next request will hold, when known better than by `stats`."""
        self._dirty = False
        self._painted = 0.0
        """When the numbers were last repainted (monotonic seconds)."""
        self._paced = 0.0
        """When `repaint_if_due` was last called."""
        self._styles: dict[str, RichStyle] = {}
        """Rich styles by style text, for `_styles_for` (the widget's own style)."""
        self._styles_for: Style | None = None

    def on_mount(self) -> None:
        """Start the repaint timer."""
        self.set_interval(self.refresh_interval, self.tick, name="status-refresh")

    def repaint_if_due(self) -> None:
        """Repaint now if the numbers changed and the last repaint is `refresh_interval` old.

        Call it when other text on the screen is repainted (a streamed answer): both then go
        out in one frame, where the timer would give the status bar a frame of its own. While
        it is called, the timer leaves the repaints to it.
        """
        now = time.monotonic()
        self._paced = now
        if self._dirty and now - self._painted >= self.refresh_interval:
            self._repaint(now)

    def tick(self) -> None:
        """Repaint new numbers no text repainted lately (what the timer calls)."""
        now = time.monotonic()
        if self._dirty and now - self._paced >= self.refresh_interval:
            self._repaint(now)

    def _repaint(self, now: float) -> None:
        self._dirty = False
        self._painted = now
        self.refresh()

    # ----- feeding ------------------------------------------------------------------------
    def set_model(self, name: str, context_size: int | None = None) -> None:
        """Show `name` as the model (and remember its context size)."""
        self.model = name
        if context_size is not None:
            self.context_size = context_size

    def set_state(self, state: State, detail: str = "") -> None:
        """Change the state (repaints now: state changes are rare)."""
        self.state = state
        self.detail = detail

    def set_stats(self, stats: Stats | None) -> None:
        """Take the latest numbers; painted at the next tick (cheap, call per token)."""
        self.stats = stats
        self.context_tokens = None
        self._dirty = True

    def set_context(self, tokens: int) -> None:
        """Show `tokens` as the context the next request will hold (the chat changed)."""
        self.context_tokens = tokens
        self._dirty = True

    def set_progress(self, progress: Progress) -> None:
        """Take a throttled `Progress` event from a stream."""
        self.set_stats(progress.stats)
        if progress.phase == "prefill":
            detail = prefill_detail(progress)
            if self.state != "prefill" or self.detail != detail:
                self.set_state("prefill", detail)
        elif self.state != "stopping":
            phase: State = "thinking" if progress.phase == "thinking" else "generating"
            if self.state != phase:
                self.set_state(phase)
        self._dirty = True

    def set_background(self, count: int) -> None:
        """Show how many answers are being written in other chats (0: nothing shown)."""
        if count != self.background:
            self.background = count
            self.refresh()

    def show_loading(self, progress: LoadProgress) -> None:
        """Show a model-load progress event."""
        detail = progress.message
        if progress.fraction is not None and 0 < progress.fraction < 1:
            detail = f"{progress.fraction:.0%} {progress.message}".strip()
        self.model = progress.model
        wide = progress.phase == "download"  # size, speed, ETA and files: keep them all
        self.set_state("loading", _shorten(detail, 64 if wide else 40))

    # ----- rendering ----------------------------------------------------------------------
    def _parts(self) -> list[_Part]:
        model = sanitize(self.model, one_line=True) or "no model"
        parts = [_Part(f"● {model}", "bold $primary", 0)]
        state = self.state
        label = state if not self.detail else f"{state}{':' * (state == 'tool')} {self.detail}"
        parts.append(_Part(label, _STATE_STYLE.get(state, ""), 0))
        if self.background:
            parts.append(_Part(f"{self.background} more answering", "bold $accent", 1))
        stats = self.stats
        if stats is not None and self.context_tokens is None and stats.dropped_messages:
            parts.append(_Part(dropped_note(stats.dropped_messages), "bold $warning", 1))
        if stats is not None:
            speed = measured_rate(stats.generation_tokens, stats.generation_tps)
            if speed is not None:
                parts.append(_Part(f"{format_tps(speed)} tok/s", "bold", 1))
            speed = measured_rate(stats.prompt_tokens, stats.prompt_tps)
            if speed is not None and state != "prefill":  # while prefilling: in the detail
                parts.append(_Part(f"prompt {format_tps(speed)} tok/s", "", 4))
            if stats.ttft:
                parts.append(_Part(f"ttft {format_seconds(stats.ttft)}", "", 3))
            if stats.cached_tokens:  # the prompt cache (RAM or disk) spared their prefill
                parts.append(_Part(f"cached {stats.cached_tokens} tokens", "", 2))
            if stats.draft_tokens:  # speculative decoding: the share of guesses kept
                accepted = round(100 * stats.accepted_tokens / stats.draft_tokens)
                parts.append(_Part(f"spec {accepted} %", "", 3))
            parts.append(_Part(f"{stats.generation_tokens} tok", "", 2))
        limit = (stats.context_limit if stats else 0) or self.context_size
        used = self.context_tokens
        if used is None:
            used = stats.context_tokens if stats else 0
        if limit or used:
            shown = f"ctx {format_count(used)}/{format_count(limit) if limit else '?'}"
            style = "$warning" if limit and used > 0.9 * limit else ""
            parts.append(_Part(shown, style, 2))
        if stats is not None and stats.active_memory:
            parts.append(_Part(format_memory(stats.active_memory, stats.peak_memory), "", 5))
        return parts

    def render_line(self, y: int) -> Strip:
        """The line, drawn straight to a strip (it is repainted a few times a second)."""
        width = self.content_size.width
        base = self.visual_style
        if y or width <= 0:
            return Strip.blank(width, base.rich_style)
        if self._styles_for is not base:  # the styles changed (a new theme)
            self._styles_for, self._styles = base, {}
        styles = self._styles
        segments: list[Segment] = []
        for text, style in self._pieces(max(width, 10)):  # as `render` (cut to `width`)
            rich_style = styles.get(style)
            if rich_style is None:
                rich_style = styles[style] = (base + Style.parse(style)).rich_style
            segments.append(Segment(text, rich_style))
        return Strip(segments).crop_extend(0, width, base.rich_style)

    def render(self) -> Content:
        """The line, dropping the least important parts until it fits."""
        return Content.assemble(*self._pieces(max(self.content_size.width, 10)))

    def _pieces(self, width: int) -> list[tuple[str, str]]:
        """(text, style) pieces of the line, the least important parts left out to fit."""
        parts = self._parts()
        separator = " │ "

        def length(items: list[_Part]) -> int:
            return sum(len(p.text) for p in items) + len(separator) * (len(items) - 1)

        while len(parts) > 2 and length(parts) > width:
            worst = max(range(len(parts)), key=lambda i: (parts[i].priority, i))
            if parts[worst].priority == 0:
                break
            del parts[worst]
        pieces: list[tuple[str, str]] = []
        for index, part in enumerate(parts):
            if index:
                pieces.append((separator, "$text-muted"))
            pieces.append((part.text, part.style))
        return pieces


def dropped_note(count: int) -> str:
    """The warning that the oldest messages did not fit in the context."""
    noun = "message" if count == 1 else "messages"
    return f"context full: {count} old {noun} left out"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

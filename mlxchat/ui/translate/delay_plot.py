"""A text plot of a sentence's delays against the ideal wait-k line g(t) = min(k + t − 1, |x|).

The x axis is the target word t, the y axis the source words read. Each written word is a
dot at (t, dₜ); the ideal line is drawn where no dot covers it, up to the next word (or
|x| words). When there are more target words than columns, the latest ones are shown; when
|x| is taller than the plot, each row stands for several source-word counts (labelled
with the largest).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from mlxchat.translate.policy import wait_k_schedule

DOT = "●"
LINE = "·"
DOT_STYLE = "bold $success"
LATE_STYLE = "bold $warning"
LINE_STYLE = "$secondary"
AXIS_STYLE = "$text-muted"


def plot_lines(
    delays: Sequence[int],
    wait_k: int,
    source_length: int | None,
    width: int,
    height: int,
    words_read: int = 0,
    finished: bool = False,
) -> list[Content]:
    """The plot as lines of text (the last two are the x axis and its labels).

    Args:
        delays: dₜ for each target word written.
        wait_k: The k of the sentence.
        source_length: |x| when known (None while the source is still arriving).
        width: Columns available (axis labels included).
        height: Lines available (the x axis and its labels included).
        words_read: Source words read so far (sets the y range while |x| is unknown).
        finished: The sentence is over (no next word to show on g(t)).
    """
    height = max(height, 4)
    top = max([wait_k, words_read, source_length or 0, *delays])
    label_width = len(str(top))
    columns = max(width - label_width - 1, 1)
    # the words written, the next one, and as many as the source is long
    count = max(len(delays) + (not finished), source_length or 0, words_read - wait_k + 2, 1)
    step = 2 if count * 2 <= columns else 1
    shown = min(count, max(columns // step, 1))
    first = count - shown + 1  # the first target word shown
    rows = height - 2
    per_row = math.ceil(top / rows)  # source-word counts per row
    rows = math.ceil(top / per_row)
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * (shown * step) for _ in range(rows)]

    def row_of(value: int) -> int:
        """The grid row where `value` source words is drawn."""
        return rows - math.ceil(value / per_row)

    for t in range(first, first + shown):
        x = (t - first) * step
        ideal = wait_k_schedule(t, wait_k, source_length)
        if ideal <= top:
            grid[row_of(ideal)][x] = (LINE, LINE_STYLE)
        if t <= len(delays):
            delay = delays[t - 1]
            if delay >= 1:
                late = delay > ideal
                grid[row_of(delay)][x] = (DOT, LATE_STYLE if late else DOT_STYLE)
    lines: list[Content] = []
    for r, cells in enumerate(grid):
        value = (rows - r) * per_row
        label = str(value) if per_row == 1 or r in (0, rows - 1, rows // 2) else ""
        pieces: list[tuple[str, str] | str] = [(label.rjust(label_width) + "┤", AXIS_STYLE)]
        pieces.extend((ch, style) if style else ch for ch, style in cells)
        lines.append(Content.assemble(*pieces).rstrip())
    axis = " " * label_width + "└" + "─" * (shown * step)
    first_label, last_label = str(first), str(first + shown - 1)
    ticks = " " * (label_width + 1) + first_label
    end = label_width + 1 + (shown - 1) * step
    if end - len(ticks) >= len(last_label):
        ticks = ticks.ljust(end - len(last_label) + 1) + last_label
    lines.append(Content.styled(axis, AXIS_STYLE))
    lines.append(Content.styled(ticks, AXIS_STYLE))
    return lines


class DelayPlot(Widget):
    """The delays of the sentence being translated (or the last one), against g(t).

    Reactives:
        delays: dₜ per target word written.
        wait_k: The sentence's k.
        source_length: |x| when known, else None.
        words_read: Source words read so far.
        finished: Whether the sentence is over.
    """

    DEFAULT_CSS = """
    DelayPlot {
        height: 1fr;
        min-height: 6;
    }
    """

    delays: reactive[tuple[int, ...]] = reactive(())
    wait_k: reactive[int] = reactive(3)
    source_length: reactive[int | None] = reactive(None)
    words_read: reactive[int] = reactive(0)
    finished: reactive[bool] = reactive(False)

    def show(
        self,
        delays: Sequence[int],
        wait_k: int,
        source_length: int | None,
        words_read: int,
        finished: bool = False,
    ) -> None:
        """Plot these numbers (repaints once)."""
        self.delays = tuple(delays)
        self.wait_k = wait_k
        self.source_length = source_length
        self.words_read = words_read
        self.finished = finished

    def render(self) -> Content:
        """The plot, a legend line and the x axis."""
        width, height = self.content_size.width, self.content_size.height
        legend = Content.assemble(
            (DOT, DOT_STYLE), " written  ", (LINE, LINE_STYLE), f" g(t), k={self.wait_k}"
        )
        lines = plot_lines(
            self.delays,
            self.wait_k,
            self.source_length,
            max(width, 8),
            max(height - 1, 4),
            self.words_read,
            self.finished,
        )
        return Content("\n").join([*lines, legend])

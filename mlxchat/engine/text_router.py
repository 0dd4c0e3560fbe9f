"""What the model writes, split per row into channels: reasoning or answer.

Every row of a generation (engine/batching.py, and the single path in engine/generation.py)
owns one `TextRouter`. After the detokenizer, each step's token id and text go through
`feed`, which returns the `(channel, text)` pieces to emit; the think tags themselves are
never in any text. `flush` releases what is held back when the row ends.

The think span is found as mlx-lm finds it (`TokenizerWrapper.has_thinking`,
`think_start`/`think_end` and their token sequences, so `<think>…</think>`, multi-token
markers like `<|channel>thought…<channel|>` too); a prompt that ends inside an open think
tag (templates that open `<think>` in the generation prompt) starts in reasoning, as
mlx_lm.server decides it.

The router is the first link of a chain (`Segmenter`: `feed(token, text)` and `flush()`
return `(channel, text)` pieces). Another detector plugs in by wrapping it in
`generation.row_router` (both paths make their router there): e.g. a tool-call segmenter
feeds the router, passes reasoning pieces on, watches the answer pieces (and the token ids)
for its start/end markers, holds a call's text back, and keeps each parsed call for the
row to emit as `Chunk.tool_call`; it keeps `channel` and `thinking` (the row reads them for
empty chunks and `Progress` phases). Stop strings apply to the answer only, after the chain
(engine/generation.py `StopMatcher`).

`ThinkBudget` is the logits processor that forces the think end past a budget of
reasoning tokens. Engine thread only; nothing here imports the UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from mlxchat.engine.types import Channel, Chunk, FinishReason, Stats

Piece = tuple[Channel, str]
"""A run of text and what it is."""


class Segmenter(Protocol):
    """One link of a row's chain: token ids and text in, channelled pieces out."""

    def feed(self, token: int | None, text: str) -> list[Piece]:
        """Take one step's token (None: none, e.g. EOS) and its text; return what to emit."""
        ...

    def flush(self) -> list[Piece]:
        """The row ended: release whatever is held back."""
        ...


def think_markers(tokenizer: Any) -> tuple[str, str, tuple[int, ...], tuple[int, ...]] | None:
    """The tokenizer's (think start, think end, their token ids) as mlx-lm detects them, or
    None when the model does not think (or the tokenizer is not mlx-lm's wrapper)."""
    try:
        if not getattr(tokenizer, "has_thinking", False):
            return None
        start, end = tokenizer.think_start, tokenizer.think_end
        start_ids, end_ids = tokenizer.think_start_tokens, tokenizer.think_end_tokens
    except (AttributeError, ValueError):
        return None
    if not (start and end and start_ids and end_ids):
        return None
    return start, end, tuple(start_ids), tuple(end_ids)


def _rfind(tokens: Sequence[int], sequence: Sequence[int]) -> int:
    n = len(sequence)
    for i in range(len(tokens) - n, -1, -1):
        if tuple(tokens[i : i + n]) == tuple(sequence):
            return i
    return -1


def opens_thinking(tokenizer: Any, prompt: Sequence[int]) -> bool:
    """Whether `prompt` ends inside an open think span (its last think start comes after
    its last think end), as mlx_lm.server chooses a request's first state."""
    markers = think_markers(tokenizer)
    if markers is None:
        return False
    _, _, start_ids, end_ids = markers
    return _rfind(prompt, start_ids) > _rfind(prompt, end_ids)


class TextRouter:
    """Splits a row's text into reasoning and answer at the think tags.

    The tags are matched on the text (a tag's text may arrive split across steps, or a
    step late, as streaming detokenizers hold text back), so a piece of text never lands
    in the wrong channel; tokens are counted per channel from the ids.

    Args:
        start: The think start text (None: the model does not think; all is answer).
        end: The think end text.
        thinking: Start inside the think span (the prompt opened it).
        start_ids: The think start's token ids (for counting).
        end_ids: The think end's token ids.
    """

    def __init__(
        self,
        start: str | None = None,
        end: str | None = None,
        thinking: bool = False,
        start_ids: tuple[int, ...] = (),
        end_ids: tuple[int, ...] = (),
    ) -> None:
        self.start, self.end = start, end
        self.start_ids, self.end_ids = start_ids, end_ids
        self.channel: Channel = "reasoning" if thinking and start else "answer"
        self.held = ""
        self.fresh = True  # at the start of a segment: leading whitespace is dropped
        self.reasoning_tokens = 0
        """Tokens written inside the think span (the tags not counted)."""
        self.recent: list[int] = []
        self.token_thinking = self.thinking  # the span as the token ids say (for counting)

    @classmethod
    def for_prompt(cls, tokenizer: Any, prompt: Sequence[int]) -> TextRouter:
        """The router of a row whose prompt tokens are `prompt`."""
        markers = think_markers(tokenizer)
        if markers is None:
            return cls()
        start, end, start_ids, end_ids = markers
        return cls(start, end, opens_thinking(tokenizer, prompt), start_ids, end_ids)

    @property
    def thinks(self) -> bool:
        """Whether the model has think tags at all."""
        return self.start is not None

    @property
    def thinking(self) -> bool:
        """Whether the text is now inside the think span."""
        return self.channel == "reasoning"

    def _count(self, token: int | None) -> None:
        if token is None or not self.thinks:
            return
        self.recent = (self.recent + [token])[-max(len(self.start_ids), len(self.end_ids)) :]
        if tuple(self.recent[-len(self.end_ids) :]) == self.end_ids:
            self.token_thinking = False
        elif tuple(self.recent[-len(self.start_ids) :]) == self.start_ids:
            self.token_thinking = True
        elif self.token_thinking and token not in self.start_ids + self.end_ids:
            self.reasoning_tokens += 1

    def feed(self, token: int | None, text: str) -> list[Piece]:
        """Route one step's text; see `Segmenter.feed`."""
        self._count(token)
        if not self.thinks:
            return [("answer", text)] if text else []
        pieces: list[Piece] = []
        buffer = self.held + text
        self.held = ""
        while buffer:
            tag = self.end if self.thinking else self.start
            assert tag is not None
            at = buffer.find(tag)
            if at >= 0:
                self._emit(pieces, buffer[:at])
                buffer = buffer[at + len(tag) :]
                self.channel = "answer" if self.thinking else "reasoning"
                self.fresh = True
                continue
            keep = _partial_suffix(buffer, tag)
            self._emit(pieces, buffer[: len(buffer) - keep])
            self.held = buffer[len(buffer) - keep :]
            break
        return pieces

    def flush(self) -> list[Piece]:
        """Release text held as a possible tag start; see `Segmenter.flush`."""
        pieces: list[Piece] = []
        self._emit(pieces, self.held)
        self.held = ""
        return pieces

    def _emit(self, pieces: list[Piece], text: str) -> None:
        if self.fresh:
            text = text.lstrip()
        if not text:
            return
        self.fresh = False
        if pieces and pieces[-1][0] == self.channel:
            pieces[-1] = (self.channel, pieces[-1][1] + text)
        else:
            pieces.append((self.channel, text))


def _partial_suffix(buffer: str, tag: str) -> int:
    """The length of the longest end of `buffer` that is a proper start of `tag`."""
    for n in range(min(len(tag) - 1, len(buffer)), 0, -1):
        if buffer.endswith(tag[:n]):
            return n
    return 0


class ThinkBudget:
    """An mlx-lm logits processor that forces the think end after `budget` reasoning tokens.

    It follows the tokens the model is fed (exact, unlike the router, which sees them a
    step later): the first call's last token is the prompt's, later calls' the token just
    sampled. Once the budget is spent inside the think span, the think end's tokens are
    the only choice until they are written.

    Args:
        budget: Most reasoning tokens.
        thinking: The prompt opened the think span.
        start_ids: The think start's token ids.
        end_ids: The think end's token ids.
    """

    def __init__(
        self,
        budget: int,
        thinking: bool,
        start_ids: tuple[int, ...],
        end_ids: tuple[int, ...],
    ) -> None:
        self.budget = max(budget, 0)
        self.thinking = thinking
        self.start_ids, self.end_ids = start_ids, end_ids
        self.spent = 0
        self.forcing = 0  # how many of the think end's tokens were forced so far
        self.calls = 0
        self.recent: list[int] = []

    @classmethod
    def for_prompt(cls, tokenizer: Any, prompt: Sequence[int], budget: int | None) -> Any:
        """The processor for a row, or None when there is no budget or no think span."""
        markers = think_markers(tokenizer)
        if budget is None or markers is None:
            return None
        _, _, start_ids, end_ids = markers
        return cls(budget, opens_thinking(tokenizer, prompt), start_ids, end_ids)

    def _see(self, token: int) -> None:
        self.recent = (self.recent + [token])[-max(len(self.start_ids), len(self.end_ids)) :]
        if tuple(self.recent[-len(self.end_ids) :]) == self.end_ids:
            self.thinking, self.forcing = False, 0
        elif tuple(self.recent[-len(self.start_ids) :]) == self.start_ids:
            self.thinking, self.spent = True, 0
        elif self.thinking and not self.forcing and token not in self.start_ids + self.end_ids:
            self.spent += 1

    def __call__(self, tokens: Any, logits: Any) -> Any:
        import mlx.core as mx

        self.calls += 1
        if self.calls > 1:  # the first call's last token is the prompt's
            self._see(int(tokens[-1].item()))
        if not self.thinking or self.spent < self.budget:
            return logits
        if self.forcing >= len(self.end_ids):
            return logits
        choice = self.end_ids[self.forcing]
        self.forcing += 1
        mask = mx.arange(logits.shape[-1]) == choice
        return mx.where(mask, mx.zeros_like(logits), mx.full(logits.shape, -1e9, logits.dtype))


class _Stopper(Protocol):
    def feed(self, text: str) -> tuple[str, bool]: ...

    def flush(self) -> str: ...


def _merge(pieces: list[Piece]) -> list[Piece]:
    merged: list[Piece] = []
    for channel, text in pieces:
        if not text:
            continue
        if merged and merged[-1][0] == channel:
            merged[-1] = (channel, merged[-1][1] + text)
        else:
            merged.append((channel, text))
    return merged


def stop_answer(pieces: list[Piece], stopper: _Stopper) -> tuple[list[Piece], bool]:
    """Pass the answer pieces through the stop strings (reasoning is never stopped);
    returns what to emit and whether a stop string ended the answer."""
    out: list[Piece] = []
    for channel, text in pieces:
        if channel != "answer":
            out.append((channel, text))
            continue
        text, hit = stopper.feed(text)
        out.append((channel, text))
        if hit:
            return _merge(out), True
    return _merge(out), False


def route_step(
    router: Segmenter, stopper: _Stopper, token: int | None, text: str
) -> tuple[list[Piece], bool]:
    """One step of a row: the router, then the stop strings on the answer."""
    return stop_answer(router.feed(token, text), stopper)


def route_tail(router: Segmenter, stopper: _Stopper) -> list[Piece]:
    """The row ended: what the router and the stop strings still hold."""
    pieces, _ = stop_answer(router.flush(), stopper)
    return _merge(pieces + [("answer", stopper.flush())])


def step_chunks(
    pieces: list[Piece],
    token: int | None,
    stats: Stats,
    channel: Channel,
    finish: FinishReason | None = None,
) -> list[Chunk]:
    """The chunks of one step: one per piece, the token on the first (so every token is
    counted once), `finish` on the last; one empty chunk in `channel` when there is no
    text (a tag, or text held back)."""
    pieces = pieces or [(channel, "")]
    chunks = [Chunk(text, None, stats, channel=part) for part, text in pieces]
    chunks[0].token = token
    chunks[-1].finish_reason = finish
    return chunks

"""Every custom Textual message of the chat UI, as small dataclasses, in one place.

Messages flow upwards: widgets tell the screen what the user did (`PromptSubmitted`,
`CompletionMove`, …); the chat screen announces what finished (`AnswerFinished`,
`ModelReady`, `ModelFailed`) so the app, tests and benchmarks can wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from mlxchat.engine.types import FinishReason, ModelInfo, Stats


@dataclass
class PromptSubmitted(Message):
    """The user pressed Enter in the prompt.

    Attributes:
        text: The prompt's whole text, as typed.
    """

    text: str


@dataclass
class CompletionMove(Message):
    """Up/Down in the prompt while the completion list is open: move its highlight.

    Attributes:
        delta: -1 for up, +1 for down.
    """

    delta: int


@dataclass
class CompletionAccept(Message):
    """Tab in the prompt while the completion list is open: take the highlighted item."""


@dataclass
class CompletionDismiss(Message):
    """Escape in the prompt while the completion list is open: close it."""


@dataclass
class AnswerFinished(Message):
    """An answer ended (finished, stopped, cut at the token limit or failed).

    Attributes:
        text: The answer's whole text (possibly partial).
        finish_reason: "stop", "length", "cancelled" or "error".
        stats: The final numbers, or None when nothing was generated.
        error: The error shown, when `finish_reason` is "error".
    """

    text: str
    finish_reason: FinishReason
    stats: Stats | None = None
    error: str | None = None


@dataclass
class ModelReady(Message):
    """A model finished loading and is in use.

    Attributes:
        info: What was loaded.
    """

    info: ModelInfo


@dataclass
class ModelFailed(Message):
    """A model could not be loaded (the previous one, if any, stays).

    Attributes:
        name: The name that was asked for.
        error: Why, in one line.
    """

    name: str
    error: str

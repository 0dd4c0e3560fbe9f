"""How `mlxchat generate` shows a model's reasoning: on stderr, dim on a terminal, ended by
a line break when the answer begins, so stdout holds the answer alone."""

from __future__ import annotations

from typing import Any, TextIO

DIM, RESET = "\x1b[2m", "\x1b[0m"


class ReasoningWriter:
    """Writes reasoning chunks to `err` (nothing when `hidden`).

    Args:
        err: Where the reasoning goes (stderr).
        hidden: Drop it (`--hide-reasoning`).
    """

    def __init__(self, err: TextIO, hidden: bool = False) -> None:
        self.err = err
        self.hidden = hidden
        self.dim = err.isatty()
        self.open = False  # reasoning was written and not yet ended by a line break

    def write(self, text: str) -> None:
        """Show a piece of reasoning."""
        from mlxchat.text import sanitize

        if self.hidden or not text:
            return
        shown = sanitize(text)
        self.err.write(f"{DIM}{shown}{RESET}" if self.dim else shown)
        self.err.flush()
        self.open = not text.endswith("\n")

    def end(self) -> None:
        """The answer begins (or the stream ends): close the reasoning's last line."""
        if self.open:
            self.err.write("\n")
            self.err.flush()
            self.open = False


def chunk_event(chunk: Any) -> dict[str, Any]:
    """The `--json` event of a chunk: `reasoning` for thinking, `chunk` for the answer."""
    kind = "reasoning" if chunk.channel == "reasoning" else "chunk"
    return {"type": kind, "text": chunk.text, "token": chunk.token}

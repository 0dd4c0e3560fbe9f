"""How a command fails: one line on stderr and an exit code (2 for what the user can fix)."""

from __future__ import annotations

from typing import NoReturn

import typer

from mlxchat.text import sanitize

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "fail"]


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one error line to stderr and exit."""
    typer.echo(f"mlxchat: error: {sanitize(message, one_line=True)}", err=True)
    raise typer.Exit(code)

"""The `mlxchat` command line: chat (the default), generate, translate, models, locate.

Heavy modules (MLX, Textual) are imported inside the commands, so `--help` stays fast.
Errors the user can fix print one line (`mlxchat: error: ...`) and exit with code 2.
"""

from __future__ import annotations

import os
import sys

import typer

from mlxchat.cli import generate, mcp, models, serve, translate  # noqa: F401  (register the commands)
from mlxchat.cli.app import app, with_resume_value
from mlxchat.cli.errors import EXIT_INTERRUPTED

__all__ = ["app", "main"]


def _only_help(args: list[str]) -> bool:
    """Whether the command line only asks for help or the version (nothing runs MLX)."""
    return any(arg in ("-h", "--help", "--version") for arg in args)


def main() -> None:
    """Console entry point."""
    if not _only_help(sys.argv[1:]):
        from mlxchat.engine.cpu import setup_process

        setup_process()  # first, before anything imports MLX: the fast BLAS (engine/blas.py)
    try:
        app(args=with_resume_value(sys.argv[1:]), prog_name="mlxchat")
    except KeyboardInterrupt:
        typer.echo("mlxchat: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # a bug: one line, the details only when asked
        if os.environ.get("MLXCHAT_DEBUG"):
            raise
        typer.echo(
            f"mlxchat: internal error: {type(error).__name__}: {error} "
            "(set MLXCHAT_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(1)

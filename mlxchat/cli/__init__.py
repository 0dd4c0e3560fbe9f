"""The `mlxchat` command line: chat (the default), generate, translate, models, locate.

Heavy modules (MLX, Textual) are imported inside the commands, so `--help` stays fast.
Errors the user can fix print one line (`mlxchat: error: ...`) and exit with code 2.
"""

from __future__ import annotations

import os
import sys

import typer

from mlxchat.cli import generate, models, serve, translate  # noqa: F401  (register the commands)
from mlxchat.cli.app import EXIT_INTERRUPTED, app, with_resume_value

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point."""
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

"""The typer app, the default chat command and helpers shared by the other commands.

Heavy modules (MLX, Textual) are imported inside the commands, so `--help` stays fast.
Errors the user can fix print one line (`mlxchat: error: ...`) and exit with code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from mlxchat import __version__

app = typer.Typer(
    help="A fast terminal chat for local language models on MLX.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)
models_app = typer.Typer(help="List local models, or import a GGUF file.", add_completion=False)
app.add_typer(models_app, name="models")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one error line to stderr and exit."""
    typer.echo(f"mlxchat: error: {message}", err=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlxchat {__version__}")
        raise typer.Exit()


ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="demo, a .gguf file, an MLX model dir or a cached HF id."),
]
SystemOpt = Annotated[str | None, typer.Option("--system-prompt", "-s", help="System prompt.")]
TempOpt = Annotated[float | None, typer.Option(help="Sampling temperature (0 = greedy).")]
TopPOpt = Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling mass.")]
MaxTokOpt = Annotated[int | None, typer.Option("--max-tokens", help="Most tokens per answer.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed.")]


@app.callback(invoke_without_command=True)
def chat(
    ctx: typer.Context,
    model: ModelOpt = None,
    system_prompt: SystemOpt = None,
    temp: TempOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokOpt = None,
    seed: SeedOpt = None,
    theme: Annotated[str | None, typer.Option(help="Colour theme name.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where history is kept (or MLXCHAT_DATA_DIR).")
    ] = None,
    resume: Annotated[int | None, typer.Option(help="Resume the saved chat with this id.")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Open the chat (the default command)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit(
        model=model,
        system_prompt=system_prompt,
        temp=temp,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        theme=theme,
    )
    from mlxchat.ui.app import run_chat

    raise typer.Exit(run_chat(settings, data_dir=data_dir, resume=resume))


def settings_or_exit(**overrides: Any) -> Any:
    """Settings from the config file with the given CLI overrides (None = not given)."""
    from mlxchat.config import ConfigError, load_settings

    try:
        return load_settings(overrides={k: v for k, v in overrides.items() if v is not None})
    except ConfigError as error:
        fail(str(error))


def read_prompt(prompt: str | None) -> str:
    if prompt is None or prompt == "-":
        if sys.stdin is None or sys.stdin.isatty():
            fail("no prompt: pass --prompt TEXT or pipe text on stdin")
        try:
            prompt = sys.stdin.read()
        except UnicodeDecodeError as error:
            fail(f"stdin is not valid UTF-8 ({error.reason} at byte {error.start})")
    if not prompt.strip():
        fail("the prompt is empty; give some text with --prompt or on stdin")
    return prompt


def stats_line(stats: Any, finish: str) -> str:
    return (
        f"{stats.generation_tokens} tokens, {stats.generation_tps:.1f} tok/s | "
        f"prompt {stats.prompt_tokens} tokens, {stats.prompt_tps:.1f} tok/s | "
        f"TTFT {stats.ttft:.3f} s | peak {stats.peak_memory:.2f} GB | {finish}"
    )


def stats_dict(stats: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(stats).items()}


def emit_json(out: Any, **event: Any) -> None:
    """Write one NDJSON event line."""
    out.write(json.dumps(event, ensure_ascii=False) + "\n")


def echo_backend(info: Any) -> None:
    """The `-v` line naming where the model computes (device, BLAS, threads, weights)."""
    typer.echo(f"mlxchat: {info.name} on {info.backend}", err=True)


def load_model_or_exit(engine: Any, name: str, quiet: bool) -> Any:
    """Load `name`, reporting progress on stderr when it is a terminal."""
    from mlxchat.engine.types import ModelLoadError

    show = not quiet and sys.stderr.isatty()

    def progress(event: Any) -> None:
        if show:
            pct = f" {event.fraction:4.0%}" if event.fraction is not None else ""
            sys.stderr.write(f"\r\x1b[2K{event.model}:{pct} {event.message}"[:200])
            sys.stderr.flush()

    try:
        info = engine.load_sync(name, progress)
    except ModelLoadError as error:
        if show:
            sys.stderr.write("\r\x1b[2K")
        fail(str(error))
    if show:
        sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()
    return info

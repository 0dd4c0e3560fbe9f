"""The `mlxchat` command line: chat (the default), generate, translate, models, locate.

Heavy modules (MLX, Textual) are imported inside the commands, so `--help` stays fast.
Errors the user can fix print one line (`mlxchat: error: ...`) and exit with code 2.
"""

from __future__ import annotations

import json
import os
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
    settings = _settings(
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


def _settings(**overrides: Any) -> Any:
    """Settings from the config file with the given CLI overrides (None = not given)."""
    from mlxchat.config import ConfigError, load_settings

    try:
        return load_settings(overrides={k: v for k, v in overrides.items() if v is not None})
    except ConfigError as error:
        fail(str(error))


def _read_prompt(prompt: str | None) -> str:
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


def _stats_line(stats: Any, finish: str) -> str:
    return (
        f"{stats.generation_tokens} tokens, {stats.generation_tps:.1f} tok/s | "
        f"prompt {stats.prompt_tokens} tokens, {stats.prompt_tps:.1f} tok/s | "
        f"TTFT {stats.ttft:.3f} s | peak {stats.peak_memory:.2f} GB | {finish}"
    )


def _stats_dict(stats: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(stats).items()}


def _emit_json(out: Any, **event: Any) -> None:
    """Write one NDJSON event line."""
    out.write(json.dumps(event, ensure_ascii=False) + "\n")


def _load_model(engine: Any, name: str, quiet: bool) -> Any:
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


@app.command()
def generate(
    model: ModelOpt = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="The prompt; '-' or none reads stdin.")
    ] = None,
    system_prompt: SystemOpt = None,
    temp: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass.")] = 1.0,
    min_p: Annotated[float, typer.Option("--min-p", help="Min-p sampling threshold.")] = 0.0,
    top_k: Annotated[int, typer.Option("--top-k", help="Top-k sampling (0 = off).")] = 0,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Most tokens.")] = 512,
    seed: SeedOpt = None,
    stop: Annotated[
        list[str] | None, typer.Option("--stop", metavar="TEXT", help="Stop string (repeatable).")
    ] = None,
    ignore_chat_template: Annotated[
        bool, typer.Option("--ignore-chat-template", help="Feed the prompt as raw text.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Write NDJSON events.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print stats to stderr at the end.")
    ] = False,
) -> None:
    """Stream an answer to stdout, for scripts and pipes."""
    from mlxchat.engine.types import Message, SamplingParams

    if max_tokens < 1:
        fail(f"--max-tokens must be at least 1 (got {max_tokens})")
    try:
        params = SamplingParams(
            temp=temp,
            top_p=top_p,
            min_p=min_p,
            top_k=top_k,
            seed=seed,
            max_tokens=max_tokens,
            stop=tuple(stop or ()),
        )
        from mlxchat.engine.sampling import validate

        validate(params)
    except ValueError as error:
        fail(str(error))
    text = _read_prompt(prompt)
    name = model or _settings().model
    messages = [Message("system", system_prompt)] if system_prompt else []
    messages.append(Message("user", text))
    raise typer.Exit(
        _run_generate(name, messages, params, not ignore_chat_template, as_json, verbose)
    )


def _run_generate(
    name: str, messages: list[Any], params: Any, chat_template: bool, as_json: bool, verbose: bool
) -> int:
    from mlxchat.engine.engine import Engine
    from mlxchat.engine.types import Chunk, EngineError, Progress
    from mlxchat.text import sanitize

    engine = Engine()
    _load_model(engine, name, quiet=as_json)
    out = sys.stdout
    stream = engine.iterate(messages, params, chat_template=chat_template, progress=as_json)
    last: Any = None
    try:
        for event in stream:
            if isinstance(event, Chunk):
                last = event
                if as_json:
                    out.write(
                        json.dumps({"type": "chunk", "text": event.text, "token": event.token})
                    )
                    out.write("\n")
                else:
                    out.write(sanitize(event.text))
                out.flush()
            elif isinstance(event, Progress) and as_json:
                out.write(
                    json.dumps(
                        {"type": "progress", "phase": event.phase, **_stats_dict(event.stats)}
                    )
                )
                out.write("\n")
                out.flush()
    except KeyboardInterrupt:
        stream.close()  # cancels the request; the partial output stays
        if not as_json:
            out.write("\n")
        out.flush()
        typer.echo("mlxchat: interrupted", err=True)
        return EXIT_INTERRUPTED
    except EngineError as error:
        fail(str(error))
    finish = last.finish_reason if last else "error"
    if as_json:
        out.write(
            json.dumps({"type": "done", "finish_reason": finish, "stats": _stats_dict(last.stats)})
        )
        out.write("\n")
    elif not (last and last.text.endswith("\n")):
        out.write("\n")
    out.flush()
    if verbose and last is not None:
        typer.echo(_stats_line(last.stats, finish), err=True)
    return 0


@models_app.callback(invoke_without_command=True)
def models_list(ctx: typer.Context) -> None:
    """List the models available on this machine."""
    if ctx.invoked_subcommand is not None:
        return
    from mlxchat.engine.models import list_local_models

    rows = list_local_models()
    width = max((len(m.name) for m in rows), default=4)
    for m in rows:
        size = f"{m.size / 1e6:8.1f} MB" if m.size else "   (not fetched)"
        typer.echo(f"{m.name:<{width}}  {m.kind:<5} {size}  {m.path}")


@models_app.command("import")
def models_import(path: Annotated[Path, typer.Argument(help="A .gguf file.")]) -> None:
    """Convert a GGUF file into a cached MLX model (then `--model FILE.gguf` is instant)."""
    from mlxchat.engine.models import import_gguf
    from mlxchat.engine.types import ModelLoadError

    try:
        model = import_gguf(path)
    except ModelLoadError as error:
        fail(str(error))
    typer.echo(f"imported {model.name} -> {model.path}")


@app.command()
def locate(
    what: Annotated[str, typer.Argument(help="config, data, themes or cache")],
) -> None:
    """Print where mlxchat keeps its config, history, themes or cache."""
    from mlxchat import locations

    paths = {
        "config": locations.config_file,
        "data": locations.data_dir,
        "themes": locations.themes_dir,
        "cache": locations.cache_dir,
    }
    if what not in paths:
        fail(f"unknown location '{what}'; use one of: {', '.join(paths)}")
    typer.echo(str(paths[what]()))


def main() -> None:
    """Console entry point."""
    try:
        app()
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

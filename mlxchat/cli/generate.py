"""`mlxchat generate`: stream an answer to stdout for scripts and pipes."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from mlxchat.cli.app import (
    EXIT_INTERRUPTED,
    ModelOpt,
    SeedOpt,
    SystemOpt,
    app,
    echo_backend,
    emit_json,
    fail,
    load_model_or_exit,
    read_prompt,
    settings_or_exit,
    stats_dict,
    stats_line,
)


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
        bool,
        typer.Option("--verbose", "-v", help="Print the backend and, at the end, stats to stderr."),
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
    text = read_prompt(prompt)
    name = model or settings_or_exit().model
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
    info = load_model_or_exit(engine, name, quiet=as_json)
    if verbose:
        echo_backend(info)
    out = sys.stdout
    stream = engine.iterate(messages, params, chat_template=chat_template, progress=as_json)
    last: Any = None
    try:
        for event in stream:
            if isinstance(event, Chunk):
                last = event
                if as_json:
                    emit_json(out, type="chunk", text=event.text, token=event.token)
                else:
                    out.write(sanitize(event.text))
                out.flush()
            elif isinstance(event, Progress) and as_json:
                emit_json(out, type="progress", phase=event.phase, **stats_dict(event.stats))
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
        emit_json(out, type="done", finish_reason=finish, stats=stats_dict(last.stats))
    elif not (last and last.text.endswith("\n")):
        out.write("\n")
    out.flush()
    if verbose and last is not None:
        typer.echo(stats_line(last.stats, finish), err=True)
    return 0

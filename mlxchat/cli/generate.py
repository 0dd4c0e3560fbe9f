"""`mlxchat generate`: stream an answer to stdout for scripts and pipes."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Annotated, Any

import typer

from mlxchat.cli.app import (
    ApiKeyOpt,
    DraftModelOpt,
    MaxTokOpt,
    ModelOpt,
    RemoteModelOpt,
    SeedOpt,
    SpeculativeOpt,
    SystemOpt,
    TempOpt,
    TopPOpt,
    app,
    echo_backend,
    emit_json,
    load_model_or_exit,
    model_name,
    read_prompt,
    settings_or_exit,
    stats_dict,
    stats_line,
)
from mlxchat.cli.errors import EXIT_INTERRUPTED, fail
from mlxchat.cli.terminal import check_utf8, quiet_when_reader_leaves


@app.command()
def generate(
    model: ModelOpt = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="The prompt; '-' or none reads stdin.")
    ] = None,
    system_prompt: SystemOpt = None,
    temp: TempOpt = None,
    top_p: TopPOpt = None,
    min_p: Annotated[float | None, typer.Option("--min-p", help="Min-p threshold.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Top-k (0 = off).")] = None,
    max_tokens: MaxTokOpt = None,
    seed: SeedOpt = None,
    speculative: SpeculativeOpt = None,
    draft_model: DraftModelOpt = None,
    remote_model: RemoteModelOpt = None,
    api_key: ApiKeyOpt = None,
    stop: Annotated[
        list[str] | None, typer.Option("--stop", metavar="TEXT", help="Stop string (repeatable).")
    ] = None,
    ignore_chat_template: Annotated[
        bool, typer.Option("--ignore-chat-template", help="Feed the prompt as raw text.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Write NDJSON events.")] = False,
    hide_reasoning: Annotated[
        bool,
        typer.Option("--hide-reasoning", help="Drop a thinking model's reasoning (else: stderr)."),
    ] = False,
    think: Annotated[
        bool | None,
        typer.Option("--think/--no-think", help="Let a model that thinks reason first."),
    ] = None,
    thinking_budget: Annotated[
        int | None,
        typer.Option("--thinking-budget", help="Most reasoning tokens before the answer."),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Print the backend, prefill progress and stats to stderr."
        ),
    ] = False,
) -> None:
    """Stream an answer to stdout, for scripts and pipes.

    Sampling settings not given as flags come from config.toml, then the model's own
    generation_config.json, then the built-in defaults (greedy), as in the chat.
    """
    from mlxchat.engine.types import Message

    settings = settings_or_exit(
        model=model_name(model, remote_model),
        temp=temp,
        top_p=top_p,
        min_p=min_p,
        top_k=top_k,
        max_tokens=max_tokens,
        seed=seed,
        enable_thinking=think,
        thinking_budget=thinking_budget,
        speculative=speculative,
        draft_model=draft_model,
    )
    text = read_prompt(prompt)
    messages = (
        [Message("system", check_utf8(system_prompt, "--system-prompt"))] if system_prompt else []
    )
    messages.append(Message("user", text))
    with quiet_when_reader_leaves():
        code = _run_generate(
            settings,
            messages,
            tuple(stop or ()),
            not ignore_chat_template,
            as_json,
            verbose,
            api_key,
            hide_reasoning,
        )
    raise typer.Exit(code)


def _run_generate(
    settings: Any,
    messages: list[Any],
    stop: tuple[str, ...],
    chat_template: bool,
    as_json: bool,
    verbose: bool,
    api_key: str | None = None,
    hide_reasoning: bool = False,
) -> int:
    from mlxchat.cli.reasoning import ReasoningWriter, chunk_event
    from mlxchat.config import effective_sampling
    from mlxchat.engine.factory import make_engine
    from mlxchat.engine.types import Chunk, EngineError, Progress
    from mlxchat.text import sanitize

    engine = make_engine(
        settings.model,
        api_key=api_key,
        fast_cpu=settings.fast_cpu,
        speculative=settings.speculative,
        draft_model=settings.draft_model,
    )
    info = load_model_or_exit(engine, settings.model, quiet=as_json)
    params = replace(effective_sampling(settings, info.sampling_defaults), stop=stop)
    if verbose and info.notice:
        typer.echo(f"mlxchat: {info.notice}", err=True)
    if verbose:
        echo_backend(info)
    out = sys.stdout
    stream = engine.iterate(
        messages,
        params,
        chat_template=chat_template,
        progress=as_json or verbose,
        options=settings.request_options(),
    )
    thoughts = ReasoningWriter(sys.stderr, hidden=hide_reasoning or as_json)
    last: Any = None
    prefill = PrefillLine(sys.stderr) if verbose and not as_json else None
    try:
        for event in stream:
            if isinstance(event, Chunk):
                if prefill is not None and last is None:
                    prefill.end()
                last = event
                hidden = hide_reasoning and event.channel == "reasoning"
                if as_json and (event.text or event.token is not None) and not hidden:
                    emit_json(out, **chunk_event(event))  # (not the bare end)
                elif event.channel == "reasoning":
                    thoughts.write(event.text)
                elif not as_json:
                    if event.text:
                        thoughts.end()
                    out.write(sanitize(event.text))
                out.flush()
            elif isinstance(event, Progress) and as_json:
                emit_json(out, type="progress", phase=event.phase, **stats_dict(event.stats))
                out.flush()
            elif isinstance(event, Progress) and prefill is not None and event.phase == "prefill":
                prefill.show(event)
    except KeyboardInterrupt:
        stream.close()  # cancels the request; the partial output stays
        if not as_json:
            out.write("\n")
        out.flush()
        typer.echo("mlxchat: interrupted", err=True)
        return EXIT_INTERRUPTED
    except EngineError as error:
        if last is not None and not as_json:  # keep the partial answer, say it is cut
            out.write("\n")
            out.flush()
            fail(f"{error} (the answer above is incomplete)")
        fail(str(error))
    thoughts.end()
    finish = last.finish_reason if last else "error"
    if as_json:
        emit_json(out, type="done", finish_reason=finish, stats=stats_dict(last.stats))
    elif not (last and last.text.endswith("\n")):
        out.write("\n")
    out.flush()
    if verbose and last is not None:
        typer.echo(stats_line(last.stats, finish), err=True)
    return 0


class PrefillLine:
    """Prefill progress on stderr: one line rewritten in place on a terminal, else a line
    per update."""

    def __init__(self, err: Any) -> None:
        self.err = err
        self.live = err.isatty()
        self.shown = False

    def show(self, progress: Any) -> None:
        """Write "prefill 128/435 at 45.2 tok/s"."""
        from mlxchat.ui.rates import prefill_detail

        text = f"prefill {prefill_detail(progress)}"
        self.err.write(f"\r\x1b[2K{text}" if self.live else f"{text}\n")
        self.err.flush()
        self.shown = True

    def end(self) -> None:
        """Clear the rewritten line before the answer starts."""
        if self.live and self.shown:
            self.err.write("\r\x1b[2K")
            self.err.flush()

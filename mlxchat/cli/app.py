"""The typer app, the default chat command and helpers shared by the other commands.

Heavy modules (MLX, Textual) are imported inside the commands, so `--help` stays fast.
Errors the user can fix print one line (`mlxchat: error: ...`) and exit with code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlxchat import __version__
from mlxchat.cli.errors import fail

if TYPE_CHECKING:
    from mlxchat.engine.contract import Engine

app = typer.Typer(
    help="A fast terminal chat for local language models on MLX.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)
models_app = typer.Typer(
    help="List local models; pull or remove Hub models; import a GGUF file.", add_completion=False
)
app.add_typer(models_app, name="models")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlxchat {__version__}")
        raise typer.Exit()


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="demo, a .gguf file, an MLX model dir or a Hub id (org/name[:QUANT])."
    ),
]
SystemOpt = Annotated[str | None, typer.Option("--system-prompt", "-s", help="System prompt.")]
TempOpt = Annotated[float | None, typer.Option(help="Sampling temperature (0 = greedy).")]
TopPOpt = Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling mass.")]
MaxTokOpt = Annotated[int | None, typer.Option("--max-tokens", help="Most tokens per answer.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed.")]
RemoteModelOpt = Annotated[
    str | None,
    typer.Option("--remote-model", help="With -m http://…/v1: the model id on the server."),
]
SpeculativeOpt = Annotated[
    str | None,
    typer.Option(
        "--speculative",
        metavar="auto|off|lookup|draft",
        help="Speculative decoding: guess tokens from earlier text (or a draft model), "
        "checked in one step.",
    ),
]
DraftModelOpt = Annotated[
    str | None,
    typer.Option(
        "--draft-model",
        metavar="NAME",
        help="A small model with the same tokenizer that guesses tokens (speculative).",
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", envvar="MLXCHAT_API_KEY", help="With -m http://…/v1: API key."),
]


@app.callback(invoke_without_command=True)
def chat(
    ctx: typer.Context,
    model: ModelOpt = None,
    system_prompt: SystemOpt = None,
    temp: TempOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokOpt = None,
    seed: SeedOpt = None,
    remote_model: RemoteModelOpt = None,
    api_key: ApiKeyOpt = None,
    theme: Annotated[str | None, typer.Option(help="Colour theme name.")] = None,
    speculative: SpeculativeOpt = None,
    draft_model: DraftModelOpt = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where history is kept (or MLXCHAT_DATA_DIR).")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            metavar="[ID]",
            help="Resume the saved chat with this id (/history shows ids); no id: the latest.",
        ),
    ] = None,
    continue_: Annotated[
        bool, typer.Option("--continue", "-c", help="Resume the latest saved chat.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Open the chat (the default command)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit(
        model=model_name(model, remote_model),
        system_prompt=system_prompt,
        temp=temp,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        theme=theme,
        speculative=speculative,
        draft_model=draft_model,
    )
    target = resume_target(resume, continue_)
    from mlxchat.cli.terminal import require_terminal

    require_terminal(
        "the chat needs a terminal; for pipes and scripts use `mlxchat generate` "
        "(e.g. echo hi | mlxchat generate)"
    )
    from mlxchat.ui.app import run_chat

    raise typer.Exit(run_chat(settings, data_dir=data_dir, resume=target, api_key=api_key))


def model_name(model: str | None, remote_model: str | None) -> str | None:
    """`model`, with `--remote-model` appended as ``#id`` to a server URL."""
    if remote_model is None:
        return model
    from mlxchat.models.remote import is_remote

    if model is None or not is_remote(model):
        fail("--remote-model needs a server URL: -m http://host:port/v1")
    return f"{model.partition('#')[0]}#{remote_model}"


RESUME_LATEST = "latest"
"""What a bare `--resume` stands for (see `with_resume_value`)."""


def resume_target(resume: str | None, latest: bool) -> int | str | None:
    """The chat to open: an id, `RESUME_LATEST`, or None (a new chat); exits on a bad id."""
    if resume is None or resume.lower() == RESUME_LATEST:
        return RESUME_LATEST if latest or resume is not None else None
    if latest:
        fail("give either --continue or --resume ID, not both")
    try:
        number = int(resume)
    except ValueError:
        fail(f"--resume takes a chat id (a number, see /history), not '{resume}'")
    if number < 1:
        fail(f"--resume takes a chat id (a number, see /history), not '{resume}'")
    return number


def with_resume_value(args: list[str]) -> list[str]:
    """`args` with the chat's bare `--resume` (last, or followed by an option) given
    `latest`; nothing changes from a subcommand's name on."""
    commands = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    commands |= {g.name for g in app.registered_groups if g.name}
    fixed: list[str] = []
    for index, arg in enumerate(args):
        fixed.append(arg)
        if arg == "--" or arg in commands:
            return fixed + args[index + 1 :]
        following = args[index + 1] if index + 1 < len(args) else None
        if arg == "--resume" and (following is None or following.startswith("-")):
            fixed.append(RESUME_LATEST)
    return fixed


def settings_or_exit(**overrides: Any) -> Any:
    """Settings from the config file with the given CLI overrides (None = not given)."""
    from mlxchat.config import ConfigError, load_settings

    flags = check_flags(**overrides)
    try:
        return load_settings(overrides=flags)
    except ConfigError as error:
        fail(str(error))


def check_flags(**flags: Any) -> dict[str, Any]:
    """The given flags (None = not given) checked by the shared rules, or one error line."""
    from mlxchat.settings import SettingError, validate

    try:
        return validate({k: v for k, v in flags.items() if v is not None}, flags=True)
    except SettingError as error:
        fail(str(error))


def read_prompt(prompt: str | None) -> str:
    from mlxchat.cli.terminal import check_utf8, read_utf8

    if prompt is None or prompt == "-":
        if sys.stdin is None or sys.stdin.isatty():
            fail("no prompt: pass --prompt TEXT or pipe text on stdin")
        prompt = read_utf8(None, "prompt")
    else:
        check_utf8(prompt, "--prompt")
    if not prompt.strip():
        fail("the prompt is empty; give some text with --prompt or on stdin")
    return prompt


def stats_line(stats: Any, finish: str) -> str:
    memory = f"peak {stats.peak_memory:.2f} GB | " if stats.peak_memory else ""  # 0: remote
    drafted = stats.draft_tokens
    spec = f"spec {round(100 * stats.accepted_tokens / drafted)} % | " if drafted else ""
    return (
        f"{stats.generation_tokens} tokens, {stats.generation_tps:.1f} tok/s | "
        f"prompt {stats.prompt_tokens} tokens, {stats.prompt_tps:.1f} tok/s | "
        f"TTFT {stats.ttft:.3f} s | {memory}{spec}{finish}"
    )


def stats_dict(stats: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(stats).items()}


def emit_json(out: Any, **event: Any) -> None:
    """Write one NDJSON event line."""
    out.write(json.dumps(event, ensure_ascii=False) + "\n")


def echo_backend(info: Any) -> None:
    """The `-v` line naming where the model computes (device, BLAS, threads, weights)."""
    if info.backend:
        typer.echo(f"mlxchat: {info.name} on {info.backend}", err=True)


def load_model_or_exit(engine: Engine, name: str, quiet: bool) -> Any:
    """Load `name`, reporting progress (and any download from the Hub) on stderr."""
    from mlxchat.cli.progress import ProgressPrinter
    from mlxchat.engine.types import ModelLoadError

    progress = ProgressPrinter(quiet=quiet)
    try:
        info = engine.load_sync(name, progress)
    except ModelLoadError as error:
        progress.clear()
        fail(str(error))
    progress.clear()
    return info

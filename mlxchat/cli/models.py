"""`mlxchat models` and `mlxchat locate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlxchat.cli.app import app, models_app
from mlxchat.cli.errors import fail
from mlxchat.text import sanitize


@models_app.callback(invoke_without_command=True)
def models_list(ctx: typer.Context) -> None:
    """List the models available on this machine."""
    if ctx.invoked_subcommand is not None:
        return
    from mlxchat.engine.models import list_local_models

    rows = list_local_models()
    names = [sanitize(m.name, one_line=True) for m in rows]
    width = max((len(name) for name in names), default=4)
    typer.echo(f"{'NAME':<{width}}  {'KIND':<5} {'SIZE':>16}  PATH")
    for name, m in zip(names, rows, strict=True):
        size = f"{m.size / 1e6:13.1f} MB" if m.size else "   (not fetched)"
        typer.echo(f"{name:<{width}}  {m.kind:<5} {size}  {sanitize(m.path, one_line=True)}")
    from mlxchat.engine.converted import copies, copies_dir
    from mlxchat.engine.demo import DEMOS
    from mlxchat.engine.disk_cache import default_dir

    kept = copies()
    typer.echo("")
    if kept:  # float32 copies and tokenizers that make models start at once
        total = sum(size for _, size in kept)
        typer.echo(
            f"kept for fast starts: {len(kept)} model{'s' if len(kept) > 1 else ''}, "
            f"{total / 1e6:.1f} MB in {sanitize(str(copies_dir()), one_line=True)}"
        )
    prompts = default_dir()
    stored = sum(f.stat().st_size for f in prompts.glob("*/*.safetensors"))
    if stored:  # the prompt cache's disk tier (`prompt_cache_disk_mb`)
        where = sanitize(str(prompts), one_line=True)
        typer.echo(f"prompt caches on disk: {stored / 1e6:.1f} MB in {where}")
    typer.echo("")
    for demo in DEMOS.values():  # fetched from PyPI on first use
        typer.echo(f"{demo.name}: {demo.title}, {demo.license}")


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


@models_app.command("rm")
def models_rm(
    name: Annotated[str, typer.Argument(help="A name `mlxchat models` lists (demo or GGUF).")],
) -> None:
    """Remove a model mlxchat keeps (a demo or an imported GGUF) with its float32 copy."""
    import shutil

    from mlxchat.engine.converted import copy_dir, remove_copy
    from mlxchat.engine.models import list_local_models

    found = [m for m in list_local_models() if name in (m.name, m.path) and m.path]
    if not found:
        fail(f"no model named '{sanitize(name, one_line=True)}'; see `mlxchat models`")
    model = found[0]
    if model.kind not in ("demo", "gguf"):
        hint = "remove it with `huggingface-cli delete-cache`"
        fail(f"{model.name} is in the Hugging Face cache; {hint}")
    path = Path(model.path)
    copy = copy_dir(path)
    size = model.size + sum(f.stat().st_size for f in copy.rglob("*") if f.is_file())
    remove_copy(path)
    shutil.rmtree(path, ignore_errors=True)
    typer.echo(f"removed {sanitize(model.name, one_line=True)} ({size / 1e6:.1f} MB)")


@app.command()
def locate(
    what: Annotated[str, typer.Argument(help="config, data, themes or cache")],
) -> None:
    """Print where mlxchat keeps its config, history, themes or cache.

    `locate config` first writes a commented default config file when there is none.
    """
    from mlxchat import locations

    paths = {
        "config": locations.config_file,
        "data": locations.data_dir,
        "themes": locations.themes_dir,
        "cache": locations.cache_dir,
    }
    if what not in paths:
        fail(f"unknown location '{what}'; use one of: {', '.join(paths)}")
    path = paths[what]()
    if what == "config" and not path.exists():
        from mlxchat.config import ConfigError, write_default_config

        try:
            write_default_config(path)
        except ConfigError as error:
            fail(str(error))
        typer.echo("mlxchat: created a commented default config file", err=True)
    typer.echo(str(path))

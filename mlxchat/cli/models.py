"""`mlxchat models` and `mlxchat locate`."""

from __future__ import annotations

import sys
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
    from mlxchat.models.loader import list_local_models

    rows = list_local_models()
    names = [sanitize(m.name, one_line=True) for m in rows]
    width = max((len(name) for name in names), default=4)
    typer.echo(f"{'NAME':<{width}}  {'KIND':<5} {'SIZE':>16}  PATH")
    for name, m in zip(names, rows, strict=True):
        size = f"{m.size / 1e6:13.1f} MB" if m.size else "   (not fetched)"
        if m.size and not m.available:
            size = f"{m.size / 1e6:5.1f} MB partial"
        typer.echo(f"{name:<{width}}  {m.kind:<5} {size}  {sanitize(m.path, one_line=True)}")
    from mlxchat.engine.converted import copies, copies_dir
    from mlxchat.engine.disk_cache import default_dir
    from mlxchat.models.demo import DEMOS

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
    from mlxchat.engine.types import ModelLoadError
    from mlxchat.models.loader import import_gguf

    try:
        model = import_gguf(path)
    except ModelLoadError as error:
        fail(str(error))
    typer.echo(f"imported {model.name} -> {model.path}")


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(help="A Hub id: org/name, or org/name:Q4_K_M (GGUF).")],
    gguf_file: Annotated[
        str | None, typer.Option("--gguf-file", help="The GGUF file of the repo to fetch.")
    ] = None,
) -> None:
    """Download a model from the Hugging Face Hub into its cache (resumes a partial one)."""
    from mlxchat.cli.progress import ProgressPrinter
    from mlxchat.engine.types import ModelLoadError
    from mlxchat.models import hub

    if gguf_file:
        name = f"{name.split(':')[0]}:{gguf_file}"
    ref = hub.parse(name)
    if ref is None:
        fail(f"'{name}' is not a Hub id; give org/name or org/name:QUANT")
    progress = ProgressPrinter()
    try:
        path = hub.fetch(name, progress)
        if ref.gguf:
            from mlxchat.models.loader import import_gguf

            path = Path(import_gguf(path, progress).path)
    except ModelLoadError as error:
        progress.clear()
        fail(str(error))
    except KeyboardInterrupt:
        progress.clear()
        fail(f"download of {name} interrupted; `mlxchat models pull {name}` resumes it", 130)
    progress.clear()
    typer.echo(f"{name} -> {path}")


@models_app.command("rm")
def models_rm(
    name: Annotated[
        str, typer.Argument(help="A name `mlxchat models` lists: a Hub id, a demo or a GGUF.")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
) -> None:
    """Remove a model mlxchat keeps with its float32 copy: a Hub download (from the Hugging
    Face cache), a demo or an imported GGUF. Asks first."""
    import shutil

    from mlxchat.engine.converted import copy_dir, remove_copy
    from mlxchat.models import hub
    from mlxchat.models.loader import list_local_models

    found = [m for m in list_local_models() if name in (m.name, m.path) and m.path]
    local = found[0] if found and found[0].kind in ("demo", "gguf") else None
    ref = None if local is not None else hub.parse(name)
    if local is None and ref is None:
        fail(f"no model named '{sanitize(name, one_line=True)}'; see `mlxchat models`")
    if local is not None:
        path = Path(local.path)
        copy = copy_dir(path)
        size = local.size + sum(f.stat().st_size for f in copy.rglob("*") if f.is_file())
        what = sanitize(local.name, one_line=True)
    else:
        assert ref is not None
        hub_size = hub.size_on_disk(ref.repo)
        if hub_size is None:
            fail(f"{ref.repo} is not in the Hugging Face cache ({hub.cache_dir()})")
        size, what = hub_size, ref.repo
    if not yes:
        if not sys.stdin.isatty():
            fail(f"not removing {what} without asking: pass --yes")
        if not typer.confirm(f"Remove {what} ({size / 1e6:.1f} MB)?", default=False):
            raise typer.Exit(1)
    for model in found:  # its float32 copy goes with it
        remove_copy(Path(model.path))
    if local is not None:
        shutil.rmtree(local.path, ignore_errors=True)
    else:
        assert ref is not None
        size = hub.remove(ref.repo)
    typer.echo(f"removed {what} ({size / 1e6:.1f} MB freed)")


@app.command()
def locate(
    what: Annotated[
        str | None, typer.Argument(help="config, data, themes or cache (none: all four)")
    ] = None,
) -> None:
    """Print where mlxchat keeps its config, history, themes or cache.

    `locate config` first writes a commented default config file when there is none; with
    no argument, each of the four is listed with its path.
    """
    from mlxchat import locations

    paths = {
        "config": locations.config_file,
        "data": locations.data_dir,
        "themes": locations.themes_dir,
        "cache": locations.cache_dir,
    }
    if what is None:
        for name, where in paths.items():
            typer.echo(f"{name:<7} {where()}")
        return
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

"""`mlxchat mcp list`: each configured MCP server, its state and its tools."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from mlxchat.cli.app import app, settings_or_exit
from mlxchat.text import sanitize

mcp_app = typer.Typer(help="MCP tool servers ([mcp.servers.NAME] in config.toml).")
app.add_typer(mcp_app, name="mcp")


@mcp_app.callback(invoke_without_command=True)
def mcp_main(ctx: typer.Context) -> None:
    """MCP tool servers ([mcp.servers.NAME] in config.toml); alone: `mcp list`."""
    if ctx.invoked_subcommand is None:
        mcp_list()


@mcp_app.command("list")
def mcp_list() -> None:
    """Start each enabled server, then list its state and tools (disabled ones: off)."""
    settings = settings_or_exit()
    if not settings.mcp_servers:
        typer.echo(
            "No MCP server is configured; add one to config.toml (`mlxchat locate config`):\n"
            '  [mcp.servers.time]\n  command = "mcp-server-time"'
        )
        return
    from mlxchat.tools.toolbox import Toolbox

    async def listed() -> Toolbox:
        toolbox = Toolbox(settings.mcp_servers, timeout=settings.tool_timeout)
        try:
            toolbox.start()
            await toolbox.wait_ready(settings.tool_timeout)
        finally:
            await toolbox.close()
        return toolbox

    toolbox = asyncio.run(listed())
    failed = False
    for server in toolbox.servers.values():
        failed |= server.state == "failed"
        typer.echo(server_line(server))
        for spec in server.tools:
            typer.echo(f"  {sanitize(spec.name, one_line=True)}  {_first_line(spec.description)}")
    if failed:
        raise typer.Exit(1)


def server_line(server: Any) -> str:
    """ "NAME  STATE  (transport) where", with why it failed."""
    config = server.config
    state = {"off": "off (enabled = false)", "ready": f"ready, {len(server.tools)} tools"}.get(
        server.state, server.state
    )
    if server.state == "failed":
        state = f"failed: {server.error}"
    line = f"{config.name}  {state}  ({config.transport}: {config.where})"
    return sanitize(line, one_line=True)


def _first_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    first = sanitize(first, one_line=True)
    return first if len(first) <= 70 else first[:69] + "…"

"""Every configured MCP server, the tools they offer and the choices made in one chat.

The `Toolbox` is the app's: its servers start in the background when the chat opens and
stop when it closes. `ToolChoices` belong to one chat: servers and tools turned off with
/tools, and the tools the user said "always" to.

    toolbox = Toolbox(settings.mcp_servers, timeout=settings.tool_timeout)
    toolbox.start()                                    # returns at once
    options = toolbox.request_options(chat.tool_choices)   # None when no tool is on
    found = toolbox.find("get_current_time", choices)  # (server, spec) or None
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlxchat.engine.types import RequestOptions
from mlxchat.tools.config import ServerConfig
from mlxchat.tools.server import INSTALL_HINT, McpServer, ToolResult, ToolSpec


@dataclass
class ToolChoices:
    """What the user chose for one chat.

    Attributes:
        servers_off: Servers turned off in this chat.
        tools_off: Tools turned off, as "server.tool".
        always: Tools approved for the rest of the chat, as "server.tool".
    """

    servers_off: set[str] = field(default_factory=set)
    tools_off: set[str] = field(default_factory=set)
    always: set[str] = field(default_factory=set)


def key(spec: ToolSpec) -> str:
    """ "server.tool"."""
    return f"{spec.server}.{spec.name}"


def mcp_installed() -> bool:
    """Whether the `mcp` SDK can be imported (the `tools` extra)."""
    import importlib.util

    return importlib.util.find_spec("mcp") is not None


class Toolbox:
    """The configured servers and their tools.

    Attributes:
        servers: Every configured server by name (disabled ones stay "off").
        on_failure: Called once per server that fails (to start, or later), with the
            server; the chat shows it as a notice.
    """

    def __init__(self, configs: Sequence[ServerConfig], timeout: float = 60.0) -> None:
        """Prepare the servers (nothing starts until `start`)."""
        self.servers = {config.name: McpServer(config, timeout) for config in configs}
        self.on_failure: Callable[[McpServer], None] | None = None
        self._watchers: list[asyncio.Task[None]] = []
        self._reported: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.servers)

    def start(self) -> str | None:
        """Start every enabled server in the background (returns at once).

        Returns:
            A problem to show once (the `mcp` package missing), or None.
        """
        enabled = [s for s in self.servers.values() if s.config.enabled]
        if not enabled:
            return None
        if not mcp_installed():
            for server in enabled:
                server.state, server.error = "failed", INSTALL_HINT
            return INSTALL_HINT
        for server in enabled:
            server.start()
            self._watchers.append(asyncio.create_task(self._watch(server)))
        return None

    async def _watch(self, server: McpServer) -> None:
        await server.wait_ready()
        self.report(server)

    def report(self, server: McpServer) -> None:
        """Tell `on_failure` about a failed server, once per server."""
        if server.state == "failed" and server.name not in self._reported:
            self._reported.add(server.name)
            if self.on_failure is not None:
                self.on_failure(server)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until every started server is ready or failed."""
        waits = [s.wait_ready(timeout) for s in self.servers.values() if s.state == "starting"]
        if waits:
            await asyncio.gather(*waits)

    async def close(self) -> None:
        """Stop every server."""
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*(s.close() for s in self.servers.values()), return_exceptions=True)

    # ----- the tools on in a chat -------------------------------------------------------------
    def tools(self, choices: ToolChoices | None = None) -> list[tuple[str, ToolSpec]]:
        """The tools on (ready servers, not turned off), with the name the model sees: the
        tool's own name, or "server_tool" when two servers offer the same name."""
        choices = choices or ToolChoices()
        specs = [
            spec
            for server in self.servers.values()
            if server.state == "ready" and server.name not in choices.servers_off
            for spec in server.tools
            if key(spec) not in choices.tools_off
        ]
        counts: dict[str, int] = {}
        for spec in specs:
            counts[spec.name] = counts.get(spec.name, 0) + 1
        return [
            (spec.name if counts[spec.name] == 1 else f"{spec.server}_{spec.name}", spec)
            for spec in specs
        ]

    def find(self, name: str, choices: ToolChoices | None = None) -> ToolSpec | None:
        """The tool on that the model (or /tool) calls `name` ("server.tool" works too)."""
        for exposed, spec in self.tools(choices):
            if name in (exposed, key(spec)):
                return spec
        return None

    def request_options(self, choices: ToolChoices | None = None) -> RequestOptions | None:
        """The tools for the engine (OpenAI style); None when no tool is on."""
        tools = tuple(
            {
                "type": "function",
                "function": {
                    "name": exposed,
                    "description": spec.description,
                    "parameters": spec.schema,
                },
            }
            for exposed, spec in self.tools(choices)
        )
        return RequestOptions(tools=tools) if tools else None

    def needs_approval(self, spec: ToolSpec, choices: ToolChoices | None = None) -> bool:
        """Whether to ask before running it (not when the config or "always" says so)."""
        server = self.servers.get(spec.server)
        if server is not None and spec.name in server.config.auto_approve:
            return False
        return choices is None or key(spec) not in choices.always

    async def call(self, spec: ToolSpec, arguments: dict[str, Any]) -> ToolResult:
        """Run a tool; failures come back as error results (and `on_failure` once)."""
        server = self.servers.get(spec.server)
        if server is None:
            return ToolResult(f"error: no tool server named '{spec.server}'", True)
        result = await server.call(spec.name, arguments)
        self.report(server)
        return result


def parse_arguments(text: str) -> dict[str, Any]:
    """A call's arguments from their JSON text ("" is no argument).

    Raises:
        ValueError: Not a JSON object (one line saying so).
    """
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the arguments are not valid JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise ValueError("the arguments must be a JSON object")
    return value


def pretty_arguments(text: str) -> str:
    """The arguments as indented JSON (as they came when they are not JSON)."""
    with contextlib.suppress(ValueError):
        return json.dumps(json.loads(text or "{}"), ensure_ascii=False, indent=2)
    return text


__all__ = [
    "ToolChoices",
    "Toolbox",
    "key",
    "mcp_installed",
    "parse_arguments",
    "pretty_arguments",
]

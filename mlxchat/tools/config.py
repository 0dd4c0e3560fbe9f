"""`[mcp.servers.NAME]` tables of config.toml, checked into `ServerConfig`s.

[mcp.servers.time]
command = "mcp-server-time"
args = ["--local-timezone", "Europe/Paris"]
auto_approve = ["get_current_time"]

[mcp.servers.search]
url = "http://127.0.0.1:8931/mcp"
headers = { Authorization = "Bearer …" }
enabled = false
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_KEYS = ("command", "args", "env", "url", "headers", "enabled", "auto_approve")


class McpConfigError(ValueError):
    """A bad `[mcp]` table: one line naming the key and the fix (without the file)."""


@dataclass(frozen=True)
class ServerConfig:
    """One MCP server as configured.

    Attributes:
        name: The table's name (`[mcp.servers.NAME]`).
        command: The program started for stdio ("" for an HTTP server).
        args: Its arguments.
        env: Environment variables set for it (over the user's own).
        url: A streamable-HTTP endpoint ("" for a stdio server).
        headers: HTTP headers sent to it.
        enabled: False keeps it configured but off.
        auto_approve: Tools run without asking.
    """

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    enabled: bool = True
    auto_approve: frozenset[str] = frozenset()

    @property
    def transport(self) -> str:
        """ "stdio" or "http"."""
        return "http" if self.url else "stdio"

    @property
    def where(self) -> str:
        """The command line or the URL, for listings."""
        return self.url or " ".join((self.command, *self.args))


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise McpConfigError(f"'{key}' must be an array of strings")
    return tuple(value)


def _table(value: Any, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise McpConfigError(f"'{key}' must be a table of strings, e.g. {{ KEY = \"value\" }}")
    return tuple((str(k), v) for k, v in value.items())


def server_config(name: str, table: Any) -> ServerConfig:
    """One `[mcp.servers.NAME]` table checked.

    Raises:
        McpConfigError: A bad name, key or value.
    """
    where = f"[mcp.servers.{name}]"
    if not _NAME.match(name):
        raise McpConfigError(f"{where}: a server name is letters, digits, '-' or '_'")
    if not isinstance(table, Mapping):
        raise McpConfigError(f"{where} must be a table with 'command' or 'url'")
    for key in table:
        if key not in _KEYS:
            raise McpConfigError(f"{where}: unknown key '{key}' (known: {', '.join(_KEYS)})")
    command, url = table.get("command", ""), table.get("url", "")
    if not isinstance(command, str) or not isinstance(url, str):
        raise McpConfigError(f"{where}: 'command' and 'url' must be strings")
    if bool(command.strip()) == bool(url.strip()):
        raise McpConfigError(f"{where}: give either 'command' (stdio) or 'url' (HTTP)")
    if url and not url.startswith(("http://", "https://")):
        raise McpConfigError(f"{where}: 'url' must start with http:// or https://")
    if url and ("args" in table or "env" in table):
        raise McpConfigError(f"{where}: 'args' and 'env' are for 'command' servers")
    if command and "headers" in table:
        raise McpConfigError(f"{where}: 'headers' are for 'url' servers")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise McpConfigError(f"{where}: 'enabled' must be true or false")
    try:
        return ServerConfig(
            name=name,
            command=command.strip(),
            args=_strings(table.get("args", []), "args"),
            env=_table(table.get("env", {}), "env"),
            url=url.strip(),
            headers=_table(table.get("headers", {}), "headers"),
            enabled=enabled,
            auto_approve=frozenset(_strings(table.get("auto_approve", []), "auto_approve")),
        )
    except McpConfigError as error:
        raise McpConfigError(f"{where}: {error}") from None


def parse_mcp(table: Any) -> tuple[ServerConfig, ...]:
    """The servers of the config file's `[mcp]` table (`{}` when there is none).

    Raises:
        McpConfigError: A bad table.
    """
    if not isinstance(table, Mapping):
        raise McpConfigError("'mcp' must be a table: [mcp.servers.NAME]")
    for key in table:
        if key != "servers":
            raise McpConfigError(f"[mcp]: unknown key '{key}'; servers go in [mcp.servers.NAME]")
    servers = table.get("servers", {})
    if not isinstance(servers, Mapping):
        raise McpConfigError("[mcp.servers] must hold tables: [mcp.servers.NAME]")
    return tuple(server_config(name, value) for name, value in servers.items())


__all__ = ["McpConfigError", "ServerConfig", "parse_mcp", "server_config"]

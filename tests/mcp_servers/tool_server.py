"""A stdio MCP server for the tests, written with the SDK's FastMCP (`MCPServer` in mcp 2).

    python tests/mcp_servers/tool_server.py [--crash-on-start] [--slow-start SECONDS]
                                            [--http PORT]  (streamable HTTP at /mcp)

Tools: `add(a, b)`, `echo(text)`, `lines(count)` (a long result), `sleep(seconds)` (for
timeouts and Esc), `crash()` (the process dies mid-call), `env(name)` (what it was given).
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("testtools")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two whole numbers."""
    return str(a + b)


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return text


@server.tool()
def lines(count: int) -> str:
    """Write `count` numbered lines."""
    return "\n".join(f"line {n}" for n in range(1, count + 1))


@server.tool()
def sleep(seconds: float) -> str:
    """Wait, then say so."""
    time.sleep(seconds)
    return f"slept {seconds:g} s"


@server.tool()
def crash() -> str:
    """Kill the server mid-call."""
    print("testtools: crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
def env(name: str) -> str:
    """The value of environment variable `name` ("unset" when it is not set)."""
    return os.environ.get(name, "unset")


if __name__ == "__main__":
    if "--crash-on-start" in sys.argv:
        print("testtools: cannot open the database", file=sys.stderr, flush=True)
        sys.exit(1)
    if "--slow-start" in sys.argv:
        time.sleep(float(sys.argv[sys.argv.index("--slow-start") + 1]))
    if "--http" in sys.argv:
        port = int(sys.argv[sys.argv.index("--http") + 1])
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run()

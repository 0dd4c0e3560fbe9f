"""MCP servers without the UI: the `[mcp]` config, the client (stdio and streamable HTTP,
against the FastMCP server in tests/mcp_servers), the toolbox and `mlxchat mcp list`."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlxchat.config import ConfigError, load_settings
from mlxchat.tools.config import ServerConfig
from mlxchat.tools.server import McpServer
from mlxchat.tools.toolbox import Toolbox, ToolChoices

SERVER = str(Path(__file__).parent / "mcp_servers" / "tool_server.py")


def stdio(name: str = "test", **changes: object) -> ServerConfig:
    return ServerConfig(name, command=sys.executable, args=(SERVER,), **changes)  # type: ignore[arg-type]


def test_config_reads_servers(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "temp = 0.5\nmax_tool_steps = 3\ntool_timeout = 2.5\n"
        '[mcp.servers.time]\ncommand = "mcp-server-time"\nargs = ["--local-timezone", "UTC"]\n'
        'env = { TZ = "UTC" }\nauto_approve = ["get_current_time"]\n'
        '[mcp.servers.web]\nurl = "http://127.0.0.1:9/mcp"\n'
        'headers = { Authorization = "Bearer x" }\nenabled = false\n'
    )
    settings = load_settings(path)
    assert (settings.temp, settings.max_tool_steps, settings.tool_timeout) == (0.5, 3, 2.5)
    time_server, web = settings.mcp_servers
    assert time_server == ServerConfig(
        "time",
        command="mcp-server-time",
        args=("--local-timezone", "UTC"),
        env=(("TZ", "UTC"),),
        auto_approve=frozenset({"get_current_time"}),
    )
    assert (web.transport, web.url, web.headers, web.enabled) == (
        "http",
        "http://127.0.0.1:9/mcp",
        (("Authorization", "Bearer x"),),
        False,
    )


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[mcp.servers.x]\nargs = []\n", "[mcp.servers.x]: give either 'command' (stdio) or 'url'"),
        ('[mcp.servers.x]\ncommand = "a"\nurl = "http://h/"\n', "give either 'command'"),
        ('[mcp.servers.x]\ncommand = "a"\nargs = "b"\n', "'args' must be an array of strings"),
        ('[mcp.servers.x]\ncommand = "a"\nenv = { A = 1 }\n', "'env' must be a table of strings"),
        ('[mcp.servers.x]\ncommand = "a"\nautoapprove = []\n', "unknown key 'autoapprove'"),
        ('[mcp.servers.x]\nurl = "ftp://h/"\n', "'url' must start with http://"),
        ('[mcp.servers.x]\ncommand = "a"\nenabled = "no"\n', "'enabled' must be true or false"),
        ("[mcp]\nserver = 1\n", "[mcp]: unknown key 'server'"),
        ("max_tool_steps = 0\n", "'max_tool_steps' must be a whole number from 1 to 100"),
        ("tool_timeout = 0\n", "'tool_timeout' must be a number > 0"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, toml: str, needle: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "\n" not in message and needle in message and str(path) in message


async def test_stdio_server_lists_and_calls_its_tools() -> None:
    server = McpServer(stdio(env=(("MLXCHAT_TOOL_SECRET", "from-config"),)), timeout=20)
    try:
        server.start()
        assert server.state == "starting"
        assert await server.wait_ready(90), server.error
        names = [tool.name for tool in server.tools]
        assert names == ["add", "echo", "lines", "sleep", "crash", "env"]
        assert server.tools[0].schema["required"] == ["a", "b"]
        assert (await server.call("add", {"a": 2, "b": 40})).text == "42"
        # a server's environment: its config entry over the user's own
        assert (await server.call("env", {"name": "MLXCHAT_TOOL_SECRET"})).text == "from-config"
        unknown = await server.call("nope", {})
        assert unknown.is_error and "nope" in unknown.text
    finally:
        await server.close()


async def test_a_call_cancelled_leaves_the_server_usable() -> None:
    server = McpServer(stdio(), timeout=20)
    try:
        server.start()
        assert await server.wait_ready(90)
        call = asyncio.create_task(server.call("sleep", {"seconds": 30}))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert time.monotonic() - started < 2
        assert (await server.call("echo", {"text": "still here"})).text == "still here"
    finally:
        await server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_streamable_http_server() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, SERVER, "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.2)
        config = ServerConfig("web", url=f"http://127.0.0.1:{port}/mcp", headers=(("X-Test", "1"),))
        server = McpServer(config, timeout=20)
        server.start()
        try:
            assert await server.wait_ready(60), server.error
            assert (await server.call("add", {"a": 1, "b": 2})).text == "3"
        finally:
            await server.close()
    finally:
        process.terminate()
        process.wait(10)


async def test_toolbox_names_options_and_approval() -> None:
    one, two = stdio("one", auto_approve=frozenset({"echo"})), stdio("two")
    toolbox = Toolbox([one, two, ServerConfig("off", command="x", enabled=False)], timeout=20)
    try:
        assert toolbox.start() is None
        await toolbox.wait_ready(90)
        assert toolbox.servers["off"].state == "off"
        names = [name for name, _ in toolbox.tools()]
        assert "one_add" in names and "two_add" in names  # the same name on two servers
        choices = ToolChoices(servers_off={"two"})
        options = toolbox.request_options(choices)
        assert options is not None
        offered = [tool["function"]["name"] for tool in options.tools]
        assert offered == ["add", "echo", "lines", "sleep", "crash", "env"]
        echo = toolbox.find("echo", choices)
        add = toolbox.find("add", choices)
        assert echo is not None and add is not None
        assert not toolbox.needs_approval(echo, choices)  # auto_approve
        assert toolbox.needs_approval(add, choices)  # nothing runs unasked by default
        choices.always.add("one.add")
        assert not toolbox.needs_approval(add, choices)
        choices.tools_off.add("one.add")
        assert toolbox.find("add", choices) is None
        assert toolbox.request_options(ToolChoices(servers_off={"one", "two"})) is None
    finally:
        await toolbox.close()


def test_mcp_list_command(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        f'[mcp.servers.test]\ncommand = "{sys.executable}"\nargs = ["{SERVER}"]\n'
        '[mcp.servers.off]\ncommand = "x"\nenabled = false\n'
        '[mcp.servers.broken]\ncommand = "no-such-mcp-server-here"\n'
    )
    env = {**os.environ, "MLXCHAT_CONFIG_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "mlxchat", "mcp", "list"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("test  ready, 6 tools  (stdio: ")
    assert lines[1] == "  add  Add two whole numbers."
    assert "off  off (enabled = false)  (stdio: x)" in lines
    assert (
        "broken  failed: cannot start 'no-such-mcp-server-here': No such file or directory"
        "  (stdio: no-such-mcp-server-here)"
    ) in lines
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_mcp_list_bad_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[mcp.servers.x]\n")
    env = {**os.environ, "MLXCHAT_CONFIG_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "mlxchat", "mcp", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "give either 'command'" in proc.stderr


def test_export_writes_the_calls_and_results(tmp_path: Path) -> None:
    from mlxchat.engine.types import ToolCall
    from mlxchat.store.history import History

    with History.open(tmp_path / "history.sqlite3") as history:
        chat = history.new_conversation(model="m")
        history.add_message(chat, "user", "What time is it?")
        asked = ToolCall("c1", "get_current_time", '{"timezone": "UTC"}')
        history.add_message(chat, "assistant", "", tool_calls=(asked,))
        history.add_message(
            chat, "tool", '{"datetime": "12:00"}', tool_call_id="c1", tool_name="get_current_time"
        )
        history.add_message(chat, "assistant", "It is noon.")
        text = history.export_markdown(chat)
    assert (
        '## Assistant\n\n**Tool call** `get_current_time`\n\n```json\n{"timezone": "UTC"}\n```'
        in text
    )
    assert '## Tool result (get_current_time)\n\n{"datetime": "12:00"}\n' in text
    assert text.rstrip().endswith("It is noon.")

"""One MCP server: started with the official `mcp` SDK, its tools listed, its tools called.

The connection lives in a task of its own (the SDK's transports and session are context
managers that must be entered and left in the same task); calls are made from the caller's
task, so cancelling the caller (Esc) cancels the call. Nothing here raises at the caller:
a server that cannot start, crashes or times out gives a `ToolResult` with `is_error` and
a one-line `error` on the server.

    server = McpServer(config, timeout=60)
    server.start()
    await server.wait_ready()
    result = await server.call("get_current_time", {"timezone": "UTC"})
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from mlxchat.tools.config import ServerConfig

State = Literal["off", "starting", "ready", "failed"]

START_TIMEOUT = 60.0
"""The least time a server is given to start (a Python server may take seconds to import)."""

INSTALL_HINT = "MCP servers need the `mcp` package: pip install 'mlxchat[tools]'"


@dataclass(frozen=True)
class ToolSpec:
    """A tool a server offers.

    Attributes:
        server: The server's name.
        name: The tool's name on its server.
        description: What it does, as the server says.
        schema: The JSON schema of its arguments.
    """

    server: str
    name: str
    description: str = ""
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True)
class ToolResult:
    """What a call gave: its text (sent back to the model) and whether it failed."""

    text: str
    is_error: bool = False


def result_text(result: Any) -> str:
    """The text of an SDK `CallToolResult`: its text blocks, else its structured content."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        text = getattr(block, "text", None)
        if isinstance(text, str):
            parts.append(text)
        else:
            kind = getattr(block, "type", "content")
            parts.append(f"[{kind} content not shown]")
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False, indent=2))
    return "\n".join(parts)


def describe(error: BaseException) -> str:
    """One line for an error (an exception group: its first leaf)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, FileNotFoundError | PermissionError):
        return f"cannot start it: {error.strerror or text}"
    if isinstance(error, TimeoutError):
        return "it did not answer in time"
    return text if len(text) < 200 else text[:199] + "…"


class McpServer:
    """One configured server and its connection.

    Attributes:
        config: Its `[mcp.servers.NAME]` table.
        timeout: Seconds each call may take (its start: at least `START_TIMEOUT`).
        state: off (disabled, or not started), starting, ready, failed.
        error: Why it failed ("" while it has not).
        tools: Its tools once ready.
    """

    def __init__(self, config: ServerConfig, timeout: float = 60.0) -> None:
        """Prepare the connection (nothing starts until `start`)."""
        self.config = config
        self.timeout = timeout
        self.state: State = "off"
        self.error = ""
        self.tools: list[ToolSpec] = []
        self._session: Any = None
        self._settled = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._errlog: IO[str] | None = None

    @property
    def name(self) -> str:
        """The server's name."""
        return self.config.name

    def start(self) -> None:
        """Start it in the background (returns at once; `wait_ready` waits)."""
        if self._task is not None:
            return
        self.state = "starting"
        self._task = asyncio.create_task(self._serve(), name=f"mcp-{self.name}")

    async def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until it is ready or failed (at most `timeout` s); whether it is ready."""
        if self.state == "off":
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._settled.wait()
        return self.state == "ready"

    async def call(self, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Call `tool` (cancelling the caller cancels the call).

        Returns:
            Its result; a failed start, a crash, a timeout or a protocol error comes back as
            an error result saying so (the server is then marked failed, except a timeout).
        """
        if self.state == "starting":
            await self.wait_ready(max(self.timeout, START_TIMEOUT))
        session = self._session
        if self.state != "ready" or session is None:
            why = self.error or ("it is off" if self.state == "off" else "it is not ready")
            return ToolResult(f"error: the tool server '{self.name}' failed: {why}", True)
        try:
            async with asyncio.timeout(self.timeout):
                result = await session.call_tool(tool, arguments)
        except TimeoutError:
            return ToolResult(
                f"error: the tool '{tool}' gave no result within {self.timeout:g} s", True
            )
        except Exception as error:
            self._fail(describe(error))
            return ToolResult(f"error: the tool server '{self.name}' failed: {self.error}", True)
        if self.state != "ready":  # it died while answering
            return ToolResult(f"error: the tool server '{self.name}' failed: {self.error}", True)
        return ToolResult(result_text(result), bool(getattr(result, "is_error", False)))

    async def close(self) -> None:
        """Stop it (its process ends); idempotent."""
        self._closing.set()
        task = self._task
        if task is not None and not task.done():
            try:
                async with asyncio.timeout(5):
                    await asyncio.shield(task)
            except (TimeoutError, Exception):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._errlog is not None:
            with contextlib.suppress(OSError):
                self._errlog.close()
            self._errlog = None

    # ----- the connection task ----------------------------------------------------------------
    def _fail(self, why: str) -> None:
        if self.state != "failed":
            last = self._last_stderr_line()
            self.state, self.error = "failed", why + (f" ({last})" if last else "")
        self._session = None
        self._settled.set()

    def _last_stderr_line(self) -> str:
        errlog = self._errlog
        if errlog is None:
            return ""
        try:
            errlog.flush()
            errlog.seek(0)
            lines = [line.strip() for line in errlog.read().splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        if not lines:
            return ""
        last = " ".join(lines[-1].split())
        return last if len(last) < 120 else last[:119] + "…"

    async def _serve(self) -> None:
        try:
            await self._connect()
        except asyncio.CancelledError:
            self._fail("stopped")
            raise
        except BaseException as error:
            why = describe(error)
            if why.startswith("cannot start it") and self.config.command:
                why = why.replace("it", f"'{self.config.command}'", 1)
            self._fail(why)
        else:
            if not self._closing.is_set():
                self._fail("the server stopped")
        finally:
            self._session = None
            self._settled.set()

    async def _connect(self) -> None:
        try:
            from mcp import ClientSession
        except ImportError:
            raise RuntimeError(INSTALL_HINT) from None
        async with contextlib.AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(await self._transport())
            session = await stack.enter_async_context(ClientSession(read, write))
            async with asyncio.timeout(max(self.timeout, START_TIMEOUT)):
                await session.initialize()
                listed = await session.list_tools()
            self.tools = [
                ToolSpec(
                    self.name,
                    tool.name,
                    tool.description or "",
                    dict(tool.input_schema or {"type": "object"}),
                )
                for tool in listed.tools
            ]
            self._session = session
            self.state = "ready"
            self._settled.set()
            await self._closing.wait()

    async def _transport(self) -> Any:
        config = self.config
        if config.url:
            from mcp.client.streamable_http import streamable_http_client

            http = _http_client(dict(config.headers), self.timeout)
            return streamable_http_client(config.url, http_client=http)
        from mcp.client.stdio import StdioServerParameters, stdio_client

        # its stderr goes to a file (never onto the chat's screen); its last line explains
        # a failure
        self._errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115 (closed by close())
        params = StdioServerParameters(
            command=config.command, args=list(config.args), env=dict(config.env) or None
        )
        return stdio_client(params, errlog=self._errlog)


def _http_client(headers: dict[str, str], timeout: float) -> Any:
    """An HTTP client (the one the SDK uses) sending the configured headers; reads may
    wait as long as a server holds its stream open."""
    import httpx2

    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))


__all__ = ["INSTALL_HINT", "McpServer", "State", "ToolResult", "ToolSpec", "describe"]

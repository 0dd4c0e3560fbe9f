"""Real servers on loopback for the remote-engine tests: mlx-lm's, mlxchat's, a key checker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server_process(
    args: list[str], port: int, env: dict[str, str] | None = None, key: str | None = None
) -> Iterator:
    """Run `python args…` until its /health answers; yield (process, base URL); stop it."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    proc = subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    tail: deque[bytes] = deque(maxlen=50)  # read as it comes: a full pipe would stop the
    reader = threading.Thread(target=tail.extend, args=(proc.stderr,), daemon=True)
    reader.start()  # server at its next log line (one per request)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                reader.join(5)
                raise RuntimeError(f"server exited: {b''.join(tail).decode()[-2000:]}")
            try:
                if (
                    httpx.get(
                        f"http://127.0.0.1:{port}/health", headers=headers, timeout=2
                    ).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in time")
            time.sleep(0.5)
        yield proc, f"http://127.0.0.1:{port}/v1"
    finally:
        proc.kill()
        proc.wait()


@contextmanager
def mlx_lm_server(model_dir: Path, hf_home: Path) -> Iterator:
    """mlx-lm's own `mlx_lm.server` on `model_dir` (its /v1/models needs an HF cache dir)."""
    port = free_port()
    args = ["-m", "mlx_lm", "server", "--model", str(model_dir)]
    with server_process(
        [*args, "--host", "127.0.0.1", "--port", str(port)], port, {"HF_HOME": str(hf_home)}
    ) as running:
        yield running


class _KeyHandler(BaseHTTPRequestHandler):
    """Answers 401 with OpenAI's error envelope unless the bearer key is right."""

    key = "right-key"

    def _reply(self) -> None:
        ok = self.headers.get("Authorization") == f"Bearer {self.key}"
        body = (
            {"object": "list", "data": [{"id": "m"}]}
            if ok
            else {
                "error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}
            }
        )
        data = json.dumps(body).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _reply

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def key_server() -> Iterator[str]:
    """A tiny OpenAI-style server that checks the API key; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


class _LexiconHandler(BaseHTTPRequestHandler):
    """Streams a word-for-word "translation" of a wait-k completion prompt.

    Target word j is ``T-<source word j>``. Each request streams the next target word and
    then one more (a look-ahead the client must drop); with no source word left to
    translate it ends the answer at once (``finish_reason: stop``).
    """

    requests: list[str] = []

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": "lexicon"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["prompt"]
        self.requests.append(prompt)
        source_line, target_line = prompt.splitlines()[-2:]
        source = source_line.split(":", 1)[1].split()
        written = len(target_line.split(":", 1)[1].split())
        pieces = [f" T-{word}" for word in source[written : written + 2]]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in pieces:
            self._event({"choices": [{"index": 0, "text": piece, "finish_reason": None}]})
        reason = "length" if pieces else "stop"
        self._event({"choices": [{"index": 0, "text": "", "finish_reason": reason}]})
        self._event({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}})
        self.wfile.write(b"data: [DONE]\n\n")

    def _event(self, data: dict) -> None:
        self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def _json(self, data: dict) -> None:
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def lexicon_server() -> Iterator[tuple[str, list[str]]]:
    """The scripted translation server; yields its base URL and the prompts it received."""
    _LexiconHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LexiconHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", _LexiconHandler.requests
    finally:
        server.shutdown()
        server.server_close()

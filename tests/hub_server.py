"""A Hugging Face Hub-compatible HTTP endpoint on a loopback port, for the real client.

It answers what `huggingface_hub.snapshot_download` and `hf_hub_download` ask (2.x):
`GET /api/models/O/N/revision/R`, `GET /api/models/O/N/tree/SHA?recursive=true`, and
`HEAD`/`GET /O/N/resolve/SHA/FILE` with `X-Repo-Commit`, a quoted `ETag`, `X-Linked-Etag` and
`X-Linked-Size` for LFS files (`*.safetensors`, `*.gguf`, `*.bin`), `Content-Length`,
`Accept-Ranges` and `Range` requests. A gated repo answers 403 `X-Error-Code: GatedRepo`
without `Authorization: Bearer <token>`; an unknown one 404 `X-Error-Code: RepoNotFound`.
`bytes_per_second` slows the bodies down; `cut_once[file] = n` drops the connection after
`n` bytes of the first GET of that file. Every request is kept in `requests`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin")


@dataclass
class Repo:
    """A model repo: file path -> bytes."""

    files: dict[str, bytes]
    gated: bool = False
    sha: str = ""

    def __post_init__(self) -> None:
        if not self.sha:
            digest = hashlib.sha1()
            for name in sorted(self.files):
                digest.update(name.encode() + hashlib.sha1(self.files[name]).digest())
            self.sha = digest.hexdigest()

    @classmethod
    def from_dir(cls, path: Path, **kwargs: Any) -> Repo:
        """The files of a model directory."""
        files = {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.is_file()}
        return cls(files, **kwargs)


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Request:
    """One request the server saw."""

    method: str
    path: str
    headers: dict[str, str]
    sent: int = 0
    """Body bytes written (file GETs)."""


@dataclass
class HubServer:
    """The endpoint; `url` is what HF_ENDPOINT takes. Use as a context manager."""

    repos: dict[str, Repo]
    token: str = "hf_good_token"
    bytes_per_second: float = 0.0
    cut_once: dict[str, int] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def __enter__(self) -> HubServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_HEAD(self) -> None:
                server._handle(self, body=False)

            def do_GET(self) -> None:
                server._handle(self, body=True)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def gets(self, file: str) -> list[Request]:
        """The GET requests for one file."""
        return [r for r in self.requests if r.method == "GET" and r.path.endswith("/" + file)]

    # ----- handling ----------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(h.path).path)
        request = Request(h.command, path, dict(h.headers.items()))
        self.requests.append(request)
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6:
            repo_id, action, rev = "/".join(parts[2:4]), parts[4], parts[5]
            repo = self._access(h, repo_id)
            if repo is None:
                return
            if action == "revision":
                siblings = [{"rfilename": name} for name in sorted(repo.files)]
                info = {"id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": False}
                info |= {"gated": "auto" if repo.gated else False, "siblings": siblings}
                return self._json(h, info)
            if action == "tree" and rev in (repo.sha, "main"):
                tree = [self._tree_entry(n, d) for n, d in sorted(repo.files.items())]
                return self._json(h, tree)
            return self._error(h, 404, "RevisionNotFound", "Invalid rev id")
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id, rev, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            repo = self._access(h, repo_id)
            if repo is None:
                return
            if rev not in (repo.sha, "main") or name not in repo.files:
                return self._error(h, 404, "EntryNotFound", "Entry not found")
            return self._file(h, repo, name, request)
        self._error(h, 404, "", "Not found")

    def _access(self, h: BaseHTTPRequestHandler, repo_id: str) -> Repo | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(h, 404, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and h.headers.get("Authorization") != f"Bearer {self.token}":
            self._error(h, 403, "GatedRepo", "Access to this model is restricted")
            return None
        return repo

    def _tree_entry(self, name: str, data: bytes) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": git_blob_id(data), "size": len(data)}
        entry["path"] = name
        if name.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            entry["lfs"] = {"oid": sha, "size": len(data), "pointerSize": 134}
        return entry

    def _file(self, h: BaseHTTPRequestHandler, repo: Repo, name: str, request: Request) -> None:
        body = request.method == "GET"
        data = repo.files[name]
        start = 0
        if body and (spec := h.headers.get("Range", "")).startswith("bytes="):
            start = int(spec.removeprefix("bytes=").split("-")[0] or 0)
        h.send_response(206 if start else 200)
        h.send_header("X-Repo-Commit", repo.sha)
        h.send_header("Accept-Ranges", "bytes")
        if name.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            h.send_header("ETag", f'"{sha}"')
            h.send_header("X-Linked-Etag", f'"{sha}"')
            h.send_header("X-Linked-Size", str(len(data)))
        else:
            h.send_header("ETag", f'"{git_blob_id(data)}"')
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.send_header("Content-Length", str(len(data) - start))
        h.end_headers()
        if not body:
            return
        cut = self.cut_once.pop(name, None)
        self._send(h, data[start:], cut, request)

    def _send(self, h: BaseHTTPRequestHandler, data: bytes, cut: int | None, r: Request) -> None:
        piece = 64 * 1024
        sent = 0
        began = time.monotonic()
        while sent < len(data):
            if cut is not None and sent >= cut:
                h.close_connection = True
                h.connection.shutdown(2)  # the connection drops mid-file
                return
            end = min(len(data), sent + piece, cut if cut is not None and cut > sent else len(data))
            h.wfile.write(data[sent:end])
            r.sent += end - sent
            sent = end
            if self.bytes_per_second:
                ahead = began + sent / self.bytes_per_second - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)

    def _json(self, h: BaseHTTPRequestHandler, value: Any) -> None:
        data = json.dumps(value).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command == "GET":
            h.wfile.write(data)

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        data = json.dumps({"error": message}).encode()
        h.send_response(status)
        if code:
            h.send_header("X-Error-Code", code)
            h.send_header("X-Error-Message", message)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command == "GET":
            h.wfile.write(data)


def model_repos(model_dir: Path, big_weights: bytes) -> dict[str, Repo]:
    """The repos the tests use: `org/tiny` (an MLX model), `org/gated` (the same, gated),
    `org/torch` (PyTorch weights only) and `org/big` (a config and a large weights file)."""
    config = (model_dir / "config.json").read_bytes()
    return {
        "org/tiny": Repo.from_dir(model_dir),
        "org/gated": Repo.from_dir(model_dir, gated=True),
        "org/torch": Repo({"config.json": config, "pytorch_model.bin": b"\0" * 1000}),
        "org/big": Repo({"config.json": config, "model.safetensors": big_weights}),
    }

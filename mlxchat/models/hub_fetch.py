"""Resumable downloads of a repo's large (LFS) files straight into the Hugging Face cache.

huggingface_hub 2.x writes each download to a process-unique temporary file and deletes it
when the download fails (`file_download._download_to_tmp_and_move`), so a Ctrl+C or a killed
process starts the file over next time. Here each large file is written to
`blobs/<sha256>.incomplete`, kept across runs and continued with a `Range` request (also
after a dropped connection, a few times), checked against its SHA-256 and renamed to
`blobs/<sha256>`, the blob `snapshot_download` then only links into the snapshot.
"""

from __future__ import annotations

import fcntl
import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlxchat.engine.types import ModelLoadError

RETRIES = 5
"""Tries of one file after a dropped connection, each resuming where the last stopped."""

_TIMEOUT = 30.0


def fetch_blob(
    url: str,
    blob: Path,
    size: int,
    sha256: str,
    headers: dict[str, str],
    on_bytes: Callable[[int], None],
) -> int:
    """Download `url` to `blob` (resuming `blob.incomplete`); return the bytes received.

    Args:
        url: The file's `resolve` URL (redirects are followed; the token is not sent on).
        blob: Where the whole file goes.
        size: Its size in bytes.
        sha256: Its SHA-256 (the LFS oid), checked before the file is put in place.
        headers: Request headers (authorization).
        on_bytes: Called with each piece's length (it may raise to cancel; the part stays).

    Raises:
        ModelLoadError: The file came back wrong (size or checksum); the part is removed.
        HTTPError: The server failed more than `RETRIES` times in a row (httpx's types, from
            the HTTP library huggingface_hub uses: httpx2 in 2.x, httpx in 1.x).
    """
    from huggingface_hub.utils import get_session

    session = get_session()  # huggingface_hub's own client: its proxies, its settings
    library = sys.modules[type(session).__module__.split(".")[0]]

    blob.parent.mkdir(parents=True, exist_ok=True)
    with _only_writer(blob):
        if blob.is_file():  # another download of it finished meanwhile
            return 0
        return _fetch(session, library, url, blob, size, sha256, headers, on_bytes)


@contextmanager
def _only_writer(blob: Path) -> Iterator[None]:
    """One writer per blob, across threads and processes (a lock file in the cache's
    `.locks/<repo folder>/`): a second download of the same file waits, then continues it."""
    locks = blob.parent.parent.parent / ".locks" / blob.parent.parent.name
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{blob.name}.mlxchat.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fetch(
    session: Any,
    library: Any,
    url: str,
    blob: Path,
    size: int,
    sha256: str,
    headers: dict[str, str],
    on_bytes: Callable[[int], None],
) -> int:
    """`fetch_blob` once the lock is held."""
    part = blob.with_name(blob.name + ".incomplete")
    received = 0
    failures = 0
    digest = _sha256_of(part)  # what a previous run left, hashed once; then as it arrives
    while True:
        start = part.stat().st_size if part.exists() else 0
        if start >= size:
            break
        asked = {**headers, "Range": f"bytes={start}-"} if start else dict(headers)
        try:
            with session.stream(
                "GET", url, headers=asked, follow_redirects=True, timeout=_TIMEOUT
            ) as response:
                response.raise_for_status()
                if start and response.status_code != 206:  # the server sends it all again
                    digest, start = hashlib.sha256(), 0
                with open(part, "ab" if start else "wb") as out:
                    for piece in response.iter_bytes():
                        out.write(piece)
                        digest.update(piece)
                        received += len(piece)
                        failures = 0
                        on_bytes(len(piece))
        except library.TransportError:  # refused, reset, cut short, timed out
            failures += 1
            if failures > RETRIES:
                raise
            time.sleep(min(1.0 * failures, 5.0))
    if part.stat().st_size != size or digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise ModelLoadError(f"{blob.name}: the download does not match its checksum; try again")
    part.replace(blob)
    return received


def resolve_url(endpoint: str | None, repo: str, commit: str, path: str) -> str:
    """The URL of one file of a repo at a commit."""
    base = (endpoint or "https://huggingface.co").rstrip("/")
    return f"{base}/{repo}/resolve/{commit}/{quote(path)}"


def _sha256_of(path: Path) -> hashlib._Hash:
    """A running SHA-256 of what `path` holds (empty when it does not exist)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        pass
    return digest

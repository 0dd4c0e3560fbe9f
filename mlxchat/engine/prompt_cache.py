"""The prompt cache with many entries: each conversation finds its own prefix.

One longest-common-prefix session served every request of `mlxchat serve`: two clients
taking turns threw each other's cache away at every request. `PromptCache` keeps several
`CacheSession`s, bounded by bytes and evicted least recently used:

- a request names a session (the chat's conversations) or not (the server's requests);
- an unnamed request takes the entry sharing the longest prefix with its prompt. When the
  prompt goes on from (almost) the whole entry, the entry is taken over and extended; when
  it leaves the entry early (another conversation with the same system prompt), the shared
  part is copied into a new entry and the old one stays for its own conversation; a prompt
  sharing only a few tokens (a chat template's head) starts an entry of its own;
- after each request, entries are evicted, oldest use first, until the cache fits its
  budget (the entry just used is kept even when it alone is larger);
- with a disk tier (`disk_cache.DiskCache`), each answer's entry is written to disk once
  no other answer is being written (`finished`, `persist`), when it is evicted, and at exit
  (`flush`); a prompt sharing a longer prefix with a file than with any entry in RAM starts
  from that file (a resumed chat, a restarted server).

Engine thread only.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from itertools import count
from typing import Any

from mlxchat.engine.disk_cache import DiskCache, DiskReport
from mlxchat.engine.session import TAKE_OVER_SLACK, CacheSession, common_prefix

log = logging.getLogger("mlxchat.engine")

MIN_SHARED = 16
"""Fewer shared tokens than this (a chat template's head) are not worth copying."""


@dataclass(frozen=True)
class CacheReport:
    """What the cache holds now (for `/health` and logs)."""

    entries: int
    bytes: int
    budget: int
    disk_entries: int = 0
    disk_bytes: int = 0
    disk_budget: int = 0


def cache_bytes(session: CacheSession) -> int:
    """Bytes of the key/value arrays a session holds."""
    return sum(getattr(layer, "nbytes", 0) for layer in session.cache)


class PromptCache:
    """KV-cache entries by session name, bounded by `budget` bytes, least recently used out.

    Args:
        model: The model the caches are for.
        budget: The most bytes the entries may hold together.
        copies: Copy a shared prefix into a new entry; off, a request takes over the entry
            sharing the longest prefix with it (the ranks of a distributed model mirror
            each KV cache by identity and cannot follow a copy).
        disk: The disk tier under the entries (None: none).
    """

    def __init__(
        self, model: Any, budget: int, copies: bool = True, disk: DiskCache | None = None
    ) -> None:
        self.model = model
        self.budget = budget
        self.copies = copies
        self.disk = disk
        self._entries: OrderedDict[str, CacheSession] = OrderedDict()
        self._names = count(1)
        self._dirty: dict[int, CacheSession] = {}

    def session(self, name: str | None, prompt: list[int]) -> CacheSession:
        """The entry to run `prompt` on: the named one (new if unknown), or for no name the
        entry sharing the longest prefix with `prompt` (taken over, or its shared part
        copied into a new entry; see the module docstring)."""
        if name is not None:
            entry = self._entries.get(name)
            shared = common_prefix(entry.ids, prompt) if entry is not None else 0
            entry = self._from_disk(prompt, shared) or entry or CacheSession(self.model)
            return self._use(name, entry)
        best, shared = None, 0
        for key, entry in self._entries.items():
            if key.startswith("~") and (n := common_prefix(entry.ids, prompt)) > shared:
                best, shared = key, n
        if self.copies and (loaded := self._from_disk(prompt, shared)) is not None:
            return self._use(self._anonymous(), loaded)
        if best is not None and not self.copies:
            return self._use(best, self._entries[best])
        if best is None or shared < MIN_SHARED:
            return self._use(self._anonymous(), CacheSession(self.model))
        entry = self._entries[best]
        left = len(entry.ids) - shared
        if left <= min(TAKE_OVER_SLACK, len(entry.ids) // 4) or not _copyable(entry):
            return self._use(best, entry)
        return self._use(self._anonymous(), _copy_prefix(entry, shared))

    def finished(self, entry: CacheSession, idle: bool = True) -> None:
        """An answer ended on `entry`: it goes to the disk tier now when nothing else is
        being answered (`idle`), else when the batch is empty (`persist`) or the entry is
        evicted, so its copy to host memory never stalls other answers."""
        if self.disk is None or not entry.ids:
            return
        self._dirty[id(entry)] = entry
        if idle:
            self.persist()

    def persist(self) -> None:
        """Hand every entry changed since it was last written to the disk tier's writer."""
        dirty, self._dirty = list(self._dirty.values()), {}
        for entry in dirty:
            if self.disk is not None and entry.ids:
                self.disk.save(entry.cache, entry.ids)

    def flush(self) -> None:
        """Write what changed and wait until the disk tier has written it (at exit)."""
        if self.disk is not None:
            self.persist()
            self.disk.flush()

    def _from_disk(self, prompt: list[int], shared: int) -> CacheSession | None:
        """A session loaded from the file sharing more of `prompt` than `shared` tokens in
        RAM (by at least MIN_SHARED), or None."""
        if self.disk is None:
            return None
        file, found = self.disk.lookup(prompt)
        if file is None or found < max(shared + MIN_SHARED, MIN_SHARED):
            return None
        loaded = self.disk.load(file)
        if loaded is None:
            return None
        entry = CacheSession(self.model)
        entry.cache, entry.ids = loaded
        log.info(
            "prompt cache: %d tokens loaded from disk in %.2f s",
            len(entry.ids),
            self.disk.load_seconds,
        )
        return entry

    def drop(self, name: str) -> None:
        """Forget a named entry (e.g. a chat cleared)."""
        self._entries.pop(name, None)

    def fit(self) -> None:
        """Evict least recently used entries until the cache fits its budget (the most
        recently used one stays)."""
        while len(self._entries) > 1 and self.report().bytes > self.budget:
            name, entry = self._entries.popitem(last=False)
            if self._dirty.pop(id(entry), None) is not None and self.disk is not None:
                self.disk.save(entry.cache, entry.ids)  # leaving RAM: to disk first
            log.info(
                "prompt cache: evicted %s (%d tokens); %s",
                name,
                len(entry.ids),
                self.describe(),
            )

    def report(self) -> CacheReport:
        """Entries and bytes now, and the budget."""
        used = sum(cache_bytes(entry) for entry in self._entries.values())
        disk = self.disk.report() if self.disk is not None else DiskReport(0, 0, 0)
        return CacheReport(
            len(self._entries), used, self.budget, disk.entries, disk.bytes, disk.budget
        )

    def describe(self) -> str:
        """One line for logs: "3 entries, 41.2 MB of 2048 MB"."""
        report = self.report()
        entries = f"{report.entries} entr{'y' if report.entries == 1 else 'ies'}"
        return f"{entries}, {report.bytes / 1e6:.1f} MB of {report.budget / 1e6:.0f} MB"

    def _use(self, name: str, entry: CacheSession) -> CacheSession:
        self._entries[name] = entry
        self._entries.move_to_end(name)
        return entry

    def _anonymous(self) -> str:
        return f"~{next(self._names)}"


def _copyable(entry: CacheSession) -> bool:
    """Whether every layer is a plain KV cache (whose prefix can be sliced off)."""
    from mlx_lm.models.cache import KVCache

    return all(type(layer) is KVCache for layer in entry.cache)


def _copy_prefix(entry: CacheSession, length: int) -> CacheSession:
    """A new session holding the first `length` tokens of `entry` (arrays sliced, not
    shared for writing: the first write past them allocates anew)."""
    copy = CacheSession(entry.model)
    for source, target in zip(entry.cache, copy.cache, strict=True):
        if source.keys is not None and length:
            target.state = (
                source.keys[..., :length, :],
                source.values[..., :length, :],
                length,
            )
    copy.ids = entry.ids[:length]
    return copy

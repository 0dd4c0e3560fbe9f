"""The prompt cache's disk tier: a saved chat resumed by a new process, side by side.

1. A chat of about `--tokens` tokens is answered once by an engine with the disk tier (the
   cache it leaves is written when the engine closes): bytes per token, time to save.
2. A new engine with the disk tier, and one without, each answer one more question on that
   chat: time to first token, tokens taken from the cache, the greedy answers compared.
3. As `mlxchat serve` keeps its cache (unnamed requests): the second turn of a
   conversation on the engine that answered the first (RAM), against a new engine started
   between the two turns (disk).

    python benchmarks/disk_cache.py [MODEL] [--tokens 2000]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from mlxchat.engine import cpu  # preloads OpenBLAS when there is one (before MLX)
from mlxchat.engine.engine import Engine
from mlxchat.engine.types import Message, Result, SamplingParams

ANSWER = SamplingParams(max_tokens=16)
PARAGRAPH = (
    "The river runs past the old mill, where the miller's children once watched the "
    "boats carry grain to the town. In spring the water rises and the meadows flood; in "
    "summer the herons stand in the shallows, waiting for fish. "
)


def chat(tokens: int) -> list[Message]:
    """A conversation of about `tokens` tokens (four words a sentence, roughly)."""
    messages = [Message("system", "You are a helpful assistant.")]
    per_turn = PARAGRAPH * 3
    while sum(len(m.content) for m in messages) / 4.3 < tokens:
        messages.append(Message("user", f"Tell me more. {per_turn}"))
        messages.append(Message("assistant", f"Certainly. {per_turn}"))
    return messages


def engine(model: str, folder: Path | None) -> Engine:
    made = Engine(
        prompt_cache_disk_bytes=4 * 10**9 if folder else 0,
        prompt_cache_dir=folder,
    )
    made.load_sync(model)
    return made


def ask(made: Engine, messages: list[Message]) -> Result:
    return made.generate_sync(messages, ANSWER)


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="demo")
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mlxchat-prompts-"))
    history = chat(args.tokens)
    question = [*history, Message("user", "In one sentence: what do the herons do?")]

    first = engine(args.model, folder)
    print(f"{platform.machine()}, {cpu.describe_cpu_path()}")
    info = first.model_info
    assert info is not None
    print(f"model {info.name} ({info.dtype}), greedy, {ANSWER.max_tokens} tokens an answer")
    saved = ask(first, history)
    loaded = first._loaded
    copy = loaded.cache.disk.copy_seconds if loaded and loaded.cache.disk else 0.0
    start = time.perf_counter()
    first.close()  # waits until the writer thread has written the cache
    flush = time.perf_counter() - start
    files = list(folder.glob("*/*.safetensors"))
    size = sum(f.stat().st_size for f in files)
    held = saved.stats.context_tokens
    print(f"chat: {held} tokens in the cache; prefill took {saved.stats.ttft:.2f} s")
    print(
        f"disk: {len(files)} file, {size / 1e6:.1f} MB, {size / held / 1e3:.1f} kB a token; "
        f"the engine thread copied it in {copy:.2f} s after the answer, the writer thread "
        f"wrote it in the background (close waited {flush:.2f} s for it)"
    )

    rows = []
    load = 0.0
    for label, where in (("disk tier on ", folder), ("disk tier off", None)):
        made = engine(args.model, where)
        try:
            rows.append((label, ask(made, question)))
            if made._loaded is not None and made._loaded.cache.disk is not None:
                load = made._loaded.cache.disk.load_seconds
        finally:
            made.close()
    (_, on), (_, off) = rows
    for label, result in rows:
        stats = result.stats
        print(
            f"resume, {label}: ttft {stats.ttft:6.2f} s, {stats.cached_tokens:5d} tokens "
            f"cached, {stats.prompt_tokens:5d} prefilled"
        )
    print(f"disk: loading the file (read, checksum, arrays) took {load:.2f} s")
    print(f"resume speed-up: {off.stats.ttft / on.stats.ttft:.1f}x (goal >= 10x)")
    print(f"same greedy answer: {on.tokens == off.tokens}")

    # as `mlxchat serve` asks (no session name): turn 2 after a restart vs without one
    turn1 = [*history[:3]] + [Message("user", "Now tell me about the mill.")]
    served = Path(tempfile.mkdtemp(prefix="mlxchat-serve-"))
    kept = engine(args.model, served)
    try:
        answer = ask(kept, turn1)
        turn2 = [*turn1, Message("assistant", answer.text), Message("user", "And the town?")]
        warm = ask(kept, turn2)
    finally:
        kept.close()
    for file in served.glob("*/*.safetensors"):
        file.unlink()
    restarted = engine(args.model, served)
    try:
        ask(restarted, turn1)
        restarted.close()  # the server stops between the two turns
        restarted.load_sync(args.model)
        after = ask(restarted, turn2)
    finally:
        restarted.close()
    print(
        f"serve, turn 2: not restarted ttft {warm.stats.ttft:.2f} s "
        f"({warm.stats.cached_tokens} cached), restarted {after.stats.ttft:.2f} s "
        f"({after.stats.cached_tokens} cached): {after.stats.ttft / warm.stats.ttft:.2f}x "
        "(goal <= 1.5x)"
    )


if __name__ == "__main__":
    main()

"""A script that ends without closing its engine exits cleanly (the engine frees its model on
its own thread at exit): the interpreter's teardown of MLX objects from the main thread
aborted such a process ("terminate called without an active exception") in about one exit
of two."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio
    from mlxchat.engine.cpu import setup_process
    setup_process()
    from mlxchat.engine.engine import Engine
    from mlxchat.engine.types import Message, SamplingParams

    engines = [Engine()]
    engines[0].load_sync("demo")

    async def ask(engine):
        async for _ in engine.stream([Message("user", "Hi")], SamplingParams(max_tokens=4)):
            pass

    for engine in engines:
        asyncio.run(ask(engine))
    print("answered")
    """
)


@pytest.mark.demo
def test_a_script_that_never_closes_its_engine_exits_cleanly() -> None:
    for _ in range(4):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
        )
        assert (done.returncode, done.stdout.strip()) == (0, "answered"), done.stderr[-500:]

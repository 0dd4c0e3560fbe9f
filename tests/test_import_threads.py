"""Heavy modules (MLX, mlx-lm, transformers) are imported on the engine thread only.

Two threads importing mlx-lm or transformers at once get a half-initialised module
("cannot import name 'AutoTokenizer'"): resumed chats came up with no model. Each scenario
runs in a fresh interpreter (nothing imported yet) with an import hook that records which
thread first imports each heavy module, then drives the real app on a real engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HOOK = textwrap.dedent(
    """
    import importlib.abc, sys, threading
    HEAVY = ("mlx", "mlx_lm", "transformers", "huggingface_hub")
    FIRST = {}

    class Recorder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HEAVY and name not in FIRST:
                FIRST[name] = threading.current_thread().name
            return None

    sys.meta_path.insert(0, Recorder())
    from mlxchat.engine.cpu import setup_process
    setup_process()
    """
)

RESUME_CHAT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from mlxchat.config import Settings
    from mlxchat.engine.engine import Engine
    from mlxchat.store.history import History
    from mlxchat.ui.app import ChatApp

    model, data = sys.argv[1], Path(sys.argv[2])
    history = History.open(data / "history.sqlite3")
    chat = history.new_conversation()
    history.add_message(chat, "user", "Hello there")
    history.add_message(chat, "assistant", "Hi! How can I help?")

    async def main():
        engine = Engine()
        app = ChatApp(engine, Settings(model=model), history, list_models=lambda: [],
                      resume="latest")
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(600):
                await pilot.pause(0.05)
                status = app.chat_screen.status
                if engine.model_info is not None and status.state != "loading" \\
                        and status.context_tokens:
                    break
            return str(status.render()), engine.model_info is not None

    status, loaded = asyncio.run(main())
    print(json.dumps({"imports": FIRST, "status": status, "loaded": loaded}))
    """
)


def run_scenario(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", HOOK + script, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("attempt", range(2))
def test_a_resumed_chat_imports_mlx_on_the_engine_thread_only(
    tiny_llama: Path, tmp_path: Path, attempt: int
) -> None:
    result = run_scenario(RESUME_CHAT, str(tiny_llama), str(tmp_path))
    assert result["loaded"], result["status"]
    assert "no model" not in result["status"]
    elsewhere = {
        name: thread for name, thread in result["imports"].items() if thread != "mlxchat-engine"
    }
    assert result["imports"], "the hook saw no heavy import"
    assert not elsewhere, f"heavy modules imported off the engine thread: {elsewhere}"

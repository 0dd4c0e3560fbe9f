"""The chat app on the scripted engine (tests/ui/fake_engine.py), for the terminal test of
tools: the real app, config, history and MCP servers, with a model that calls
`get_current_time` (the small demo model cannot call tools).

    python tests/mcp_servers/scripted_chat.py DATA_DIR [CHAT_ID]

Settings come from config.toml (MLXCHAT_CONFIG_DIR); the model is "scripted".
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: ui.fake_engine

from ui.fake_engine import FakeEngine  # noqa: E402

from mlxchat.config import load_settings  # noqa: E402
from mlxchat.engine.types import ToolCall  # noqa: E402
from mlxchat.store.history import HISTORY_FILE, History  # noqa: E402
from mlxchat.ui.app import ChatApp  # noqa: E402

ASKED = ToolCall("call-paris", "get_current_time", json.dumps({"timezone": "Europe/Paris"}))
ANSWER = ["The ", "result ", "above ", "gives ", "the ", "time ", "in ", "Paris."]


def main() -> None:
    """Run the chat until Ctrl+Q."""
    data = Path(sys.argv[1])
    resume = int(sys.argv[2]) if len(sys.argv) > 2 else None
    settings = replace(load_settings(), model="scripted")
    engine = FakeEngine(answers=[[ASKED], ANSWER], loaded="scripted", token_delay=0.02)
    history = History.open(data / HISTORY_FILE)
    try:
        ChatApp(engine, settings, history, resume=resume).run()
    finally:
        history.close()


if __name__ == "__main__":
    main()

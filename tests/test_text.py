"""The one escaping function, and the CLI lines that show stored or typed text through it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlxchat.text import sanitize

UNSAFE = "\x00\x07\x08\x0b\x0c\x1b\x7f\x85\x9b\u202a\u202b\u202c\u202d\u202e"
UNSAFE += "\u2066\u2067\u2068\u2069"


def test_controls_and_bidi_overrides_are_shown_escaped() -> None:
    assert sanitize("a\x1b[2Jb\x07\x7f\x9b") == "a\\x1b[2Jb\\x07\\x7f\\x9b"
    assert sanitize("abc\u202edef\u2066g\u2069") == "abc\\u202edef\\u2066g\\u2069"
    assert sanitize("bad byte \udc98") == "bad byte \\udc98"
    assert not any(char in sanitize(UNSAFE) for char in UNSAFE)


def test_layout_and_script_characters_are_kept() -> None:
    text = "line\n\tindented · café 中文 👩\u200d💻 \u05e9\u05dc\u05d5\u05dd\u200f!"
    assert sanitize(text) == text
    assert sanitize("one\r\ntwo\r") == "one\ntwo"


def test_one_line_places_escape_newlines_and_tabs() -> None:
    assert sanitize("a\nb\tc\r\n\x1b", one_line=True) == "a\\nb\\tc\\n\\x1b"


def test_pieces_escape_to_the_pieces_of_the_whole() -> None:
    text = "ok\x1b[31mred\r\n\u202eend\x00"
    assert "".join(sanitize(char) for char in text) == sanitize(text)


def _mlxchat(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlxchat", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.fixture
def hf_cache(tmp_path: Path) -> Path:
    """A Hugging Face cache holding one MLX model whose name has an ESC and an RTL override."""
    repo = tmp_path / "hub" / "models--org--ti\x1b[2Jny\u202elm"
    snapshot = repo / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"x")
    return tmp_path / "hub"


def test_the_model_list_shows_names_escaped(hf_cache: Path) -> None:
    proc = _mlxchat("models", env={"HF_HUB_CACHE": str(hf_cache)})
    assert proc.returncode == 0, proc.stderr
    # the NAME column is as wide as the longest name (imported GGUFs in the test cache too)
    assert re.search(r"org/ti\\x1b\[2Jny\\u202elm +hub", proc.stdout), proc.stdout
    assert "\x1b" not in proc.stdout and "\u202e" not in proc.stdout


def test_an_error_line_shows_the_typed_name_escaped() -> None:
    proc = _mlxchat("generate", "-m", "no\x1b[2Jsuch\u202emodel", "-p", "hi", env={})
    assert proc.returncode == 2
    assert proc.stderr.startswith("mlxchat: error: ")
    assert "no\\x1b[2Jsuch\\u202emodel" in proc.stderr
    assert "\x1b" not in proc.stderr and "\u202e" not in proc.stderr

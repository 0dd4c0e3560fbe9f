"""`mlxchat translate` with no model: the translate demo (gemma-3-270m from PyPI) translates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TEST_CACHE
from test_cli import mlxchat

PAIRS = Path(__file__).parent.parent / "benchmarks" / "data" / "translation_en_fr.tsv"


@pytest.mark.demo
def test_translate_with_no_model_translates(tmp_path: Path) -> None:
    rows = [ln.split("\t") for ln in PAIRS.read_text(encoding="utf-8").splitlines()]
    test = [(row[1], row[2]) for row in rows if row[0] == "test"][:8]
    source, reference = tmp_path / "talk.en.txt", tmp_path / "talk.fr.txt"
    source.write_text("\n".join(en for en, _ in test) + "\n", encoding="utf-8")
    reference.write_text("\n".join(fr for _, fr in test) + "\n", encoding="utf-8")
    proc = mlxchat(
        "translate", "--json", "-k", "3", "-i", str(source), "--reference", str(reference),
        timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    segments = [e for e in events if e["type"] == "segment"]
    assert len(segments) == 8
    assert any(w in segments[0]["translation"] for w in ("beau", "temps", "aujourd'hui"))
    assert events[-1]["quality"]["BLEU"] >= 25  # the chat demo: below 5 on these
    demo_dir = TEST_CACHE / "demo" / "gemma-3-270m"
    assert (demo_dir / "GEMMA_TERMS.html").is_file()  # its terms travel with it

"""`mlxchat translate --plain/--json` and its input checks, run as a real subprocess;
`LiveTranslation` on the engine thread."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, mlxchat

from mlxchat.engine.engine import Engine
from mlxchat.translate import SegmentDone, WaitKSettings, latency_metrics, stream_translate
from mlxchat.translate.live import LiveTranslation

SOURCE = "The cat is on the table near the window.\nWe are going to the beach this weekend.\n"


@pytest.fixture
def source_file(tmp_path: Path) -> Path:
    path = tmp_path / "source.txt"
    path.write_text(SOURCE)
    return path


def run_json(tiny: Path, source: Path, *extra: str) -> list[dict]:
    proc = mlxchat(
        "translate", "--json", "-m", str(tiny), "-i", str(source), "--max-new-words", "6", *extra
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_json_events_follow_wait_k(tiny_llama: Path, source_file: Path) -> None:
    events = run_json(tiny_llama, source_file, "--wait-k", "2")
    segments = [e for e in events if e["type"] == "segment"]
    assert len(segments) == 2
    for segment in segments:
        n = len(segment["source"].split())
        assert segment["delays"], "no target words"
        assert all(d == min(2 + i, n) for i, d in enumerate(segment["delays"]))
        expected = latency_metrics(segment["delays"], n)
        assert segment["metrics"] == pytest.approx(expected, abs=5e-4)
    targets = [e for e in events if e["type"] == "target" and e["segment"] == 0]
    assert [t["delay"] for t in targets] == segments[0]["delays"]
    sources = [e["word"] for e in events if e["type"] == "source" and e["segment"] == 0]
    assert " ".join(sources) == segments[0]["source"]
    summary = events[-1]
    assert summary["type"] == "summary" and summary["sentences"] == 2
    assert summary["metric_target_length"] == "hypothesis"
    assert all(t["word"] for t in events if t["type"] == "target")  # no empty word events


def test_json_floats_are_rounded(tiny_llama: Path, source_file: Path, tmp_path: Path) -> None:
    reference = tmp_path / "ref.txt"
    reference.write_text("Le chat est sur la table près de la fenêtre.\nNous allons à la plage.\n")
    # unrounded, wait-2 gives floats such as AL 2.1666666666666665 and DAL 3.0000000000000004
    events = run_json(tiny_llama, source_file, "--wait-k", "2", "--reference", str(reference))

    def decimals(value: float, digits: int) -> bool:
        return value != value or round(value, digits) == value  # nan stays nan

    for event in events:
        for value in event.get("metrics", {}).values():
            assert decimals(value, 3), event
        for key in ("time_to_first_word", "mean_word_wait"):
            if key in event:
                assert decimals(event[key], 3), event
    assert all(decimals(v, 2) for v in events[-1]["quality"].values()), events[-1]


def test_plain_prints_one_line_per_sentence(tiny_llama: Path, source_file: Path) -> None:
    proc = mlxchat(
        "translate",
        "--plain",
        "-m",
        str(tiny_llama),
        "-i",
        str(source_file),
        "--max-new-words",
        "5",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all(line.strip() for line in lines)
    events = run_json(tiny_llama, source_file, "--max-new-words", "5")
    translations = [e["translation"] for e in events if e["type"] == "segment"]
    cut = {e["segment"] for e in events if e["type"] == "target" and e["cut"]}
    from mlxchat.text import sanitize

    assert lines == [sanitize(t) + ("…" if i in cut else "") for i, t in enumerate(translations)]


def test_verbose_shows_delays_and_metrics(tiny_llama: Path, source_file: Path) -> None:
    proc = mlxchat(
        "translate",
        "--plain",
        "-v",
        "-k",
        "3",
        "-m",
        str(tiny_llama),
        "-i",
        str(source_file),
        "--max-new-words",
        "4",
    )
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.split("\n-- ")[0]
    delays = [int(d) for d in re.findall(r"\[read (\d+) source words[\],]", first)]
    assert delays and delays == [3, 4, 5, 6][: len(delays)]
    assert re.search(r"^-- AL [\d.]+  LAAL [\d.]+  AP [\d.]+  DAL [\d.]+", proc.stdout, re.M)
    assert re.search(r"^== 2 sentences: AL ", proc.stdout, re.M)
    assert "latency metrics use |Y| = hypothesis words (SimulEval)" in proc.stdout


def test_verbose_says_metrics_use_the_reference_length(
    tiny_llama: Path, source_file: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "ref.txt"
    reference.write_text("Le chat est sur la table près de la fenêtre.\nNous allons à la plage.\n")
    proc = mlxchat(
        "translate", "--plain", "-v", "-m", str(tiny_llama), "-i", str(source_file),
        "--max-new-words", "4", "--reference", str(reference),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "latency metrics use |Y| = reference words (SimulEval)" in proc.stdout


def test_runaway_output_ends_the_sentence_with_a_word_marked_cut(
    tiny_llama: Path, source_file: Path
) -> None:
    events = run_json(tiny_llama, source_file, "--max-tokens-per-word", "2")
    segments = [e for e in events if e["type"] == "segment"]
    for segment in segments:
        targets = [
            e for e in events if e["type"] == "target" and e["segment"] == segment["segment"]
        ]
        cut = [t["cut"] for t in targets]
        assert cut.count(True) <= 1 and (not any(cut) or cut[-1])  # nothing after a cut word
        if any(cut):
            assert segment["finish_reason"] == "length"
            assert len(targets) < len(segment["source"].split())
    assert any(e["type"] == "target" and e["cut"] for e in events)  # the random model runs away
    proc = mlxchat(
        "translate", "--plain", "-v", "-m", str(tiny_llama), "-i", str(source_file),
        "--max-tokens-per-word", "2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "source words, cut at the token limit]" in proc.stdout


def test_reference_gives_bleu_and_reference_length_metrics(
    tiny_llama: Path, source_file: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "ref.txt"
    reference.write_text("Le chat est sur la table près de la fenêtre.\nNous allons à la plage.\n")
    events = run_json(tiny_llama, source_file, "--reference", str(reference))
    segment = next(e for e in events if e["type"] == "segment")
    n = len(segment["source"].split())
    expected = latency_metrics(segment["delays"], n, 10)
    assert segment["metrics"] == pytest.approx(expected, abs=5e-4)
    assert events[-1]["metric_target_length"] == "reference"
    quality = events[-1]["quality"]
    assert 0 <= quality["BLEU"] <= 100 and 0 <= quality["chrF"] <= 100


ONE_LINE = "The cat sleeps. The dog barks loudly. We go home.\n"


@pytest.mark.parametrize(
    ("text", "lengths"),
    [
        ("Le chat dort. Le chien aboie fort. Nous rentrons à la maison.\n", [3, 4, 5]),
        ("Le chat dort. Oui.\nLe chien aboie.\nNous rentrons.\n", [4, 3, 2]),  # by line
    ],
)
def test_reference_sentences_match_the_source_sentences(
    tiny_llama: Path, tmp_path: Path, text: str, lengths: list[int]
) -> None:
    source, reference = tmp_path / "source.txt", tmp_path / "ref.txt"
    source.write_text(ONE_LINE)
    reference.write_text(text)
    events = run_json(tiny_llama, source, "--reference", str(reference))
    segments = [e for e in events if e["type"] == "segment"]
    assert [s["source"] for s in segments] == ONE_LINE.rstrip().replace(". ", ".\n").split("\n")
    for segment, length in zip(segments, lengths, strict=True):
        expected = latency_metrics(segment["delays"], len(segment["source"].split()), length)
        assert segment["metrics"] == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--wait-k", "0"), "--wait-k must be a whole number from 1 to 32, got 0"),
        (("--wait-k", "33"), "--wait-k must be a whole number from 1 to 32, got 33"),
        (("--max-new-words", "0"), "--max-new-words must be a whole number from 1 to 4096, got 0"),
        (
            ("--max-tokens-per-word", "0"),
            "--max-tokens-per-word must be a whole number from 1 to 256",
        ),
        (("--wpm", "0"), "--wpm must be more than 0"),
        (("--wpm", "-5"), "--wpm must be more than 0"),
        (("--plain", "--json"), "--plain and --json do not go together"),
        (("-i", "/no/such/file.txt"), "input file '/no/such/file.txt' does not exist"),
        (("--reference", "/no/such/ref.txt"), "reference file '/no/such/ref.txt' does not exist"),
    ],
)
def test_bad_options(args: tuple[str, ...], needle: str, source_file: Path) -> None:
    base = ("translate", "--plain", "-i", str(source_file))
    if "--json" in args:
        base = ("translate", "-i", str(source_file))
    assert_one_line_error(mlxchat(*base, *args), needle)


def test_non_integer_wait_k_is_a_usage_error(source_file: Path) -> None:
    proc = mlxchat("translate", "--plain", "-i", str(source_file), "--wait-k", "three")
    assert proc.returncode == 2
    assert "wait-k" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Une seule ligne.\n", "the reference has 1 line and 1 sentence but the source has 2"),
        ("Un. Deux. Trois.\n", "the reference has 1 line and 3 sentences but the source has 2"),
    ],
)
def test_reference_with_wrong_line_count(
    source_file: Path, tmp_path: Path, text: str, needle: str
) -> None:
    reference = tmp_path / "ref.txt"
    reference.write_text(text)
    proc = mlxchat("translate", "--plain", "-i", str(source_file), "--reference", str(reference))
    assert_one_line_error(proc, needle)


def test_non_utf8_input_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Good first line.\nSecond line is \xff\xfe broken.\n")
    proc = mlxchat("translate", "--plain", "-i", str(bad))
    assert_one_line_error(proc, "line 2 is not valid UTF-8")


async def test_live_translation_on_the_engine_equals_the_simulation(tiny_llama: Path) -> None:
    engine = Engine()
    await engine.load(str(tiny_llama))
    settings = WaitKSettings(wait_k=2, max_new_words=6)
    words = ["The", "cat", "is", "on", "the", "table."]
    live = LiveTranslation(engine, settings, auto_segment=False)
    events = []
    for i, word in enumerate(words):
        events += [e async for e in live.feed(word, last=i == len(words) - 1)]
    done = [e for e in events if isinstance(e, SegmentDone)]

    def simulate(model, tokenizer, emit, cancelled):  # noqa: ANN001 - engine job signature
        for event in stream_translate(model, tokenizer, " ".join(words), settings):
            emit(event)

    expected = [e for e in engine.with_model_sync(simulate) if isinstance(e, SegmentDone)]
    assert len(done) == 1
    assert done[0].target_tokens == expected[0].target_tokens
    assert done[0].delays == expected[0].delays
    assert "".join(e.text for e in events) == done[0].translation

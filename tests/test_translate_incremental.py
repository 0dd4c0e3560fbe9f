"""The incremental KV-cache wait-k translator against the naive re-encode oracle.

Two kinds of model:
- `ScriptedModel`: its next token is a hash of the *whole* token sequence in its cache, so
  any stale or missing cache entry changes the output; it picks among real words with and
  without a leading space (natural word boundaries) and can make EOS its top choice.
- tiny random llama / qwen2 models (real attention, real float rounding).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
import pytest
from mlx_lm import load
from mlx_lm.generate import generate_step
from mlx_lm.models.cache import KVCache

from mlxchat.translate import (
    Notice,
    SegmentDone,
    SimultaneousTranslator,
    SourceRead,
    TargetWord,
    TranslationChunk,
    TranslationEvent,
    WaitKSettings,
    build_layout,
    naive_translate,
    obeys_wait_k,
    split_words,
    stream_translate,
)

SENTENCES = [
    "The cat is on the table.",
    "What is the capital of France?",
    "Hello, how are you today?",
    "The quick brown fox jumps over the lazy dog.",
]

# -- helpers ------------------------------------------------------------------------------


def wk(wait_k: int | None = None, cut_ends_segment: bool = True, **values: Any) -> WaitKSettings:
    """Translation settings from raw values, policy and sampling mixed."""
    settings = WaitKSettings.from_values({"wait_k": wait_k, **values} if wait_k else values)
    return replace(settings, cut_ends_segment=cut_ends_segment)


def segments(events: Iterable[TranslationEvent]) -> list[SegmentDone]:
    return [e for e in events if isinstance(e, SegmentDone)]


def word_token_counts(events: Iterable[TranslationEvent]) -> list[int]:
    """Tokens committed for each completed target word, from the event stream."""
    counts, n = [], 0
    for event in events:
        if isinstance(event, TranslationChunk):
            n += 1
        elif isinstance(event, TargetWord):
            counts.append(n)
            n = 0
    return counts


class _FrozenCache(KVCache):
    """A KV cache that refuses trimming (like a rotating cache past its window)."""

    def is_trimmable(self) -> bool:
        return False


# RANDOM_WORDS: tiny random models rarely write a space, so nearly every word reaches the
# token cap; tests of the exactness invariants keep writing words after a cut word
# (`cut_ends_segment=False`) to cover many READ/WRITE steps.


class ScriptedModel:
    """A fake LM whose logits are a deterministic hash of every token in its KV cache.

    Keys hold the token ids themselves, so the model reads back exactly the sequence the
    cache contains. The top choice is ``choices[h % len]`` (or EOS when `eos_first`), the
    runner-up another choice, everything else far below.
    """

    def __init__(
        self,
        vocab_size: int,
        choices: list[int],
        eos: int,
        *,
        eos_first: bool = False,
        trimmable: bool = True,
    ) -> None:
        self.vocab_size = vocab_size
        self.choices = choices
        self.eos = eos
        self.eos_first = eos_first
        self.trimmable = trimmable
        self.calls = 0

    def make_cache(self) -> list[Any]:
        return [KVCache() if self.trimmable else _FrozenCache()]

    def __call__(self, inputs: mx.array, cache: list[Any]) -> mx.array:
        self.calls += 1
        x = inputs.astype(mx.float32)[:, None, :, None]
        keys, _ = cache[0].update_and_fetch(x, x)
        sequence = np.array(keys[0, 0, :, 0]).astype(np.int64).tolist()
        new = inputs.shape[1]
        logits = np.full((1, new, self.vocab_size), -20.0, dtype=np.float32)
        h = 0
        for position, token in enumerate(sequence):
            h = (h * 1000003 + token + 1) % 2_147_483_647
            j = position - (len(sequence) - new)
            if j < 0:
                continue
            top = self.choices[h % len(self.choices)]
            second = self.choices[(h // 7 + 1) % len(self.choices)]
            if self.eos_first:
                top, second = self.eos, top
            logits[0, j, second] = 4.0
            logits[0, j, top] = 5.0
        return mx.array(logits)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    from tiny_models import make_tiny_model

    path = make_tiny_model(tmp_path_factory.mktemp("translate") / "tiny-llama")
    return load(str(path))


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    from tiny_models import make_tiny_model

    path = make_tiny_model(tmp_path_factory.mktemp("translate") / "tiny-qwen", "qwen2", seed=1)
    return load(str(path))


@pytest.fixture(scope="module")
def tokenizer(tiny: tuple[Any, Any]) -> Any:
    return tiny[1]


def scripted(tokenizer: Any, **kwargs: Any) -> ScriptedModel:
    """A scripted model over single-token words of the tiny tokenizer."""
    spaced = [" le", " chat", " est", " sur", " la", " table", " de", " France", " Paris"]
    plain = ["s", "x", "ment", ".", "e", "d"]
    choices = []
    for piece in spaced + plain:
        ids = tokenizer.encode(piece, add_special_tokens=False)
        if len(ids) == 1 and tokenizer.decode(ids) == piece:
            choices.append(ids[0])
    assert sum(tokenizer.decode([c]).startswith(" ") for c in choices) >= 4
    assert sum(not tokenizer.decode([c]).startswith(" ") for c in choices) >= 3
    eos = next(iter(tokenizer.eos_token_ids))
    return ScriptedModel(len(tokenizer.vocab), choices, eos, **kwargs)


# -- exactness against the naive oracle ---------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_scripted_model_incremental_equals_naive(tokenizer: Any, k: int) -> None:
    model = scripted(tokenizer)
    natural = total_words = 0
    for sentence in SENTENCES:
        kw: dict[str, Any] = {"wait_k": k, "max_new_words": 14, "max_tokens_per_word": 6}
        events = list(stream_translate(model, tokenizer, sentence, wk(**kw)))
        naive = segments(naive_translate(model, tokenizer, sentence, wk(**kw)))
        (done,) = segments(events)
        assert done.target_tokens == naive[0].target_tokens
        assert done.delays == naive[0].delays
        assert done.target_words == naive[0].target_words
        assert obeys_wait_k(done.delays, k, len(split_words(sentence)))
        counts = word_token_counts(events)
        natural += sum(1 for c in counts if c < 6)
        total_words += len(done.target_words)
    assert total_words >= 4 * 10
    assert natural >= 10  # words ended by a whitespace token, not by the cap


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_tiny_model_greedy_incremental_equals_naive(tiny: tuple[Any, Any], k: int) -> None:
    model, tokenizer = tiny
    total_words = natural = 0
    for sentence in SENTENCES:
        kw: dict[str, Any] = {"wait_k": k, "max_new_words": 10, "max_tokens_per_word": 6}
        kw["cut_ends_segment"] = False  # RANDOM_WORDS
        events = list(stream_translate(model, tokenizer, sentence, wk(**kw)))
        (done,) = segments(events)
        (oracle,) = segments(naive_translate(model, tokenizer, sentence, wk(**kw)))
        assert done.target_tokens == oracle.target_tokens
        assert done.delays == oracle.delays
        assert done.translation == oracle.translation
        assert obeys_wait_k(done.delays, k, len(split_words(sentence)))
        total_words += len(done.target_words)
        natural += sum(1 for c in word_token_counts(events) if c < 6)
    assert total_words >= 30
    assert natural >= 5


@pytest.mark.parametrize("few_shot", [False, True])
def test_tiny_qwen_greedy_incremental_equals_naive(
    tiny_qwen: tuple[Any, Any], few_shot: bool
) -> None:
    model, tokenizer = tiny_qwen
    for k in (1, 3):
        kw: dict[str, Any] = {"wait_k": k, "max_new_words": 10, "max_tokens_per_word": 5}
        kw["few_shot"] = few_shot
        kw["cut_ends_segment"] = False  # RANDOM_WORDS
        source = " ".join(SENTENCES[2:])  # two sentences: two segments
        done = segments(stream_translate(model, tokenizer, source, wk(**kw)))
        oracle = segments(naive_translate(model, tokenizer, source, wk(**kw)))
        assert len(done) == 2
        assert [d.target_tokens for d in done] == [o.target_tokens for o in oracle]
        assert sum(len(d.target_words) for d in done) >= 10


def test_the_few_shot_prompt_is_the_text_a_base_model_continues(tiny: tuple[Any, Any]) -> None:
    from mlxchat.translate.prompt import translation_layout, uses_few_shot

    _, tokenizer = tiny
    settings = wk(few_shot=True, source_lang="English", target_lang="German")
    layout = translation_layout(tokenizer, settings)
    words = ["The", "cat", "sleeps."]
    text = layout.render(words)
    assert text.endswith("English: The cat sleeps.\nGerman:")
    assert "English: Where is the train station?\nGerman: Wo ist der Bahnhof?\n\n" in text
    pieces = layout.ids([layout.encode_word(w) for w in words])
    assert pieces == list(tokenizer.encode(text))  # piecewise ids = the text tokenized at once
    assert not uses_few_shot(tokenizer, wk())  # the tiny model has a chat template
    assert "Translate from English to Klingon." in translation_layout(
        tokenizer, wk(few_shot=True, target_lang="Klingon")
    ).render(words)  # no examples in that language: an instruction instead


# -- k >= |x| is ordinary greedy generation -----------------------------------------------


@pytest.mark.parametrize("extra", [0, 4])
def test_wait_k_beyond_source_equals_offline_greedy(tiny: tuple[Any, Any], extra: int) -> None:
    """With k >= |x| the whole source is read first and the answer is mlx-lm's greedy one.

    The word-boundary look-ahead never changes greedy output (its logits are reused), and
    with `stop_at_newline` off only EOS or the word cap end the answer.
    """
    model, tokenizer = tiny
    layout = build_layout(tokenizer)
    reasons, total_words = set(), 0
    for sentence in [*SENTENCES, "Le chat est sur la table."]:
        words = split_words(sentence)
        k = len(words) + extra
        kw: dict[str, Any] = {"max_tokens_per_word": 3, "stop_at_newline": False}
        kw["cut_ends_segment"] = False  # RANDOM_WORDS
        (done,) = segments(stream_translate(model, tokenizer, sentence, wk(k, **kw)))
        assert set(done.delays) == {len(words)}
        reasons.add(done.finish_reason)
        total_words += len(done.target_words)
        # The same prompt, fed to mlx-lm's own greedy generation with EOS allowed.
        prompt = layout.ids([layout.encode_word(w) for w in words])
        n = len(done.target_tokens)
        greedy = [t for t, _ in generate_step(mx.array(prompt), model, max_tokens=n + 1)]
        assert list(done.target_tokens) == greedy[:n]
        assert (greedy[n] in tokenizer.eos_token_ids) == (done.finish_reason == "stop")
    assert total_words >= 40
    assert reasons == {"stop", "length"}  # both the EOS ending and the word cap are exercised


def test_stop_at_newline_cuts_offline_greedy_at_first_line_break(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    layout = build_layout(tokenizer)
    cut = 0
    for sentence in [*SENTENCES[:2], "Numbers: 1 2 3 and 100.", "def add(a, b): return a + b"]:
        words = split_words(sentence)
        (done,) = segments(
            stream_translate(model, tokenizer, sentence, wk(len(words), max_new_words=30))
        )
        prompt = layout.ids([layout.encode_word(w) for w in words])
        n = len(done.target_tokens)
        greedy = [t for t, _ in generate_step(mx.array(prompt), model, max_tokens=n + 1)]
        assert list(done.target_tokens) == greedy[:n]
        assert "\n" not in done.translation
        if done.finish_reason == "stop" and greedy[n] not in tokenizer.eos_token_ids:
            assert "\n" in tokenizer.decode([greedy[n]])
            cut += 1
    assert cut >= 1  # at least one answer really ended at a line break


def test_scripted_eos_is_suppressed_until_source_finished(tokenizer: Any) -> None:
    model = scripted(tokenizer, eos_first=True)  # EOS is always the model's top choice
    for k in (1, 2, 3):
        for sentence in SENTENCES:
            n = len(split_words(sentence))
            (done,) = segments(stream_translate(model, tokenizer, sentence, wk(k)))
            # Words t with k + t - 1 < n are written before the last word is read; the
            # first write after that meets an unmasked EOS and the answer stops.
            assert len(done.target_words) == max(n - k, 0)
            assert done.finish_reason == "stop"
            assert model.eos not in done.target_tokens


# -- invariants of the stream -------------------------------------------------------------


def test_text_is_append_only_and_events_are_consistent(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    source = "Hello, how are you today? The cat is on the table."
    events = list(stream_translate(model, tokenizer, source, wk(2, max_tokens_per_word=4)))
    done = segments(events)
    assert len(done) == 2
    for segment, final in enumerate(done):
        text = "".join(e.text for e in events if e.segment == segment)
        assert text == final.translation
        assert final.translation == tokenizer.decode(list(final.target_tokens))
        assert "\n" not in final.translation  # line breaks are masked or end the answer
        n = len(final.source_words)
        assert obeys_wait_k(final.delays, 2, n)
        assert [w for w, _ in final.alignment] == list(final.target_words)
        assert [d for _, d in final.alignment] == list(final.delays)
        assert not any(math.isnan(v) for v in final.metrics.values())
        reads = [e for e in events if isinstance(e, SourceRead) and e.segment == segment]
        assert [e.word for e in reads] == list(final.source_words)
    delays_seen: tuple[int, ...] = ()
    read = 0
    for event in events:
        if isinstance(event, SegmentDone):
            delays_seen, read = (), 0
            continue
        # Delays only grow; a target word is never written ahead of the policy.
        assert event.delays[: len(delays_seen)] == delays_seen
        delays_seen = event.delays
        assert event.source_words_read >= read
        read = event.source_words_read
        if isinstance(event, TargetWord):
            assert event.word_complete and event.delay == event.delays[-1]
            assert event.delay == event.source_words_read
            assert event.lag == event.source_words_read - event.target_words_generated
    tokens = [e.tokens_computed for e in events]
    assert tokens == sorted(tokens)
    last = events[-1]
    assert last.stats.generation_tokens == sum(len(d.target_tokens) for d in done)
    assert last.stats.prompt_tokens > 0 and last.stats.ttft > 0


def test_incremental_computes_far_fewer_tokens(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    sentence = SENTENCES[3]
    for k in (1, 3, 5):
        kw: dict[str, Any] = {"wait_k": k, "max_new_words": 12, "max_tokens_per_word": 4}
        kw["stop_at_newline"] = False  # keep all 12 words: the ratio grows with the target
        kw["cut_ends_segment"] = False  # RANDOM_WORDS
        (done,) = segments(stream_translate(model, tokenizer, sentence, wk(**kw)))
        (oracle,) = segments(naive_translate(model, tokenizer, sentence, wk(**kw)))
        assert done.target_tokens == oracle.target_tokens
        assert len(done.target_words) == 12
        assert done.tokens_computed * 3 < oracle.tokens_computed, (k, done, oracle)


def test_padded_calls_leave_the_same_cache_and_logits(tiny: tuple[Any, Any]) -> None:
    """A call padded to 16 tokens gives the same logits and keeps only the real tokens."""
    from mlxchat.translate.kvcache import CachedModel

    model, _ = tiny
    tokens = list(range(5, 16))  # 11 tokens: padded to 16
    plain, padded = CachedModel(model, pad=False), CachedModel(model, pad=True)
    a, b = plain.sync(tokens), padded.sync(tokens)
    assert a is not None and b is not None
    assert mx.allclose(a, b, atol=1e-4).item()
    assert padded.ids == tokens and padded.cache[0].offset == len(tokens)
    assert (plain.tokens_computed, padded.tokens_computed) == (11, 16)
    more = [*tokens, 20, 21]  # the next call continues right after the real tokens
    assert mx.allclose(plain.sync(more), padded.sync(more), atol=1e-4).item()


def test_untrimmable_cache_falls_back_to_recompute(tokenizer: Any) -> None:
    sentence = SENTENCES[3]
    kw: dict[str, Any] = {"wait_k": 2, "max_new_words": 12, "max_tokens_per_word": 5}
    trimmed = segments(stream_translate(scripted(tokenizer), tokenizer, sentence, wk(**kw)))[0]
    frozen_events = list(
        stream_translate(scripted(tokenizer, trimmable=False), tokenizer, sentence, wk(**kw))
    )
    (frozen,) = segments(frozen_events)
    notices = [e for e in frozen_events if isinstance(e, Notice)]
    assert len(notices) == 1 and "recomput" in notices[0].message
    assert frozen.recompute and not trimmed.recompute
    assert frozen.target_tokens == trimmed.target_tokens
    assert frozen.tokens_computed > trimmed.tokens_computed


# -- live input ---------------------------------------------------------------------------


def test_live_feed_equals_simulation(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    source = "What is the capital of France? Hello, how are you today?"
    settings = WaitKSettings(wait_k=3, max_tokens_per_word=4, max_new_words=9)
    live = SimultaneousTranslator(model, tokenizer, settings)  # auto-segments at "?"
    live.prepare()
    events: list[TranslationEvent] = []
    for word in split_words(source):
        events.extend(live.feed(word))
    events.extend(live.finish())  # nothing left: both segments ended at "?"
    simulated = segments(
        stream_translate(model, tokenizer, source, wk(3, max_new_words=9, max_tokens_per_word=4))
    )
    got = segments(events)
    assert [d.target_tokens for d in got] == [s.target_tokens for s in simulated]
    assert [d.segment for d in got] == [0, 1]


def test_words_already_here_take_fewer_model_calls(tiny: tuple[Any, Any]) -> None:
    """A known source is not run through the model word by word: same tokens, fewer calls."""
    model, tokenizer = tiny
    words = split_words(SENTENCES[3])
    settings = WaitKSettings(wait_k=3, max_tokens_per_word=4, max_new_words=9)
    results = []
    for waiting in (False, True):
        translator = SimultaneousTranslator(model, tokenizer, settings, auto_segment=False)
        translator.cached.pad = False  # count exactly the same tokens
        events: list[TranslationEvent] = []
        for i, word in enumerate(words):
            last = i == len(words) - 1
            events.extend(translator.feed(word, last=last, more_waiting=waiting and not last))
        (done,) = segments(events)
        results.append((done, translator.cached.calls))
    (live, live_calls), (known, known_calls) = results
    assert known.target_tokens == live.target_tokens
    assert known.tokens_computed == live.tokens_computed
    assert known_calls <= live_calls - (settings.wait_k - 1)  # the first k words: one call


def test_live_finish_writes_the_rest(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    live = SimultaneousTranslator(
        model,
        tokenizer,
        wk(2, max_tokens_per_word=4, max_new_words=8, cut_ends_segment=False),
        auto_segment=False,
    )
    words = split_words("the cat is on")
    written = []
    for word in words:
        events = list(live.feed(word))
        written.append(sum(isinstance(e, TargetWord) for e in events))
    assert written == [0, 1, 1, 1]  # wait-2: one word per word read once two are in
    rest = list(live.finish())
    (done,) = segments(rest)
    assert done.delays[:3] == (2, 3, 4)
    assert set(done.delays[3:]) <= {4}
    assert len(done.target_words) == 8 or done.finish_reason == "stop"
    assert list(live.finish()) == []  # nothing pending


def test_should_stop_cancels_within_a_token(tokenizer: Any) -> None:
    model = scripted(tokenizer)
    calls_at_stop = 5
    events = list(
        stream_translate(
            model,
            tokenizer,
            " ".join(SENTENCES),
            wk(1),
            should_stop=lambda: model.calls >= calls_at_stop,
        )
    )
    (done,) = segments(events)
    assert done.finish_reason == "cancelled"
    assert model.calls == calls_at_stop
    assert done.segment == 0


# -- the real demo model ------------------------------------------------------------------


@pytest.mark.demo
def test_demo_model_incremental_equals_naive() -> None:
    models = pytest.importorskip(
        "mlxchat.models.loader", reason="the demo-model loader (models/loader.py) is not there yet"
    )
    model, tokenizer, _info = models.load_model("demo")
    lines = (Path(__file__).parent / "data" / "sentences.en.txt").read_text().splitlines()
    source = "\n".join(lines[:2])  # two sentences, two segments
    kw: dict[str, Any] = {"wait_k": 3, "max_new_words": 8}
    events = list(stream_translate(model, tokenizer, source, wk(**kw)))
    done = segments(events)
    oracle = segments(naive_translate(model, tokenizer, source, wk(**kw)))
    assert len(done) == 2
    assert [d.target_tokens for d in done] == [o.target_tokens for o in oracle]
    for final in done:
        assert final.target_words, "the demo model wrote nothing"
        assert obeys_wait_k(final.delays, 3, len(final.source_words))
    assert done[-1].tokens_computed * 2 < oracle[-1].tokens_computed


def test_sampling_settings_are_shared_with_the_oracle(tiny: tuple[Any, Any]) -> None:
    """Repetition penalty and seeded sampling: the same draws give the same tokens."""
    model, tokenizer = tiny
    sentence = SENTENCES[3]
    kw: dict[str, Any] = {"wait_k": 2, "max_new_words": 10, "max_tokens_per_word": 5}
    kw["cut_ends_segment"] = False  # RANDOM_WORDS
    greedy = segments(stream_translate(model, tokenizer, sentence, wk(**kw)))[0]
    penalized_kw = {**kw, "repetition_penalty": 1.5, "repetition_context_size": 8}
    penalized = segments(stream_translate(model, tokenizer, sentence, wk(**penalized_kw)))[0]
    oracle = segments(naive_translate(model, tokenizer, sentence, wk(**penalized_kw)))[0]
    assert penalized.target_tokens == oracle.target_tokens
    assert penalized.target_tokens != greedy.target_tokens
    sampled_kw = {**kw, "temp": 0.9, "top_p": 0.95, "min_p": 0.02}
    runs = []
    for fn in (stream_translate, naive_translate, stream_translate):
        mx.random.seed(7)
        runs.append(segments(fn(model, tokenizer, sentence, wk(**sampled_kw)))[0])
    assert runs[0].target_tokens == runs[1].target_tokens == runs[2].target_tokens
    assert runs[0].target_tokens != greedy.target_tokens
    assert obeys_wait_k(runs[0].delays, 2, len(runs[0].source_words))


def test_live_cancel_and_empty_last_word(tokenizer: Any) -> None:
    model = scripted(tokenizer)
    stop = False
    live = SimultaneousTranslator(model, tokenizer, wk(1), should_stop=lambda: stop)
    first = list(live.feed("the"))
    assert sum(isinstance(e, TargetWord) for e in first) == 1
    ended = list(live.feed("", last=True))  # an empty last word just finishes the segment
    assert segments(ended)[0].finish_reason in {"stop", "length"}
    assert live.segment == 1
    stop = True
    (done,) = segments(live.feed("cat"))
    assert done.finish_reason == "cancelled" and done.segment == 1
    assert live.cancelled
    calls = model.calls
    assert list(live.feed("sat")) == [] and list(live.finish()) == []
    assert model.calls == calls


def test_a_word_cut_at_the_token_limit_is_marked_and_ends_the_segment(
    tiny: tuple[Any, Any],
) -> None:
    model, tokenizer = tiny
    sentence = SENTENCES[0]
    settings = wk(2, max_tokens_per_word=3)
    events = list(stream_translate(model, tokenizer, sentence, settings))
    (done,) = segments(events)
    words = [e for e in events if isinstance(e, TargetWord)]
    assert words[-1].cut and not any(w.cut for w in words[:-1])
    assert done.finish_reason == "length"
    assert len(done.target_words) < len(split_words(sentence))  # no runaway "words"
    assert done.source_words == tuple(split_words(sentence))  # the whole source was read
    (oracle,) = segments(naive_translate(model, tokenizer, sentence, settings))
    assert oracle.target_tokens == done.target_tokens and oracle.delays == done.delays


def test_the_default_word_cap_is_twice_the_source_plus_two() -> None:
    assert WaitKSettings().word_cap(11) == 24
    assert WaitKSettings(max_new_words=5).word_cap(11) == 5


def test_time_to_first_token_counts_from_the_first_write_allowed() -> None:
    """A typist's pause before the k-th word is not the model's time to first token."""
    from mlxchat.translate.decoding import StatsClock

    now = [100.0]
    clock = StatsClock(lambda: now[0])
    now[0] = 110.9  # ten seconds of typing the first k words
    clock.may_write()
    now[0] = 111.2
    clock.may_write()  # noted once
    now[0] = 111.4
    clock.add_generated(10)
    assert abs(clock.stats.ttft - 0.5) < 1e-9

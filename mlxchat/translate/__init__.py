"""Simultaneous translation with the wait-k policy on any mlx-lm chat model.

`stream_translate` simulates a known source word by word; `SimultaneousTranslator` takes
a live source (`feed` each word, then `finish`). Both yield the events of `events.py`.
`naive_translate` is the full re-encode baseline (the oracle in tests and benchmarks).
"""

from mlxchat.translate.decoding import WaitKSettings, default_word_cap
from mlxchat.translate.events import (
    Notice,
    SegmentDone,
    SourceRead,
    TargetWord,
    TranslationChunk,
    TranslationEvent,
)
from mlxchat.translate.incremental import SimultaneousTranslator, stream_translate
from mlxchat.translate.kvcache import CachedModel
from mlxchat.translate.metrics import (
    latency_metrics,
    mean_word_wait,
    time_to_first_word,
)
from mlxchat.translate.naive import NaiveTranslator, naive_translate
from mlxchat.translate.policy import (
    Action,
    next_action,
    obeys_wait_k,
    source_finished,
    wait_k_delays,
    wait_k_schedule,
)
from mlxchat.translate.prompt import PromptLayout, build_layout
from mlxchat.translate.segment import ends_sentence, split_sentences, split_words

__all__ = [
    "Action",
    "CachedModel",
    "NaiveTranslator",
    "Notice",
    "PromptLayout",
    "SegmentDone",
    "SimultaneousTranslator",
    "SourceRead",
    "TargetWord",
    "TranslationChunk",
    "TranslationEvent",
    "WaitKSettings",
    "build_layout",
    "default_word_cap",
    "ends_sentence",
    "latency_metrics",
    "mean_word_wait",
    "naive_translate",
    "next_action",
    "obeys_wait_k",
    "source_finished",
    "split_sentences",
    "split_words",
    "stream_translate",
    "time_to_first_word",
    "wait_k_delays",
    "wait_k_schedule",
]

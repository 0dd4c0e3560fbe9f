"""Simultaneous translation with the wait-k policy on any mlx-lm chat model.

`stream_translate` simulates a known source word by word; `SimultaneousTranslator` takes
a live source (`feed` each word, then `finish`). Both yield the events of `events.py`.
`naive_translate` is the full re-encode baseline (the oracle in tests and benchmarks).

Importing the package loads nothing heavy: each name is imported from its module when
first used, so the plain types (`settings`, `events`, `metrics`) never pull in MLX.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "events": (
        "Notice",
        "SegmentDone",
        "SourceRead",
        "TargetWord",
        "TranslationChunk",
        "TranslationEvent",
    ),
    "incremental": ("SimultaneousTranslator", "stream_translate"),
    "kvcache": ("CachedModel",),
    "metrics": ("METRICS", "latency_metrics", "mean_word_wait", "time_to_first_word"),
    "naive": ("NaiveTranslator", "naive_translate"),
    "policy": (
        "Action",
        "next_action",
        "obeys_wait_k",
        "source_finished",
        "wait_k_delays",
        "wait_k_schedule",
    ),
    "prompt": ("PromptLayout", "build_layout"),
    "segment": ("ends_sentence", "split_sentences", "split_words"),
    "settings": ("WaitKSettings", "default_word_cap"),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import `name` from its module on first use."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mlxchat.translate' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"mlxchat.translate.{module}"), name)
    globals()[name] = value
    return value

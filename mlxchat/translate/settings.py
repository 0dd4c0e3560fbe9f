"""`WaitKSettings`: what decides which tokens a wait-k translator writes (imports no MLX).

Each field is declared, with its range and help, in `mlxchat.settings`; this dataclass
holds the values and checks them with the same rules as the config file and the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from mlxchat.engine.types import SamplingParams
from mlxchat.settings import SAMPLING, SETTINGS, default, validate


@dataclass(frozen=True)
class WaitKSettings:
    """The policy, the caps, the languages and the sampling of a wait-k translation.

    Attributes:
        wait_k: Lag k of the wait-k policy (source words read before the first write).
        max_new_words: Most target words per segment; None means `default_word_cap`.
        max_tokens_per_word: Tokens after which a target word is cut (and marked cut).
        cut_ends_segment: A cut word ends the segment: what follows is runaway output, not
            words. Off, the next tokens make more words (tests of the translators' token
            exactness on tiny random models, which rarely write a space, need that).
        source_lang: Source language name used in the prompt.
        target_lang: Target language name used in the prompt.
        stop_at_newline: Treat a line break like EOS: a segment is one sentence, so once
            the source is finished a line break after some text ends the answer (small
            models otherwise go on to comment on their translation); before that, and
            before any text, line-break tokens are masked like EOS.
        few_shot: Prompt with translated examples as plain text (`few_shot.py`); None:
            only for a model without a chat template.
        sampling: Temperature, top-p, min-p and repetition penalty (greedy by default;
            `max_tokens`, `top_k`, `seed` and `stop` are not used).
        requested: The sampling values asked for (flags, request fields) when made by
            `from_values`; `resolved` puts them over the config and the model's defaults.
    """

    wait_k: int = default("wait_k")
    max_new_words: int | None = default("max_new_words")
    max_tokens_per_word: int = default("max_tokens_per_word")
    source_lang: str = default("source_lang")
    target_lang: str = default("target_lang")
    stop_at_newline: bool = default("stop_at_newline")
    few_shot: bool | None = default("few_shot")
    cut_ends_segment: bool = True
    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(temp=0.0))
    requested: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        """Check every field with the shared rules (raises `SettingError`)."""
        for f in fields(self):
            if f.name in SETTINGS:
                SETTINGS[f.name].check(getattr(self, f.name))

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> WaitKSettings:
        """Settings from raw values by name, policy and sampling names mixed ("temp").

        Raises:
            SettingError: An unknown name or a bad value (the message names it).
        """
        policy = [f.name for f in fields(cls) if f.name in SETTINGS]
        checked = validate(values, [*policy, *SAMPLING])
        sampling = {name: checked.pop(name) for name in SAMPLING if name in checked}
        return cls(
            **checked,
            sampling=SamplingParams(**{"temp": 0.0, **sampling}),
            requested=sampling,
        )

    def resolved(self, base: Any, model_defaults: Mapping[str, Any] | None) -> WaitKSettings:
        """These settings with the sampling every entry point uses
        (`config.effective_sampling`: the values asked for here, then `base`, the config
        file's `Settings`, then the model's own defaults). Settings made with an explicit
        `sampling` (not by `from_values`) keep it."""
        if self.requested is None:
            return self
        from mlxchat.config import Settings, effective_sampling

        sampling = effective_sampling(base or Settings(), model_defaults, self.requested)
        return replace(self, sampling=sampling)

    def word_cap(self, source_length: int | None) -> int | None:
        """The target-word cap for a segment (None while |x| is unknown and no cap is set)."""
        if self.max_new_words is not None:
            return self.max_new_words
        return None if source_length is None else default_word_cap(source_length)


def default_word_cap(source_length: int) -> int:
    """Runaway guard when no `max_new_words` is given: 2·|x| + 2 target words (room for
    targets longer than the source, e.g. one unit per character in Chinese)."""
    return 2 * source_length + 2

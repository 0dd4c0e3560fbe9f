"""The translation prompt, laid out in tokens so the source can grow in place.

`translation_layout` picks it: the model's chat template with a zero-shot instruction, or
for base models the few-shot completion of `few_shot.py`.

The model's own chat template is rendered once with a unique placeholder where the source
goes; the text is split there into a *head* (everything before the source) and a *tail*
(end of the user turn plus the assistant header). The token sequence is then::

    [head][" w1"][" w2"] … [" wn"][tail][target tokens …]

Every source word is tokenized on its own *with its leading space* (the head ends with
``"<Language>:"``, so the rendered text reads ``"English: The cat sat"``). Each word's ids
are taken as the suffix of ``encode(":" + " " + word)`` after ``encode(":")``, which gives
the word as the tokenizer splits it after punctuation for both byte-level BPE and
SentencePiece tokenizers (no stray prefix-space token). For byte-level BPE tokenizers
(SmolLM2, the tiny test models) the concatenation equals tokenizing the whole rendered
text; `PromptLayout.matches_full_render` checks that for a given source. Whatever the
tokenizer, the naive oracle and the incremental translator use exactly this sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlxchat.translate.few_shot import SHOTS, few_shot_head

if TYPE_CHECKING:
    from mlxchat.translate.settings import WaitKSettings

PLACEHOLDER = "\u27e6MLXCHAT_SOURCE_3f9c\u27e7"
WORD_ANCHOR = ":"
TAIL_ANCHOR = "."


def default_messages(source_lang: str, target_lang: str) -> list[dict[str, str]]:
    """System and user messages asking for a bare translation; the source replaces PLACEHOLDER."""
    system = (
        f"You are a professional translator. Translate the user's {source_lang} text "
        f"into {target_lang}. Output only the {target_lang} translation, nothing else."
    )
    user = f"Translate from {source_lang} to {target_lang}.\n\n{source_lang}:{PLACEHOLDER}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def render_template(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """Render `messages` with the generation prompt; merge the system turn if unsupported."""
    try:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception:
        if messages[0]["role"] != "system":
            raise
        merged = messages[0]["content"] + "\n\n" + messages[1]["content"]
        user = [{"role": "user", "content": merged}, *messages[2:]]
        return tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def encode_after(tokenizer: Any, anchor: str, text: str) -> list[int]:
    """Ids of `text` as tokenized right after `anchor` (plain `encode` if they merge)."""
    anchor_ids = _encode(tokenizer, anchor)
    ids = _encode(tokenizer, anchor + text)
    if ids[: len(anchor_ids)] == anchor_ids:
        return ids[len(anchor_ids) :]
    return _encode(tokenizer, text)


@dataclass
class PromptLayout:
    """Token layout of the translation prompt for one tokenizer and language pair.

    Attributes:
        head: Ids before the source (system turn, instruction, ``"English:"``).
        tail: Ids after the source (end of user turn, assistant header).
        head_text: The rendered text of `head`.
        tail_text: The rendered text of `tail`.
    """

    tokenizer: Any = field(repr=False)
    head: list[int]
    tail: list[int]
    head_text: str
    tail_text: str

    def encode_word(self, word: str) -> list[int]:
        """Ids of one source word with its leading space, as appended to the source region."""
        return encode_after(self.tokenizer, WORD_ANCHOR, " " + word)

    def ids(self, source_ids: Sequence[Sequence[int]], target_ids: Sequence[int] = ()) -> list[int]:
        """The whole prompt: head, the given source words' ids, tail, target ids."""
        out = list(self.head)
        for word_ids in source_ids:
            out.extend(word_ids)
        out.extend(self.tail)
        out.extend(target_ids)
        return out

    def render(self, words: Sequence[str]) -> str:
        """The prompt text for a source given as words (what the template would render)."""
        return self.head_text + "".join(" " + w for w in words) + self.tail_text

    def matches_full_render(self, words: Sequence[str]) -> bool:
        """Whether the piecewise ids equal tokenizing the fully rendered prompt at once."""
        pieces = self.ids([self.encode_word(w) for w in words])
        return pieces == _encode(self.tokenizer, self.render(words))


def build_layout(
    tokenizer: Any,
    source_lang: str = "English",
    target_lang: str = "French",
    messages: list[dict[str, str]] | None = None,
) -> PromptLayout:
    """Render the chat template around a placeholder and tokenize head and tail.

    Args:
        tokenizer: An mlx-lm `TokenizerWrapper` (or Hugging Face tokenizer) with a template.
        source_lang: Name of the source language, as written in the instruction.
        target_lang: Name of the target language.
        messages: Custom messages; exactly one must contain `PLACEHOLDER`.

    Raises:
        ValueError: If the rendered template does not contain the placeholder exactly once.
    """
    messages = messages or default_messages(source_lang, target_lang)
    rendered = render_template(tokenizer, messages)
    if rendered.count(PLACEHOLDER) != 1:
        raise ValueError("the chat template must render the source placeholder exactly once")
    head_text, tail_text = rendered.split(PLACEHOLDER)
    return PromptLayout(
        tokenizer=tokenizer,
        head=_encode(tokenizer, head_text),
        tail=encode_after(tokenizer, TAIL_ANCHOR, tail_text),
        head_text=head_text,
        tail_text=tail_text,
    )


def few_shot_layout(
    tokenizer: Any, source_lang: str, target_lang: str, shots: int = SHOTS
) -> PromptLayout:
    """The few-shot completion prompt (`few_shot.py`) as a layout; the head starts with the
    tokenizer's BOS when it adds one to a document."""
    head_text = few_shot_head(source_lang, target_lang, shots)
    tail_text = f"\n{target_lang}:"
    return PromptLayout(
        tokenizer=tokenizer,
        head=list(tokenizer.encode(head_text)),
        tail=encode_after(tokenizer, TAIL_ANCHOR, tail_text),
        head_text=head_text,
        tail_text=tail_text,
    )


def uses_few_shot(tokenizer: Any, settings: WaitKSettings) -> bool:
    """Whether a translation prompts with examples: as set, else when the model has no
    chat template (a base model)."""
    if settings.few_shot is not None:
        return settings.few_shot
    return not getattr(tokenizer, "has_chat_template", True)


def translation_layout(
    tokenizer: Any, settings: WaitKSettings, messages: list[dict[str, str]] | None = None
) -> PromptLayout:
    """The prompt layout a translator uses: custom `messages`, the few-shot completion, or
    the zero-shot chat prompt."""
    if messages is None and uses_few_shot(tokenizer, settings):
        return few_shot_layout(tokenizer, settings.source_lang, settings.target_lang)
    return build_layout(tokenizer, settings.source_lang, settings.target_lang, messages)

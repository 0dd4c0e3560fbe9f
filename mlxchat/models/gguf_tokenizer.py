"""Hugging Face tokenizers rebuilt from GGUF metadata, tokenizing as llama.cpp does.

Two kinds of vocabulary (`tokenizer.ggml.model`):

- "gpt2": byte-level BPE, with the merges of the file and the pre-tokenizer split that
  llama.cpp uses for `tokenizer.ggml.pre`.
- "llama": SentencePiece (Llama 2, Mistral, Gemma, Phi-3). llama.cpp replaces spaces by
  U+2581, prepends one to each stretch of text when `add_space_prefix` (default true), then
  merges adjacent pieces best-score-first (ties: leftmost) while the merged piece is in the
  vocabulary, and spells what is left as `<0xNN>` byte tokens. That is a BPE whose merges are
  every split of every token, ranked by the merged token's score; built here with byte
  fallback, a normalizer for the spaces and the matching decoder.

Control tokens become special added tokens and user-defined ones (Gemma's runs of spaces,
tabs and newlines, HTML tags) plain added tokens matched before anything else, as llama.cpp
matches them in the raw text. Known differences: where two added tokens overlap, HF takes the
leftmost-longest and llama.cpp the longest first; text containing a control token is
tokenized here as llama.cpp does with `parse_special=True` (what chat templates need).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from mlxchat.models.gguf_header import GGUFHeader

SUPPORTED_TOKENIZERS = ("gpt2", "llama")

# Pre-tokenizer split patterns, as in llama.cpp's llama-vocab.cpp and the HF tokenizers.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3_SPLIT = _QWEN2_SPLIT.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
_PRE_QWEN2 = ("qwen2", "deepseek-r1-qwen")
_PRE_LLAMA3 = ("llama3", "llama-bpe", "smaug-bpe", "falcon3")
_PRE_DIGITS = ("smollm", "starcoder", "refact", "codeshell")

# Token types of `tokenizer.ggml.token_type`.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# Turn-ending tokens llama.cpp also stops on (when the file names no EOT token).
_EOT_TEXTS = ("<end_of_turn>", "<|eot_id|>", "<|im_end|>", "<|end|>", "<|eom_id|>")
_SPACE = "\u2581"


def _pre_tokenizer(pre: str) -> Any:
    """The Hugging Face pre-tokenizer matching llama.cpp's `tokenizer.ggml.pre` value."""
    from tokenizers import Regex, pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pre in _PRE_QWEN2 or pre in _PRE_LLAMA3:
        split = _QWEN2_SPLIT if pre in _PRE_QWEN2 else _LLAMA3_SPLIT
        return pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(split), behavior="isolated"), byte_level]
        )
    gpt2 = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in _PRE_DIGITS:
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), gpt2])
    return gpt2  # "gpt2", "default" and anything unknown: the GPT-2 byte-level split


def spm_merges(tokens: list[str], scores: np.ndarray) -> list[tuple[str, str]]:
    """Every (left, right) split of every token into two tokens, best merged score first.

    Equal scores keep the file's order (lower id first), then the split position.
    """
    ids: dict[str, int] = {}
    for i, t in enumerate(tokens):
        ids.setdefault(t, i)
    found: list[tuple[float, int, int, str, str]] = []
    for i, t in enumerate(tokens):
        if len(t) < 2 or ids[t] != i:
            continue
        score = float(scores[i])
        for k in range(1, len(t)):
            left, right = t[:k], t[k:]
            if left in ids and right in ids:
                found.append((-score, i, k, left, right))
    found.sort(key=lambda m: (m[0], m[1], m[2]))
    return [(m[3], m[4]) for m in found]


def build_tokenizer(header: GGUFHeader) -> tuple[Tokenizer, dict[str, Any], list[int]]:
    """Rebuild the tokenizer stored in GGUF metadata (`header` read with arrays).

    Returns:
        The tokenizer, the tokenizer_config.json contents and the end-of-generation ids.
    """
    from tokenizers import AddedToken, processors

    md, arrays = header.metadata, header.arrays
    tokens: list[str] = list(arrays["tokenizer.ggml.tokens"])
    types_value = arrays.get("tokenizer.ggml.token_type")
    types = [int(t) for t in types_value] if types_value is not None else [NORMAL] * len(tokens)
    spm = md.get("tokenizer.ggml.model") == "llama"
    add_prefix = bool(md.get("tokenizer.ggml.add_space_prefix", True))
    tok = _spm_tokenizer(header, tokens, add_prefix) if spm else _bpe_tokenizer(header, tokens)
    special = [t for t, k in zip(tokens, types, strict=False) if k in (CONTROL, UNKNOWN)]
    user = [t for t, k in zip(tokens, types, strict=False) if k == USER_DEFINED]
    # llama.cpp strips the spaces after Phi-3's special tokens, chosen by general.name.
    name = str(md.get("general.name", "")).lower()
    phi3 = "phi-3" in name or "phi3" in name
    keep_spaces = ("<unk>", "<s>", "<|endoftext|>")

    def added(t: str, is_special: bool) -> AddedToken:
        rstrip = phi3 and t not in keep_spaces
        return AddedToken(t, special=is_special, normalized=False, rstrip=rstrip)

    tok.add_special_tokens([added(t, True) for t in special])
    tok.add_tokens([added(t, False) for t in user])

    def token(key: str) -> tuple[int, str] | tuple[None, None]:
        value = md.get(f"tokenizer.ggml.{key}_token_id")
        if value is None or not 0 <= int(value) < len(tokens):
            return None, None
        return int(value), tokens[int(value)]

    bos_id, bos = token("bos")
    eos_id, eos = token("eos")
    eot_id, _ = token("eot")
    if eot_id is None:
        by_text = {t: i for i, (t, k) in enumerate(zip(tokens, types, strict=False)) if k == 3}
        eot_id = next((by_text[t] for t in _EOT_TEXTS if t in by_text), None)
    add_bos = bool(md.get("tokenizer.ggml.add_bos_token", spm)) and bos is not None
    add_eos = bool(md.get("tokenizer.ggml.add_eos_token", False)) and eos is not None
    single, pair, specials = "$A", "$A $B", []
    if add_bos:
        single, pair = f"{bos} {single}", f"{bos} $A {bos} $B"
        specials.append((bos, bos_id))
    if add_eos:
        single, pair = f"{single} {eos}", f"{pair} {eos}"
        specials.append((eos, eos_id))
    if specials:
        tok.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=list(dict.fromkeys(specials))
        )
    elif not spm:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    eos_ids = [i for i in dict.fromkeys([eos_id, eot_id]) if i is not None]
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": eos,
        "pad_token": token("padding")[1],
        "unk_token": token("unknown")[1],
        "add_bos_token": add_bos,
        "add_eos_token": add_eos,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(header.arch_value("context_length", 2048)),
    }
    if spm:
        config["add_prefix_space"] = add_prefix
    if "tokenizer.chat_template" in md:
        config["chat_template"] = md["tokenizer.chat_template"]
    return tok, config, eos_ids


def _bpe_tokenizer(header: GGUFHeader, tokens: list[str]) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models

    merges = [tuple(m.split(" ", 1)) for m in header.arrays.get("tokenizer.ggml.merges", [])]
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    pre = str(header.metadata.get("tokenizer.ggml.pre", "default"))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=pre in _PRE_LLAMA3))
    tok.pre_tokenizer = _pre_tokenizer(pre)
    tok.decoder = decoders.ByteLevel()
    return tok


def _spm_tokenizer(header: GGUFHeader, tokens: list[str], add_prefix: bool) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, normalizers

    scores = header.arrays.get("tokenizer.ggml.scores")
    if scores is None:
        scores = -np.arange(len(tokens), dtype=np.float32)
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    unk_id = header.metadata.get("tokenizer.ggml.unknown_token_id")
    unk = tokens[int(unk_id)] if unk_id is not None and 0 <= int(unk_id) < len(tokens) else None
    model = models.BPE(
        vocab=vocab, merges=spm_merges(tokens, scores), unk_token=unk, byte_fallback=True
    )
    tok = Tokenizer(model)
    steps = [normalizers.Prepend(_SPACE)] if add_prefix else []
    tok.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", _SPACE)])
    parts = [decoders.Replace(_SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_prefix:
        parts.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(parts)
    return tok

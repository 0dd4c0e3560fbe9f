"""Tiny random MLX models written as real model directories, for fast tests.

Each directory holds what `mlx_lm.load` reads from a Hugging Face checkout:
`config.json`, `model.safetensors`, `tokenizer.json`, `tokenizer_config.json` (with a
ChatML chat template). The tokenizer is a real byte-level BPE trained on a small corpus, so
text round-trips; the weights are random (seeded), so answers are deterministic gibberish.
"""

from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TOOL_CHATML = (
    "{% if tools %}<|im_start|>system\n# Tools\n<tools>\n"
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}</tools>\n"
    "For each call return <tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message.role == 'assistant' and message.tool_calls %}"
    "{{ '<|im_start|>assistant\n' + (message.content or '') }}"
    "{% for tool_call in message.tool_calls %}"
    "{% if tool_call.function %}{% set tool_call = tool_call.function %}{% endif %}"
    '{{ \'<tool_call>\n{"name": "\' + tool_call.name + \'", "arguments": \' }}'
    "{{ tool_call.arguments | tojson }}{{ '}\n</tool_call>' }}"
    "{% endfor %}{{ '<|im_end|>\n' }}"
    "{% elif message.role == 'tool' %}"
    "{{ '<|im_start|>user\n<tool_response>\n' + message.content }}"
    "{{ '\n</tool_response><|im_end|>\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""A Qwen-style template with tools (mlx-lm infers its `json_tools` parser from it)."""

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

THINK_TOKENS = ["<think>", "</think>"]
"""Added after SPECIAL_TOKENS for a model that thinks (ids 3 and 4)."""

THINKING_CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is not defined or enable_thinking %}{{ '<think>\n' }}{% endif %}"
    "{% endif %}"
)
"""ChatML that opens the think span in the generation prompt (as Qwen3's does), unless
`enable_thinking` is false; an answer's reasoning is not rendered."""

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "Translate from English to French. Output only the translation.",
    "Le chat est sur la table. The cat is on the table.",
    "Hello, how are you today? I am fine, thank you.",
    "def add(a, b):\n    return a + b\n",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000.",
    "system user assistant You are a helpful assistant.",
]


def write_tokenizer(
    path: Path, vocab_size: int = 512, template: str = CHATML, thinking: bool = False
) -> None:
    """Train a byte-level BPE on CORPUS and save it as a Hugging Face fast tokenizer
    (`thinking`: with the think tokens and a template that opens the think span)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS + (THINK_TOKENS if thinking else []),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    tok.save(str(path / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "chat_template": THINKING_CHATML if thinking else template,
        "model_max_length": 2048,
        "clean_up_tokenization_spaces": False,
    }
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def make_tiny_model(
    path: Path,
    model_type: str = "llama",
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 2048,
    seed: int = 0,
    endless: bool = False,
    thinking: bool = False,
    tools: bool = False,
) -> Path:
    """Write a tiny random `llama` or `qwen2` model directory at `path` and return it.

    With `tools` its chat template takes tools (Qwen's format, `<tool_call>` JSON).
    With `endless` (llama only) the special tokens' output rows are zeroed, so greedy
    decoding never ends the answer by itself: for tests that must interrupt a generation.
    With `thinking` the tokenizer has `<think>`/`</think>` and its template opens the think
    span; the model never writes those two tokens itself (their output rows are zeroed), so
    only a thinking budget ends the span.
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.utils import _get_classes

    path.mkdir(parents=True, exist_ok=True)
    write_tokenizer(path, template=TOOL_CHATML if tools else CHATML, thinking=thinking)
    from tokenizers import Tokenizer

    vocab_size = Tokenizer.from_file(str(path / "tokenizer.json")).get_vocab_size()
    config = {
        "model_type": model_type,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_key_value_heads,
        "intermediate_size": intermediate_size,
        "vocab_size": vocab_size,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": max_position_embeddings,
        "tie_word_embeddings": model_type == "qwen2",
        "eos_token_id": 2,
    }
    model_class, args_class = _get_classes(config)
    mx.random.seed(seed)
    model = model_class(args_class.from_dict(config))
    # Scale weights up a little so logits are not nearly flat (distinct greedy choices).
    params = {k: v * 4 if v.ndim == 2 else v for k, v in tree_flatten(model.parameters())}
    silent = len(SPECIAL_TOKENS) if endless else 0
    silent += len(THINK_TOKENS) if thinking else 0
    if silent:
        head = params["lm_head.weight"]
        first = 0 if endless else len(SPECIAL_TOKENS)
        rows = mx.arange(head.shape[0])[:, None]
        quiet = (rows >= first) & (
            rows < len(SPECIAL_TOKENS) + (len(THINK_TOKENS) if thinking else 0)
        )
        params["lm_head.weight"] = mx.where(quiet, mx.zeros_like(head), head)
    mx.save_safetensors(str(path / "model.safetensors"), params)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path

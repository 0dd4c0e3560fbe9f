"""GGUF architectures -> mlx-lm models: tensor names, layout fixes and config.json.

    GGUF `general.architecture`   mlx-lm model_type   layout fixes
    ---------------------------   -----------------   -------------------------------------
    llama (Llama 1-3.x, Mistral)  llama               Q/K rows un-permuted (interleaved RoPE
                                                      -> halves); Llama 3.x `rope_freqs`
                                                      -> rope_scaling {"rope_type": "llama3"}
    qwen2                         qwen2               -
    qwen3                         qwen3               -
    gemma                         gemma               RMSNorm weights - 1 (llama.cpp stores 1+w)
    gemma2                        gemma2              RMSNorm weights - 1
    gemma3                        gemma3_text         RMSNorm weights - 1
    phi3                          phi3                -  (fused attn_qkv, ffn_up = gate+up)

llama.cpp's converter permutes Q/K only for `llama`; every other architecture here uses NEOX
RoPE and is stored as Hugging Face has it. What llama.cpp hard-codes rather than writes
(gemma3: local RoPE base 10000, a global layer every 6th; gemma2/3: 1/sqrt(head_dim)
attention scale except the 27B) is written into config.json the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mlxchat.engine.types import ModelLoadError

if TYPE_CHECKING:
    from mlxchat.models.gguf_header import GGUFHeader

SUPPORTED_ARCHITECTURES = ("llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3")

TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BASE_LAYER = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_QK_NORM = {"attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm"}
_GEMMA2_LAYER = _BASE_LAYER | {
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
}
_PHI3_LAYER = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_qkv": "self_attn.qkv_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_up": "mlp.gate_up_proj",
    "ffn_down": "mlp.down_proj",
}
LAYER_NAMES: dict[str, dict[str, str]] = {
    "llama": _BASE_LAYER,
    "qwen2": _BASE_LAYER,
    "qwen3": _BASE_LAYER | _QK_NORM,
    "gemma": _BASE_LAYER,
    "gemma2": _GEMMA2_LAYER,
    "gemma3": _GEMMA2_LAYER | _QK_NORM,
    "phi3": _PHI3_LAYER,
}
MODEL_TYPES = {"gemma3": "gemma3_text"}
NORM_SHIFTED = ("gemma", "gemma2", "gemma3")
"""Architectures whose RMSNorm computes x * (1 + w): llama.cpp's converter stores 1 + w."""

# Tensors that are not weights of the mlx-lm model but settings (read into the config).
CONFIG_TENSORS = ("rope_freqs.weight",)

_TENSOR_RE = re.compile(r"(?:blk\.(\d+)\.)?(\w+)\.(weight|bias)")


def hf_name(arch: str, name: str) -> str | None:
    """The mlx-lm parameter name of GGUF tensor `name`, or None when it has none."""
    m = _TENSOR_RE.fullmatch(name)
    if m is None:
        return None
    layer, base, suffix = m.groups()
    table = LAYER_NAMES[arch] if layer is not None else TOP_NAMES
    if base not in table:
        return None
    module = f"model.layers.{layer}.{table[base]}" if layer is not None else table[base]
    return f"{module}.{suffix}"


def row_permutation(arch: str, hf: str, header: GGUFHeader, rows: int) -> np.ndarray | None:
    """The row order that undoes llama.cpp's Q/K permutation (None: keep the rows)."""
    if arch != "llama":
        return None
    heads = required(header, "attention.head_count")
    if ".self_attn.q_proj." in hf:
        n = heads
    elif ".self_attn.k_proj." in hf:
        n = int(header.arch_value("attention.head_count_kv", heads))
    else:
        return None
    # GGUF row (h, j, 2-pair) holds HF row (h, pair, j): read the GGUF rows in HF order.
    index = np.arange(rows).reshape(n, rows // n // 2, 2).swapaxes(1, 2).reshape(-1)
    return index


def required(header: GGUFHeader, key: str) -> int:
    """The integer metadata value `<architecture>.<key>` (ModelLoadError when missing)."""
    value = header.arch_value(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ModelLoadError(f"no valid {header.architecture}.{key} in the metadata")
    return value


def shifted_norm(arch: str, hf: str) -> bool:
    """Whether `hf` is a Gemma RMSNorm weight, stored by llama.cpp as 1 + w."""
    return arch in NORM_SHIFTED and hf.endswith("norm.weight")


def fix_float(arch: str, hf: str, values: np.ndarray) -> np.ndarray:
    """Float-valued tensor fixes: Gemma RMSNorm weights back to the Hugging Face w."""
    return values.astype(np.float32) - 1.0 if shifted_norm(arch, hf) else values


def model_config(
    header: GGUFHeader,
    vocab_size: int,
    has_lm_head: bool,
    has_q_bias: bool,
    extra: dict[str, np.ndarray],
) -> dict[str, Any]:
    """The mlx-lm config.json (without quantization and token ids).

    Args:
        header: The parsed GGUF header.
        vocab_size: Rows of the token embedding.
        has_lm_head: Whether the file has a separate output matrix.
        has_q_bias: Whether the attention projections have biases.
        extra: The CONFIG_TENSORS present, as float32 arrays.

    Raises:
        ModelLoadError: A setting this importer does not support.
    """
    arch = header.architecture
    md = header.arch_value
    heads = required(header, "attention.head_count")
    hidden = required(header, "embedding_length")
    head_dim = int(md("attention.key_length", hidden // heads))
    config: dict[str, Any] = {
        "model_type": MODEL_TYPES.get(arch, arch),
        "hidden_size": hidden,
        "num_hidden_layers": required(header, "block_count"),
        "intermediate_size": required(header, "feed_forward_length"),
        "num_attention_heads": heads,
        "num_key_value_heads": int(md("attention.head_count_kv", heads)),
        "rms_norm_eps": float(md("attention.layer_norm_rms_epsilon", 1e-6)),
        "vocab_size": vocab_size,
        "tie_word_embeddings": not has_lm_head,
        "max_position_embeddings": int(md("context_length", 4096)),
    }
    if head_dim != hidden // heads or arch in ("qwen3", "gemma", "gemma2", "gemma3"):
        config["head_dim"] = head_dim
    rope_dims = md("rope.dimension_count")
    if rope_dims is not None and int(rope_dims) != head_dim and arch != "phi3":
        raise ModelLoadError(f"partial RoPE ({rope_dims} of {head_dim} dimensions)")
    default_base = 1000000.0 if arch in ("qwen2", "qwen3", "gemma3") else 10000.0
    config["rope_theta"] = float(md("rope.freq_base", default_base))
    _CONFIGS.get(arch, _llama_like)(header, config, has_q_bias)
    scaling = _rope_scaling(header, config, extra)
    if scaling is not None:
        config["rope_scaling"] = scaling
    return config


def _llama_like(header: GGUFHeader, config: dict[str, Any], has_q_bias: bool) -> None:
    if header.architecture == "llama":
        config["attention_bias"] = has_q_bias


def _gemma_attention(header: GGUFHeader, config: dict[str, Any]) -> None:
    """1/sqrt(head_dim) attention, except Gemma 2/3 27B: 1/sqrt(hidden/heads) (llama.cpp)."""
    big = {"gemma2": 46, "gemma3": 62}.get(header.architecture)
    scalar = config["head_dim"]
    if config["num_hidden_layers"] == big:
        scalar = config["hidden_size"] // config["num_attention_heads"]
    config["query_pre_attn_scalar"] = int(scalar)


def _gemma2(header: GGUFHeader, config: dict[str, Any], has_q_bias: bool) -> None:
    _gemma_attention(header, config)
    config["attn_logit_softcapping"] = float(header.arch_value("attn_logit_softcapping", 50.0))
    config["final_logit_softcapping"] = float(header.arch_value("final_logit_softcapping", 30.0))


def _gemma3(header: GGUFHeader, config: dict[str, Any], has_q_bias: bool) -> None:
    _gemma_attention(header, config)
    md = header.arch_value
    config["sliding_window"] = int(md("attention.sliding_window", 4096))
    config["sliding_window_pattern"] = int(md("attention.sliding_window_pattern", 6))
    config["rope_local_base_freq"] = 10000.0
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        if md(key) is not None:
            raise ModelLoadError(f"Gemma 3 with {key} (mlx-lm's gemma3_text has none)")


def _phi3(header: GGUFHeader, config: dict[str, Any], has_q_bias: bool) -> None:
    head_dim = config.pop("head_dim", config["hidden_size"] // config["num_attention_heads"])
    rope_dims = int(header.arch_value("rope.dimension_count", head_dim))
    config["partial_rotary_factor"] = rope_dims / head_dim
    original = header.arch_value("rope.scaling.original_context_length")
    if original is not None:
        config["original_max_position_embeddings"] = int(original)


_CONFIGS: dict[str, Callable[[GGUFHeader, dict[str, Any], bool], None]] = {
    "gemma2": _gemma2,
    "gemma3": _gemma3,
    "phi3": _phi3,
}


def _rope_scaling(
    header: GGUFHeader, config: dict[str, Any], extra: dict[str, np.ndarray]
) -> dict[str, Any] | None:
    """rope_scaling from `<arch>.rope.scaling.*` metadata or Llama 3's `rope_freqs` tensor."""
    md = header.arch_value
    freqs = extra.get("rope_freqs.weight")
    if freqs is not None:
        if header.architecture != "llama":
            raise ModelLoadError(f"rope_freqs in a {header.architecture} file")
        return _llama3_scaling(header, config, freqs)
    kind = md("rope.scaling.type")
    if kind in (None, "none"):
        return None
    factor = float(md("rope.scaling.factor", 1.0))
    if kind == "linear":
        return None if factor == 1.0 else {"type": "linear", "factor": factor}
    if kind == "yarn" and header.architecture in ("llama", "qwen2", "qwen3"):
        scaling: dict[str, Any] = {"type": "yarn", "factor": factor}
        original = md("rope.scaling.original_context_length")
        if original is not None:
            scaling["original_max_position_embeddings"] = int(original)
        return scaling
    raise ModelLoadError(f"RoPE scaling {kind!r} for {header.architecture}")


def llama3_factors(
    head_dim: int, base: float, factor: float, low: float, high: float, original: int
) -> np.ndarray:
    """The frequency factors llama.cpp's converter writes as `rope_freqs` for Llama 3.x."""
    inv = 1.0 / base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * math.pi / inv
    smooth = (original / wavelen - low) / (high - low)
    medium = 1 / ((1 - smooth) / factor + smooth)
    out = np.where(
        wavelen < original / high, 1.0, np.where(wavelen > original / low, factor, medium)
    )
    return out.astype(np.float32)


def _llama3_scaling(
    header: GGUFHeader, config: dict[str, Any], freqs: np.ndarray
) -> dict[str, Any] | None:
    """Llama 3.x RoPE parameters that reproduce the file's `rope_freqs` factors.

    llama.cpp writes only the factors (and, from some versions on, the parameters as
    `llama.rope.scaling.*`). Taken from the metadata when there, else Llama 3's defaults
    (low 1, high 4, original context 8192) with the largest factor; then checked against
    the tensor, and refused when they do not reproduce it.
    """
    freqs = np.asarray(freqs, np.float32).reshape(-1)
    if np.all(freqs == 1.0):
        return None
    md = header.arch_value
    head_dim = int(config.get("head_dim", config["hidden_size"] // config["num_attention_heads"]))
    factor = float(md("rope.scaling.factor", float(freqs.max())))
    low = float(md("rope.scaling.low_freq_factor", 1.0))
    high = float(md("rope.scaling.high_freq_factor", 4.0))
    original = int(md("rope.scaling.original_context_length", 8192))
    expected = llama3_factors(head_dim, config["rope_theta"], factor, low, high, original)
    if expected.shape != freqs.shape or not np.allclose(expected, freqs, rtol=1e-4):
        raise ModelLoadError(
            "RoPE frequency factors (rope_freqs) that are not Llama 3's "
            f"(factor {factor:g}, low {low:g}, high {high:g}, original context {original})"
        )
    return {
        "rope_type": "llama3",
        "factor": factor,
        "low_freq_factor": low,
        "high_freq_factor": high,
        "original_max_position_embeddings": original,
    }

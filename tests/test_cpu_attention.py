"""The CPU prompt attention gives MLX's attention, for prompt chunks at any position, and
hands everything else (one query, other masks) to mlx-lm unchanged."""

from __future__ import annotations

import mlx.core as mx
import pytest
from mlx_lm.models.base import scaled_dot_product_attention

from mlxchat.engine import cpu_attention


def qkv(length: int, keys: int, heads: int = 4, groups: int = 2) -> tuple[mx.array, ...]:
    mx.random.seed(length * 1000 + keys)
    q = mx.random.normal((1, heads, length, 16)) * 3
    k = mx.random.normal((1, groups, keys, 16)) * 3
    v = mx.random.normal((1, groups, keys, 16))
    return q, k, v


@pytest.mark.parametrize(("length", "keys"), [(8, 8), (8, 40), (33, 300), (2, 3)])
def test_causal_chunks_match_mlx(length: int, keys: int) -> None:
    q, k, v = qkv(length, keys)
    expected = mx.fast.scaled_dot_product_attention(q, k, v, scale=0.25, mask="causal")
    got = cpu_attention.attention(q, k, v, None, 0.25, "causal")
    assert got.shape == expected.shape
    assert mx.allclose(got, expected, atol=1e-5).item()


def test_boolean_masks_match_mlx() -> None:
    q, k, v = qkv(6, 20)
    mask = mx.random.uniform(shape=(1, 1, 6, 20)) > 0.3
    mask[..., 0] = True  # every query sees at least one key
    expected = mx.fast.scaled_dot_product_attention(q, k, v, scale=0.25, mask=mask)
    got = cpu_attention.attention(q, k, v, None, 0.25, mask)
    assert mx.allclose(got, expected, atol=1e-5).item()


def test_exp_is_exact_to_float32_and_zero_far_below() -> None:
    x = mx.concatenate([mx.linspace(-90, 0, 10_001), mx.array([-mx.inf, -1e30])])
    got = cpu_attention._weights(x, mx.zeros((1,)))
    expected = mx.exp(x)
    assert (mx.abs(got - expected) <= 3e-7 * expected + 1e-37).all().item()
    assert got[-1].item() == 0.0 and got[-2].item() == 0.0


def test_decoding_and_other_masks_go_to_mlx_lm(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def original(*args: object, **kwargs: object) -> str:
        calls.append(args)
        return "mlx-lm"

    monkeypatch.setattr(cpu_attention, "_ORIGINAL", original)
    q, k, v = qkv(1, 10)
    assert cpu_attention.attention(q, k, v, None, 0.25, None) == "mlx-lm"  # one query
    q, k, v = qkv(4, 10)
    additive = mx.zeros((4, 10))
    assert cpu_attention.attention(q, k, v, None, 0.25, additive) == "mlx-lm"
    assert cpu_attention.attention(q.astype(mx.float16), k, v, None, 0.25, "causal") == "mlx-lm"
    assert len(calls) == 3


def test_install_swaps_the_models_attention(tiny_llama: object) -> None:
    from mlx_lm.models import llama

    from mlxchat.models.loader import load_model

    model, _, _ = load_model(str(tiny_llama))
    assert llama.scaled_dot_product_attention is cpu_attention.attention
    assert scaled_dot_product_attention is cpu_attention._ORIGINAL
    del model


def test_greedy_answers_are_the_same_with_mlx_lms_attention(tiny_llama: object) -> None:
    from mlx_lm.generate import generate_step
    from mlx_lm.models.cache import make_prompt_cache

    from mlxchat.models.loader import load_model

    model, tokenizer, _ = load_model(str(tiny_llama))
    prompt = mx.array(tokenizer.encode("The quick brown fox jumps over the lazy dog. " * 30))

    def greedy() -> list[int]:
        steps = generate_step(
            prompt,
            model,
            max_tokens=24,
            prompt_cache=make_prompt_cache(model),
            prefill_step_size=32,
        )
        return [int(token) for token, _ in steps]

    ours = greedy()
    cpu_attention.install(model, ours=False)
    try:
        assert greedy() == ours
    finally:
        cpu_attention.install(model)

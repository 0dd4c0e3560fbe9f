"""`mlxchat serve` across several machines with MLX distributed (`mlx.launch`).

Every rank loads its tensor-parallel shard with mlx-lm's `sharded_load`. Rank 0 serves
HTTP on its engine thread as usual, but through `Lockstep`, which, before each model
call, broadcasts what the call is (token ids, which KV cache, the cache's offset) with
`all_sum` (the others add zeros). The other ranks run `follow`: they receive each call,
cut their copy of that cache back to the same offset and run the same call, so the
sharded layers' own `all_sum`s meet. Sampling, sessions and everything else stay on
rank 0 alone: the other ranks only mirror model calls.

    mlx.launch -n 2 --backend ring -- mlxchat serve -m MODEL_DIR
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, cast

import mlx.core as mx

from mlxchat.engine.types import ModelInfo, ModelLoadError

STOP = 0
"""A call of length 0 tells the other ranks to stop."""

FOLLOWER_CACHES = 16
"""KV caches a follower keeps (the ones rank 0 used last)."""


class UnsplittableModel(ModelLoadError):
    """The model's heads cannot be divided evenly across the ranks."""


def world() -> mx.distributed.Group | None:
    """The distributed group when run under `mlx.launch` with more than one rank."""
    group = mx.distributed.init()
    return group if group.size() > 1 else None


def check_splittable(path: Path, name: str, ranks: int) -> None:
    """Refuse a model whose attention heads cannot be split evenly across `ranks`.

    Raises:
        ModelLoadError: One line naming the head counts and the rank count.
    """
    config = json.loads((path / "config.json").read_text())
    heads = config.get("num_attention_heads")
    kv_heads = config.get("num_key_value_heads", heads)
    if not isinstance(heads, int) or not isinstance(kv_heads, int):
        raise ModelLoadError(f"cannot split {name}: its config.json gives no attention heads")
    if heads % ranks or kv_heads % ranks:
        raise UnsplittableModel(
            f"cannot split {name} across {ranks} ranks: it has {heads} attention heads and "
            f"{kv_heads} KV heads, and both must divide by {ranks}; run fewer ranks "
            "or a model whose head counts divide by the rank count"
        )


def load_shard(name: str, group: mx.distributed.Group) -> tuple[Any, Any, ModelInfo]:
    """This rank's shard of `name`, its tokenizer and what is loaded.

    Raises:
        ModelLoadError: The model cannot be found, split or loaded.
    """
    from mlx_lm.utils import sharded_load

    from mlxchat.models.loader import resolve_model

    path = resolve_model(name)
    check_splittable(path, name, group.size())
    try:
        model, tokenizer = sharded_load(str(path), tensor_group=group)
    except Exception as error:  # mlx-lm raises many types
        raise ModelLoadError(f"cannot load a shard of {name}: {error}") from error
    config = json.loads((path / "config.json").read_text())
    info = ModelInfo(
        name=name, path=str(path), context_length=config.get("max_position_embeddings")
    )
    return model, tokenizer, info


def _share(values: mx.array, group: mx.distributed.Group) -> mx.array:
    """Rank 0's `values` on every rank (the others pass zeros of the same shape)."""
    shared = mx.distributed.all_sum(values, group=group)
    mx.eval(shared)
    return shared


def barrier(group: mx.distributed.Group) -> None:
    """Wait until every rank got here."""
    _share(mx.zeros(1, mx.int32), group)


class Lockstep:
    """Rank 0's model: each call is first announced to the other ranks, then run.

    Behaves as the wrapped model otherwise (attributes are the model's).
    """

    def __init__(self, model: Any, group: mx.distributed.Group) -> None:
        self.model = model
        self.group = group

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def __call__(self, inputs: mx.array, cache: list[Any] | None = None, **kwargs: Any) -> Any:
        if cache is None:
            raise ValueError("distributed serving runs every model call with a KV cache")
        key = id(cache) % (2**31 - 1)
        _share(mx.array([inputs.shape[1], key, cache[0].offset], mx.int32), self.group)
        _share(inputs.astype(mx.int32), self.group)
        out = self.model(inputs, cache=cache, **kwargs)
        mx.eval(out)  # the others evaluate the whole call too: the same all_sums, in order
        return out

    def stop(self) -> None:
        """Tell the other ranks to return from `follow`."""
        _share(mx.array([STOP, 0, 0], mx.int32), self.group)


def follow(model: Any, group: mx.distributed.Group) -> None:
    """On ranks other than 0: run the model calls rank 0 announces, until it stops."""
    from mlx_lm.models.cache import make_prompt_cache, trim_prompt_cache

    caches: OrderedDict[int, list[Any]] = OrderedDict()
    while True:
        length, key, offset = cast(list[int], _share(mx.zeros(3, mx.int32), group).tolist())
        if length == STOP:
            return
        inputs = _share(mx.zeros((1, length), mx.int32), group)
        cache = caches.pop(key, None)
        if cache is None:
            cache = make_prompt_cache(model)
        caches[key] = cache
        while len(caches) > FOLLOWER_CACHES:
            caches.popitem(last=False)
        if cache[0].offset > offset:
            trim_prompt_cache(cache, cache[0].offset - offset)
        if cache[0].offset != offset:
            raise RuntimeError(f"rank {group.rank()} lost step with rank 0's KV cache")
        mx.eval(model(inputs, cache=cache))

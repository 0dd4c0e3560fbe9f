"""Pick the engine for a model name: a server URL gets the remote engine, the rest MLX."""

from __future__ import annotations

from mlxchat.engine.contract import Engine
from mlxchat.models.remote import is_remote


def make_engine(
    model: str,
    *,
    api_key: str | None = None,
    progress_interval: float = 0.25,
    fast_cpu: bool = True,
    prompt_cache_bytes: int | None = None,
    prompt_cache_disk_bytes: int = 0,
    speculative: str = "auto",
    draft_model: str = "",
) -> Engine:
    """The engine that serves `model` (``http://host:port/v1[#id]``: `RemoteEngine`).

    Args:
        model: The model name the user gave.
        api_key: The remote server's key (None: $MLXCHAT_API_KEY).
        progress_interval: Seconds between `Progress` events.
        fast_cpu: The local engine's CPU fast path.
        prompt_cache_bytes: The local engine's prompt cache budget (None: its default).
        prompt_cache_disk_bytes: The local engine's disk tier budget (0: none).
        speculative: The local engine's speculative decoding ("auto", "off", "lookup",
            "draft").
        draft_model: The local engine's draft model ("": none).
    """
    if is_remote(model):
        from mlxchat.engine.remote import RemoteEngine

        return RemoteEngine(api_key=api_key, progress_interval=progress_interval)
    from mlxchat.engine.engine import Engine as LocalEngine

    return LocalEngine(
        progress_interval=progress_interval,
        fast_cpu=fast_cpu,
        prompt_cache_bytes=prompt_cache_bytes,
        prompt_cache_disk_bytes=prompt_cache_disk_bytes,
        speculative=speculative,
        draft_model=draft_model or None,
    )

"""A model name that is a server URL (`-m http://host:port/v1`): served elsewhere."""

from __future__ import annotations


def is_remote(name: str) -> bool:
    """Whether a model name is an OpenAI-compatible server's URL."""
    return name.startswith(("http://", "https://"))

"""A restarted `mlxchat serve` keeps its prompt cache: the real server, a tiny model and the
official openai client; the second turn after a restart prefills only its new tokens."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
from servers import free_port, server_process


def disk_entries(base: str) -> int:
    health = httpx.get(base.removesuffix("/v1") + "/health", timeout=10).json()
    return int(health["prompt_cache"]["disk_entries"])


def test_a_restarted_server_keeps_its_prompt_cache(tiny_llama: Path, tmp_path: Path) -> None:
    port = free_port()
    args = ["-m", "mlxchat", "serve", "-m", str(tiny_llama), "--port", str(port)]
    env = {"MLXCHAT_PROMPTS_DIR": str(tmp_path / "prompts")}
    messages: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant. " * 6},
        {"role": "user", "content": "Tell me about the sea and the waves " * 8},
    ]

    def ask(base: str) -> Any:
        client = openai.OpenAI(base_url=base, api_key="-", max_retries=0)
        return client.chat.completions.create(
            model=str(tiny_llama), messages=messages, temperature=0, max_tokens=8
        )

    with server_process(args, port, env) as (_, base):
        first = ask(base)
        deadline = time.monotonic() + 30
        while disk_entries(base) < 1:  # written in the background after the answer
            assert time.monotonic() < deadline, "the cache never reached the disk"
            time.sleep(0.2)
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And the tides?"},
    ]
    with server_process(args, port, env) as (_, base):
        assert disk_entries(base) == 1
        second = ask(base)
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= first.usage.prompt_tokens

"""Plain data that crosses the engine boundary: requests, settings and streamed events.

Nothing here imports MLX or textual, so every layer (engine, CLI, UI) can share it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from mlxchat.settings import SAMPLING, default, validate

FinishReason = Literal["stop", "length", "cancelled", "error", "tool_calls"]
Role = Literal["system", "user", "assistant", "tool"]
Channel = Literal["answer", "reasoning"]
"""What a chunk of text is: the answer, or the model's reasoning before it."""


class EngineError(Exception):
    """A failure the user can act on: the message is one line saying what and what to do."""


class ModelLoadError(EngineError):
    """A model could not be loaded; the previously loaded model (if any) stays."""


class PromptTooLongError(EngineError):
    """The prompt does not fit in the context: `tokens` of it against a `limit`."""

    def __init__(self, message: str, tokens: int, limit: int) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.limit = limit


@dataclass(frozen=True)
class ToolCall:
    """A call the model made: `arguments` is the JSON text of the arguments object."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    """One chat message.

    Attributes:
        role: Who wrote it; "tool" is a tool's result.
        content: The text.
        reasoning: An assistant's reasoning (never sent back unless the template asks).
        tool_calls: An assistant's calls.
        tool_call_id: For a "tool" message, the call it answers.
        name: For a "tool" message, the tool's name.
    """

    role: Role
    content: str
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token's log probability and the `top` alternatives (token, logprob)."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class RequestOptions:
    """What a request asks beyond sampling (the agents' API).

    Attributes:
        tools: OpenAI-style tool declarations (`{"type": "function", "function": {...}}`).
        tool_choice: "auto", "none", "required" or `{"type": "function", "function":
            {"name": ...}}`.
        response_format: OpenAI's `response_format` (json_object / json_schema), or None.
        logprobs: Report each token's log probability.
        top_logprobs: How many alternatives to report with it (0-20).
        template_kwargs: Extra chat-template variables (e.g. `enable_thinking`).
        thinking_budget: Most reasoning tokens before the think end is forced (None: no cap).
        speculative: Speculative decoding for this request ("auto", "off", "lookup"; None:
            the engine's setting).
    """

    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] = "auto"
    response_format: dict[str, Any] | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    thinking_budget: int | None = None
    speculative: str | None = None


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings, named as in mlx-lm; ranges and help in `mlxchat.settings`.

    Attributes:
        temp: Sampling temperature; 0 means greedy.
        top_p: Nucleus sampling mass; 1.0 disables it.
        min_p: Minimum probability relative to the top token; 0 disables it.
        top_k: Keep only the k most likely tokens; 0 disables it.
        repetition_penalty: Penalty for recently seen tokens; None or 1.0 disables it.
        repetition_context_size: How many recent tokens the penalty looks at.
        seed: Random seed for reproducible sampling; None leaves the generator as is.
        max_tokens: Most tokens to generate for one answer.
        stop: Strings that end the answer (in addition to the model's EOS tokens).
    """

    temp: float = default("temp")
    top_p: float = default("top_p")
    min_p: float = default("min_p")
    top_k: int = default("top_k")
    repetition_penalty: float | None = default("repetition_penalty")
    repetition_context_size: int = default("repetition_context_size")
    seed: int | None = default("seed")
    max_tokens: int = default("max_tokens")
    stop: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise `SettingError` naming the first setting out of range."""
        validate({name: getattr(self, name) for name in SAMPLING})


@dataclass
class Stats:
    """Running numbers for one generation (also the final summary).

    Attributes:
        prompt_tokens: Tokens prefilled for this request (only the new ones in a session).
        cached_tokens: Prompt tokens reused from the session's cache (not prefilled again).
        prompt_tps: Prefill speed, tokens per second.
        generation_tokens: Tokens generated so far.
        generation_tps: Decode speed, tokens per second.
        ttft: Seconds from the request reaching the engine thread to the first token.
        peak_memory: Peak MLX memory in GB.
        active_memory: Active MLX memory in GB.
        context_tokens: Tokens in the model's context (cache) after this step.
        context_limit: The context size in force (0: unknown).
        dropped_messages: Oldest messages left out of the prompt to fit the context.
        draft_tokens: Tokens guessed ahead by speculative decoding (prompt lookup).
        accepted_tokens: Of those, the ones the model kept.
    """

    prompt_tokens: int = 0
    cached_tokens: int = 0
    prompt_tps: float = 0.0
    generation_tokens: int = 0
    generation_tps: float = 0.0
    ttft: float = 0.0
    peak_memory: float = 0.0
    active_memory: float = 0.0
    context_tokens: int = 0
    context_limit: int = 0
    dropped_messages: int = 0
    draft_tokens: int = 0
    accepted_tokens: int = 0


@dataclass
class Chunk:
    """One streamed piece of an answer: a text delta and the stats at that moment.

    `finish_reason` is None on every chunk but the last one of a request; `created` is
    `time.perf_counter()` when the engine produced it (consumers can measure their lag).
    """

    text: str
    token: int | None
    stats: Stats
    finish_reason: FinishReason | None = None
    error: str | None = None
    created: float = field(default_factory=time.perf_counter)
    channel: Channel = "answer"
    """"reasoning" for the model's thinking, "answer" for the answer."""
    tool_call: ToolCall | None = None
    """A whole tool call, parsed when its end arrived (its text is not in `text`)."""
    logprob: TokenLogprob | None = None
    """This token's log probability, when the request asked for it."""


@dataclass
class Progress:
    """A throttled status update while generating (never carries text).

    While prefilling (one event at most per prefill step): `prompt_done` of `prompt_total`
    new prompt tokens are in the cache; `stats.prompt_tokens`/`prompt_tps` count those done
    so far and `stats.context_tokens` is the whole prompt the request holds.
    """

    phase: Literal["prefill", "thinking", "generating"]
    stats: Stats
    prompt_done: int = 0
    prompt_total: int = 0


@dataclass
class LoadProgress:
    """Progress of loading a model: `fraction` in [0, 1], `message` for humans, `phase`
    "download" while its files come from the Hub ("" otherwise)."""

    model: str
    message: str
    fraction: float | None = None
    phase: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """What is loaded: the name the user gave, where it lives, its context size, and the
    sampling defaults its folder asks for."""

    name: str
    path: str
    context_length: int | None = None
    quantized: bool = False
    dequantized: bool = False
    dtype: str = ""
    num_parameters: int = 0
    sampling_defaults: dict[str, Any] = field(default_factory=dict)
    """The model's own sampling defaults (its generation_config.json, in our names)."""
    chat_template: bool = True
    """Whether the model has a chat template; without one it is a base model, and a chat
    sends the conversation as plain text for it to continue."""
    notice: str = ""
    """Something the user should know about how it runs (e.g. a slow BLAS); "" for none."""
    backend: str = ""
    """Where and how it computes, one line for status/about views and `-v` output, e.g.
    "CPU (MLX 0.32.4), OpenBLAS 0.3.33 (SkylakeX kernels, 2 threads; pip ngsolve-openblas),
    float32 (converted at load)" (`cpu.describe_cpu_path`)."""


@dataclass
class Result:
    """A whole answer: the joined text of every chunk and the final stats."""

    text: str
    finish_reason: FinishReason
    stats: Stats
    tokens: list[int] = field(default_factory=list)
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)


Event = Chunk | Progress

"""One generation request, run on the engine thread: prompt → cache → mlx-lm → chunks."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import mlx.core as mx
from mlx_lm.generate import generation_stream, stream_generate

from mlxchat.engine import constrain, cpu
from mlxchat.engine.blas_hint import reference_blas
from mlxchat.engine.logprobs import token_logprob
from mlxchat.engine.sampling import build_logits_processors, build_sampler
from mlxchat.engine.session import CacheSession
from mlxchat.engine.text_router import (
    TextRouter,
    ThinkBudget,
    opens_thinking,
    route_step,
    route_tail,
    step_chunks,
    think_markers,
)
from mlxchat.engine.tool_calls import (
    ToolCallRoute,
    ToolPlan,
    finish_reason,
    forced_call_prompt,
    message_dict,
    plan,
    template_tools,
    tool_plan_note,
)
from mlxchat.engine.types import (
    Chunk,
    Event,
    Message,
    Progress,
    PromptTooLongError,
    RequestOptions,
    SamplingParams,
    Stats,
    TokenLogprob,
)

Prompt = str | Sequence[Message]

PREFILL_STEP_SIZE = 256
"""Prompt tokens run through the model per step: one `Progress` event at most per step.

mlx-lm's default (2048) gives no progress at all on most chat prompts; see
benchmarks/prefill_step.py for what smaller steps cost."""

SLOW_PREFILL_STEP_SIZE = 64
"""The step on MLX's reference BLAS (about 4-19 prompt tok/s: 256 tokens would leave the
progress still for up to a minute; the step size costs it nothing measurable)."""


def default_prefill_step_size() -> int:
    """`SLOW_PREFILL_STEP_SIZE` on the reference BLAS, else `PREFILL_STEP_SIZE`."""
    return SLOW_PREFILL_STEP_SIZE if reference_blas() else PREFILL_STEP_SIZE


@dataclass
class GenerateRequest:
    """What to generate.

    Attributes:
        prompt: A plain user prompt, or the whole conversation as messages.
        params: Sampling settings.
        session: Name of a cache session kept across turns (None: a one-off cache).
        chat_template: Apply the model's chat template (False: feed the text as is).
        progress_interval: Seconds between `Progress` events (None: no progress events).
        max_context: A cap on the context below the model's own (None: the model's).
        prefill_step_size: Prompt tokens per model call while prefilling (None: the
            default for this machine, `default_prefill_step_size`).
    """

    prompt: Prompt
    params: SamplingParams
    session: str | None = None
    chat_template: bool = True
    progress_interval: float | None = None
    max_context: int | None = None
    prefill_step_size: int | None = None
    options: RequestOptions = field(default_factory=RequestOptions)


class StopMatcher:
    """Holds back text that might be the start of a stop string; finds complete ones."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add `text`; return (text safe to show, whether a stop string was reached)."""
        if not self.stops:
            return text, False
        buffer = self.held + text
        hits = [i for i in (buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.held = ""
            return buffer[: min(hits)], True
        keep = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buffer)), 0, -1):
                if buffer.endswith(stop[:n]):
                    keep = max(keep, n)
                    break
        self.held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        """Release whatever is held (the answer ended without a stop string)."""
        text, self.held = self.held, ""
        return text


def _as_dicts(messages: Sequence[Message], reasoning: bool = False) -> list[dict[str, Any]]:
    """The messages as a chat template reads them (tool calls and results as mlx-lm gives
    them); an answer's reasoning only as `reasoning_content`, and only for a template that
    reads it (`reasoning`)."""
    dicts: list[dict[str, Any]] = []
    for message in messages:
        item = message_dict(message)
        if reasoning and message.reasoning:
            item["reasoning_content"] = message.reasoning
        dicts.append(item)
    return dicts


def template_reads_reasoning(tokenizer: Any) -> bool:
    """Whether the chat template reads an answer's `reasoning_content` (most drop it)."""
    try:
        template = getattr(tokenizer, "chat_template", None)
    except (AttributeError, ValueError):
        return False
    return "reasoning_content" in str(template or "")


def encode_prompt(
    tokenizer: Any, prompt: Prompt, chat_template: bool, options: RequestOptions | None = None
) -> list[int]:
    """Token ids for `prompt`, through the chat template when asked and available (with
    the request's tools and template variables, e.g. `enable_thinking`)."""
    messages = [Message("user", prompt)] if isinstance(prompt, str) else list(prompt)
    if chat_template and getattr(tokenizer, "has_chat_template", False):
        extra: dict[str, Any] = dict(options.template_kwargs) if options else {}
        tools = template_tools(tokenizer, options) if options else None
        if tools:
            extra["tools"] = tools
        if options is not None and (note := tool_plan_note(tokenizer, options)):
            messages = forced_call_prompt(messages, note)
        dicts = _as_dicts(messages, template_reads_reasoning(tokenizer))
        return list(tokenizer.apply_chat_template(dicts, add_generation_prompt=True, **extra))
    text = "\n\n".join(m.content for m in messages)
    return list(tokenizer.encode(text))


class Cancelled(Exception):
    """The request was cancelled before its first token (while its prompt was fitted to
    the context, or between prefill chunks)."""


def fit_to_context(
    tokenizer: Any,
    prompt: Prompt,
    chat_template: bool,
    limit: int | None,
    reserve: int,
    cancelled: Callable[[], bool] | None = None,
    options: RequestOptions | None = None,
) -> tuple[list[int], int]:
    """Encode `prompt`, dropping the oldest turns until it fits in `limit - reserve` tokens.

    The system message and the newest message are never dropped or cut.

    Returns:
        The prompt tokens and how many messages were dropped.

    Raises:
        PromptTooLongError: when even the newest message alone does not fit.
    """
    tokens = encode_prompt(tokenizer, prompt, chat_template, options)
    if limit is None or isinstance(prompt, str) or len(tokens) + reserve <= limit:
        if limit is not None and len(tokens) >= limit:
            raise PromptTooLongError(
                f"the prompt is {len(tokens)} tokens, more than the context of {limit}; "
                "shorten it or use a model with a longer context",
                len(tokens),
                limit,
            )
        return tokens, 0
    messages = list(prompt)
    head = messages[:1] if messages and messages[0].role == "system" else []
    body = messages[len(head) :]
    # Where the kept part may start: at a user message, or at the newest message. The
    # token count falls as the start moves on, so a binary search finds the first start
    # that fits in O(log n) encodings (dropping one message at a time was O(n²): a request
    # of 10,000 messages held the engine for minutes).
    starts = [i for i in range(1, len(body)) if body[i].role == "user"]
    if len(body) > 1 and (not starts or starts[-1] != len(body) - 1):
        starts.append(len(body) - 1)
    starts = starts or [0]

    def fits(start: int) -> bool:
        kept = encode_prompt(tokenizer, head + body[start:], chat_template, options)
        return len(kept) + reserve <= limit

    low, high = 0, len(starts) - 1
    while low < high:
        if cancelled is not None and cancelled():
            raise Cancelled
        middle = (low + high) // 2
        if fits(starts[middle]):
            high = middle
        else:
            low = middle + 1
    dropped = starts[low]
    tokens = encode_prompt(tokenizer, head + body[dropped:], chat_template, options)
    if len(tokens) + reserve <= limit:
        return tokens, dropped
    if len(tokens) >= limit:
        raise PromptTooLongError(
            f"the message is {len(tokens)} tokens, more than the context of {limit}; "
            "shorten it or use a model with a longer context",
            len(tokens),
            limit,
        )
    return tokens, dropped


@dataclass
class Fitted:
    """A request's prompt fitted to the context, its answer's token budget, its first stats."""

    prompt: list[int]
    max_tokens: int
    stats: Stats


def fit_request(
    tokenizer: Any,
    request: GenerateRequest,
    context_length: int | None,
    cancelled: Callable[[], bool] | None = None,
) -> Fitted:
    """The prompt tokens of `request` fitted to the smaller of the model's context and the
    request's `max_context` (the oldest turns left out), with `max_tokens` capped at what
    the context has left.

    Raises:
        PromptTooLongError: Even the newest message does not fit.
        Cancelled: The request was cancelled meanwhile.
    """
    params = request.params
    limits = [x for x in (context_length, request.max_context) if x]
    limit = min(limits) if limits else None
    reserve = min(params.max_tokens, limit // 4) if limit else 0
    prompt, dropped = fit_to_context(
        tokenizer,
        request.prompt,
        request.chat_template,
        limit,
        reserve,
        cancelled,
        request.options,
    )
    max_tokens = params.max_tokens if limit is None else min(params.max_tokens, limit - len(prompt))
    stats = Stats(
        dropped_messages=dropped,
        context_limit=limit or 0,
        context_tokens=len(prompt),
        active_memory=mx.get_active_memory() / 1e9,
        peak_memory=mx.get_peak_memory() / 1e9,
    )
    return Fitted(prompt, max_tokens, stats)


class Throttle:
    """True at most once per `interval` seconds (never when interval is None)."""

    def __init__(self, interval: float | None) -> None:
        self.interval = interval
        self.last = 0.0

    def ready(self) -> bool:
        if self.interval is None:
            return False
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False


def run_generation(
    model: Any,
    tokenizer: Any,
    session_for: Callable[[list[int]], CacheSession],
    request: GenerateRequest,
    context_length: int | None,
    emit: Callable[[Event], None],
    cancelled: Callable[[], bool],
) -> None:
    """Generate an answer for `request`, emitting a `Chunk` per token and throttled `Progress`.

    The last chunk has a `finish_reason`. The session's cache ends holding exactly the
    prompt and the tokens fed back into the model.
    """
    start = time.perf_counter()
    params = request.params
    try:
        fitted = fit_request(tokenizer, request, context_length, cancelled)
    except Cancelled:
        emit(Chunk("", None, Stats(), finish_reason="cancelled"))
        return
    prompt, max_tokens, stats = fitted.prompt, fitted.max_tokens, fitted.stats
    tools = plan(tokenizer, request.options)
    session = session_for(prompt)  # the prompt cache's entry for this prompt
    todo = session.prepare(prompt)
    stats.cached_tokens = session.reused
    throttle = Throttle(request.progress_interval)
    prefill_start = time.perf_counter()
    prefilled = 0  # prompt tokens in the cache so far (mlx-lm prefills them in chunks)

    def on_prompt_progress(done: int, total: int) -> None:
        # Called before the prompt's first chunk, after each chunk and after the first
        # token (prefill, then decode): OpenBLAS threads for what the machine allows now.
        nonlocal prefilled
        cpu.prepare_model_call((generation_stream,))
        if done < total:
            prefilled = done
            if cancelled():  # between chunks: the engine is free within one chunk
                raise Cancelled
        if done < total and throttle.ready():
            stats.prompt_tokens = done
            stats.prompt_tps = done / max(time.perf_counter() - prefill_start, 1e-9)
            stats.active_memory = mx.get_active_memory() / 1e9
            stats.peak_memory = mx.get_peak_memory() / 1e9
            emit(Progress("prefill", _snapshot(stats), done, total))

    fed: list[int] = []
    first_token_at = prefill_start
    stopper = StopMatcher(params.stop)
    router = row_router(tokenizer, prompt, request, tools)
    pieces: list[tuple[Any, str]] = []
    finish = None
    if cancelled():  # cancelled while the prompt was encoded
        session.record([])
        emit(Chunk("", None, _snapshot(stats), finish_reason="cancelled"))
        return
    try:
        responses = stream_generate(
            model,
            tokenizer,
            mx.array(todo),
            max_tokens=max_tokens,
            sampler=build_sampler(params),
            logits_processors=row_processors(tokenizer, prompt, request, tools),
            prompt_cache=session.cache,
            prompt_progress_callback=on_prompt_progress,
            prefill_step_size=request.prefill_step_size or default_prefill_step_size(),
        )
        for response in responses:
            now = time.perf_counter()
            if not fed:
                stats.ttft = now - start
                first_token_at = now
            stats.prompt_tokens = response.prompt_tokens
            stats.prompt_tps = response.prompt_tps
            stats.generation_tokens = response.generation_tokens
            # tokens after the first over the time since it (mlx-lm counts the first token
            # in a time that starts with it: absurd speeds on the first tokens)
            stats.generation_tps = decode_rate(response.generation_tokens, now - first_token_at)
            stats.peak_memory = response.peak_memory
            stats.active_memory = mx.get_active_memory() / 1e9
            stats.context_tokens = len(prompt) + response.generation_tokens
            fed.append(response.token)  # mlx-lm fed every token it yields (EOS too)
            pieces, hit_stop = route_step(router, stopper, response.token, response.text)
            for call in router.take_calls():
                emit(Chunk("", None, _snapshot(stats), tool_call=call))
            if hit_stop:
                finish = "stop"
            elif response.finish_reason is not None:
                finish = response.finish_reason
                pieces += route_tail(router, stopper)
            elif cancelled():
                finish = "cancelled"
                pieces += route_tail(router, stopper)
            if finish is not None:
                break
            logprob = token_logprob(tokenizer, response.logprobs, response.token, request.options)
            for chunk in with_logprob(
                step_chunks(pieces, response.token, _snapshot(stats), router.channel), logprob
            ):
                emit(chunk)
            if throttle.ready():
                emit(Progress(phase(router), _snapshot(stats)))
    except Cancelled:
        session.record(todo[:prefilled])
        stats.context_tokens = len(session.ids)
        emit(Chunk("", None, _snapshot(stats), finish_reason="cancelled"))
        return
    except BaseException:
        session.record(todo[:prefilled] if not fed else todo + fed)
        raise
    session.record(todo + fed)
    stats.active_memory = mx.get_active_memory() / 1e9
    stats.context_tokens = len(session.ids)
    token = None if response.finish_reason == "stop" else response.token  # no EOS as text
    for call in router.take_calls():
        emit(Chunk("", None, _snapshot(stats), tool_call=call))
    finish = finish_reason(router.splitter, finish or "length")
    logprob = token_logprob(tokenizer, response.logprobs, token, request.options)
    for chunk in with_logprob(
        step_chunks(pieces, token, _snapshot(stats), router.channel, finish), logprob
    ):
        emit(chunk)


def row_router(
    tokenizer: Any, prompt: list[int], request: GenerateRequest, tools: ToolPlan
) -> ToolCallRoute:
    """A row's text chain, the one place both paths make it: reasoning split off (not for
    a plain continuation, no chat template: raw text), then the tool calls out of the
    answer (see text_router.py)."""
    router = TextRouter.for_prompt(tokenizer, prompt) if request.chat_template else TextRouter()
    return ToolCallRoute(router, tools.splitter)


def row_processors(
    tokenizer: Any, prompt: list[int], request: GenerateRequest, tools: ToolPlan
) -> list[Any]:
    """A row's logits processors: the sampling penalties, the constraint (a response
    format or a forced tool call), then the thinking budget."""
    processors = build_logits_processors(request.params)
    markers = think_markers(tokenizer) if request.chat_template else None
    thinks_first = markers is not None and opens_thinking(tokenizer, prompt)
    start_after = markers[3][-1] if markers is not None and thinks_first else None
    processors += constrain.row_processors(tokenizer, request.options, tools.grammar, start_after)
    limit = request.options.thinking_budget if request.chat_template else None
    budget = ThinkBudget.for_prompt(tokenizer, prompt, limit)
    return processors + ([budget] if budget is not None else [])


def with_logprob(chunks: list[Chunk], logprob: TokenLogprob | None) -> list[Chunk]:
    """A step's chunks, the token's log probability on the one that carries it."""
    if logprob is not None:
        chunks[0].logprob = logprob
    return chunks


def phase(router: ToolCallRoute) -> Literal["thinking", "generating"]:
    """The decode phase a row is in, for its `Progress` events."""
    return "thinking" if router.thinking else "generating"


def decode_rate(tokens: int, seconds: float) -> float:
    """Tokens per second after the first of `tokens`, `seconds` after it came (0: unknown)."""
    return (tokens - 1) / seconds if tokens > 1 and seconds > 0 else 0.0


def _snapshot(stats: Stats) -> Stats:
    return Stats(**asdict(stats))

"""Many answers at once: every active generation is one row of mlx-lm's `BatchGenerator`.

A decode step of a batch of rows costs about what one row costs on a memory-bound machine
(float32 weights on the CPU, Metal, CUDA), so eight answers stream at several times the
total rate of one. A new request joins between two steps: its prompt is prefilled a chunk
per step alongside the others' decoding, shortest prompt first, in chunks cut to a step's
budget (`prefill.py`), so a long prompt never stalls them for more than a chunk. A
finished or cancelled row leaves at once and its KV cache goes back to the prompt cache
for the conversation's next turn.

Each request keeps its own semantics: sampler and repetition penalty (per row), stop
strings (matched here on the text), `max_tokens`, cancel (checked every step), throttled
`Progress` (prefill and decode) and its own stats (time to first token, tok/s).

A row may also verify tokens guessed by prompt lookup in its decode step and keep several
(`verify.py`, the `speculative` setting): its tokens reach `_token` one by one, as before.

mlx-lm internals used (verified on 0.32.2, pinned below 0.33): `BatchGenerator` (`insert`
with caches and token histories, `next`, `remove`), its responses' `finish_reason` and
`prompt_cache`. Prompts join it prefilled (all but their last token, which starts decoding).

Engine thread only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
from mlx_lm.generate import BatchGenerator, generation_stream

from mlxchat.engine import cpu
from mlxchat.engine.draft_model import DraftModel
from mlxchat.engine.generation import (
    Cancelled,
    GenerateRequest,
    StopMatcher,
    Throttle,
    _snapshot,
    decode_rate,
    default_prefill_step_size,
    fit_request,
    phase,
    row_processors,
    row_router,
    with_logprob,
)
from mlxchat.engine.logprobs import token_logprob
from mlxchat.engine.prefill import Prefill, Prefiller
from mlxchat.engine.prompt_cache import PromptCache
from mlxchat.engine.sampling import build_logits_processors, build_sampler
from mlxchat.engine.session import CacheSession
from mlxchat.engine.text_router import Piece, route_step, route_tail, step_chunks
from mlxchat.engine.tool_calls import ToolCallRoute, finish_reason, plan
from mlxchat.engine.types import Chunk, FinishReason, Progress, RequestOptions, Stats, TokenLogprob
from mlxchat.engine.verify import speculative_generator
from mlxchat.engine.worker import DEFERRED, Job

MAX_ROWS = 8
"""The most answers decoded together by default (more wait to join): on a 2-core CPU with
float32 weights, 8 rows decode 5.2x the tokens of one, 16 rows 7.9x at half the pace each."""

PREFILL_ROWS = 8
"""The most prompts prefilled together."""

DECODE_SHARE = 0.05
"""After a step's prompt chunks, the answers being written decode again for up to this
share of the chunks' time: during a long prefill they get more than one token per chunk
(one decode step costs about 5 % of a 256-token chunk on the CPU), and the long prompt
takes at most this much longer for it."""


@dataclass(eq=False)
class _Row:
    """One answer in the batch."""

    job: Job
    session: CacheSession
    prompt: list[int]
    stats: Stats
    detokenizer: Any
    stopper: StopMatcher
    router: ToolCallRoute
    throttle: Throttle
    start: float
    prefill_start: float
    first_token_at: float | None = None
    generated: list[int] = field(default_factory=list)
    options: RequestOptions = field(default_factory=RequestOptions)
    prefill: Prefill | None = None  # the prompt still being prefilled (None: decoding)
    joining: tuple[list[int], int, Any, Any] | None = None
    # what the generator takes when the prefill ends: the last prompt token, max_tokens,
    # the sampler and the logits processors
    speculate: bool = False  # may draft (prompt lookup): no constraint, no thinking budget


class Batch:
    """The batch of a loaded model: admits requests, steps them, ends them.

    Args:
        model: The model.
        tokenizer: Its tokenizer (mlx-lm's wrapper).
        context_length: The model's context (None: unknown).
        cache: The prompt cache rows start from and return to.
        prefill_step_size: Prompt tokens per prefill chunk (None: this machine's default).
        max_rows: The most answers decoded together.
        speculative: "lookup": rows verify prompt-lookup drafts (`verify.py`); "auto": while
            at most `verify.AUTO_ROWS` rows decode; "off": one token per row and step;
            "draft": rows verify the draft model's guesses (prompt lookup when none is set).
        draft_model: A small model with the same tokenizer (None: none); "auto" then
            drafts with it instead of prompt lookup (`draft_model.py`).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        context_length: int | None,
        cache: PromptCache,
        prefill_step_size: int | None,
        max_rows: int = MAX_ROWS,
        speculative: str = "auto",
        draft_model: Any = None,
    ) -> None:
        self.model = model
        self.draft_model = draft_model
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.cache = cache
        self.prefill_step_size = prefill_step_size or default_prefill_step_size()
        self.max_rows = max_rows
        self.speculative = speculative
        self.rows: dict[int, _Row] = {}
        self.prefilling: list[_Row] = []
        self.prefiller = Prefiller(model, self.prefill_step_size)
        self.generator = self._generator()

    def _generator(self) -> BatchGenerator:
        generator = BatchGenerator(
            self.model,
            stop_tokens=[[token] for token in self.tokenizer.eos_token_ids],
            completion_batch_size=self.max_rows,
            prefill_batch_size=min(PREFILL_ROWS, self.max_rows),
            prefill_step_size=self.prefill_step_size,
        )
        self.spec = speculative_generator(generator)  # plain steps while no row drafts
        return generator

    def busy(self) -> bool:
        """Whether any answer is in the batch."""
        return bool(self.rows or self.prefilling)

    def jobs(self) -> list[Job]:
        """The jobs of the answers in the batch (called from any thread: a copy)."""
        return [row.job for row in [*list(self.rows.values()), *list(self.prefilling)]]

    # ----- joining --------------------------------------------------------------------
    def admit(self, job: Job, request: GenerateRequest) -> Any:
        """Fit the request's prompt to the context and add it to the batch; returns
        `DEFERRED` (the job ends when its answer does), or nothing when it was cancelled
        before it joined (its one chunk says so)."""
        start = time.perf_counter()
        params = request.params
        try:
            fitted = fit_request(self.tokenizer, request, self.context_length, job.cancel.is_set)
        except Cancelled:
            job.deliver(Chunk("", None, Stats(), finish_reason="cancelled"))
            return None
        prompt, stats = fitted.prompt, fitted.stats
        tools = plan(self.tokenizer, request.options)
        session = self.cache.session(request.session, prompt)
        todo = session.prepare(prompt)
        stats.cached_tokens = session.reused
        processors = row_processors(self.tokenizer, prompt, request, tools)
        row = _Row(
            job=job,
            session=session,
            prompt=prompt,
            stats=stats,
            detokenizer=self.tokenizer.detokenizer,
            stopper=StopMatcher(params.stop),
            router=row_router(self.tokenizer, prompt, request, tools),
            throttle=Throttle(request.progress_interval),
            start=start,
            prefill_start=time.perf_counter(),
            options=request.options,
            prefill=Prefill(session.cache, todo[:-1]),
            joining=(
                todo[-1:],
                fitted.max_tokens,
                build_sampler(params),
                processors,
            ),
            speculate=(request.options.speculative or self.speculative) != "off"
            and len(processors) == len(build_logits_processors(params)),
        )
        row.detokenizer.reset()
        self.prefilling.append(row)
        if row.throttle.ready():  # prefill starts: "prefill 0/N" at once
            job.deliver(Progress("prefill", _snapshot(stats), 0, len(todo)))
        return DEFERRED

    # ----- stepping -------------------------------------------------------------------
    def step(self) -> None:
        """Drop cancelled answers, then one step, in this order: the prompts that this
        step's budget finishes are prefilled (shortest first) and join; a token for every
        answer being written (the joined ones' first); then the chunks of longer prompts.
        So a short prompt waits for at most the chunk in progress when it came."""
        for uid in [uid for uid, row in self.rows.items() if row.job.cancel.is_set()]:
            self._leave(uid, "cancelled", [])
        for row in [row for row in self.prefilling if row.job.cancel.is_set()]:
            self._drop_prefill(row, None)
        if not self.rows and not self.prefilling:
            return
        cpu.prepare_model_call((generation_stream,))
        plan = self._plan()
        finishing = [(row, size) for row, size in plan if row.prefill and size == row.prefill.left]
        if self._prefill(finishing) and not self._decode():  # joined: their first token
            return
        if self.rows and not self._decode():
            return
        start = time.perf_counter()
        self._prefill([(row, size) for row, size in plan if (row, size) not in finishing])
        deadline = time.perf_counter() + DECODE_SHARE * (time.perf_counter() - start)
        while self.rows and time.perf_counter() < deadline and self._decode():
            pass  # the answers being written get their share of a long prompt's step

    def _plan(self) -> list[tuple[_Row, int]]:
        """This step's prefill chunks (none while the batch is full: the prefilled would
        only wait to join)."""
        if len(self.rows) >= self.max_rows:
            return []
        waiting = {id(row.prefill): row for row in self.prefilling if row.prefill is not None}
        ready = [(row, 0) for row in waiting.values() if row.prefill and row.prefill.left == 0]
        plan = self.prefiller.plan([row.prefill for row in waiting.values() if row.prefill])
        return ready + [(waiting[id(prefill)], size) for prefill, size in plan]

    def _decode(self) -> bool:
        """One decode step of the generator; False when it failed (every answer did)."""
        try:
            _, responses = self.generator.next()
        except Exception as error:  # e.g. out of memory: every answer in the batch fails
            self._fail_all(error)
            return False
        now = time.perf_counter()
        for response in responses:
            if (row := self.rows.get(response.uid)) is not None:
                self._token(response, row, now)
        return True

    def _prefill(self, chunks: list[tuple[_Row, int]]) -> bool:
        """Run prefill chunks; prompts that are in join the generator (True if any did)."""
        joined = False
        for row, size in chunks:
            prefill = row.prefill
            if prefill is None or row not in self.prefilling:
                continue
            try:
                if size:
                    self.prefiller.run(prefill, size)
            except Exception as error:  # e.g. out of memory: this prompt fails
                self._drop_prefill(row, error)
                continue
            total = len(prefill.tokens) + 1
            if size and row.throttle.ready():
                row.stats.prompt_tokens = prefill.done
                elapsed = time.perf_counter() - row.prefill_start
                row.stats.prompt_tps = prefill.done / max(elapsed, 1e-9)
                row.job.deliver(Progress("prefill", _snapshot(row.stats), prefill.done, total))
            if prefill.left == 0:
                self._join(row)
                joined = True
        return joined

    def _join(self, row: _Row) -> None:
        """Hand a prefilled prompt to the generator: its last token starts decoding."""
        assert row.joining is not None
        last, max_tokens, sampler, processors = row.joining
        self.prefilling.remove(row)
        row.prefill = row.joining = None
        (uid,) = self.generator.insert(
            [last],
            max_tokens=[max_tokens],
            caches=[row.session.cache],
            all_tokens=[row.prompt[:-1]],
            samplers=[sampler],
            logits_processors=[processors],
        )
        if row.speculate:
            mode = row.options.speculative or self.speculative
            drafter = None
            if self.draft_model is not None and mode in ("auto", "draft"):
                drafter = DraftModel(self.draft_model)
            self.spec.watch(uid, always=mode in ("lookup", "draft"), drafter=drafter)
        self.rows[uid] = row

    def _drop_prefill(self, row: _Row, error: Exception | None) -> None:
        """End a row still being prefilled: cancelled (the cache keeps what went in) or
        failed (the cache starts afresh)."""
        self.prefilling.remove(row)
        if error is not None:
            row.session.reset()
            row.job.finish(error)
            return
        if row.prefill is not None:
            row.session.record(row.prefill.tokens[: row.prefill.done])
        row.stats.context_tokens = len(row.session.ids)
        row.job.deliver(Chunk("", None, _snapshot(row.stats), finish_reason="cancelled"))
        row.job.finish()
        self.cache.fit()

    def _token(self, response: Any, row: _Row, now: float) -> None:
        stats = row.stats
        if row.first_token_at is None:
            row.first_token_at = now
            stats.ttft = now - row.start
            stats.prompt_tokens = len(row.prompt) - stats.cached_tokens
            stats.prompt_tps = stats.prompt_tokens / max(now - row.prefill_start, 1e-9)
        row.generated.append(response.token)
        stats.generation_tokens = len(row.generated)
        stats.generation_tps = decode_rate(len(row.generated), now - row.first_token_at)
        stats.context_tokens = len(row.prompt) + len(row.generated)
        stats.active_memory = mx.get_active_memory() / 1e9
        stats.peak_memory = max(stats.peak_memory, mx.get_peak_memory() / 1e9)
        stats.draft_tokens, stats.accepted_tokens = self.spec.counts(response.uid)
        eos = response.finish_reason == "stop"
        if not eos:
            row.detokenizer.add_token(response.token)
        if response.finish_reason is not None:
            row.detokenizer.finalize()
        token = None if eos else response.token
        pieces, hit_stop = route_step(row.router, row.stopper, token, row.detokenizer.last_segment)
        for call in row.router.take_calls():
            row.job.deliver(Chunk("", None, _snapshot(stats), tool_call=call))
        if hit_stop:
            self._leave(response.uid, "stop", pieces)
        elif response.finish_reason is not None:
            self._finish(response.uid, response, pieces + route_tail(row.router, row.stopper), eos)
        else:
            logprob = token_logprob(self.tokenizer, response.logprobs, response.token, row.options)
            chunks = step_chunks(pieces, response.token, _snapshot(stats), row.router.channel)
            for chunk in with_logprob(chunks, logprob):
                row.job.deliver(chunk)
            if row.throttle.ready():
                row.job.deliver(Progress(phase(row.router), _snapshot(stats)))

    # ----- leaving --------------------------------------------------------------------
    def _fail_all(self, error: Exception) -> None:
        rows, self.rows = list(self.rows.values()), {}
        rows += self.prefilling
        self.prefilling = []
        self.generator = self._generator()
        for row in rows:
            row.job.finish(error)

    def _leave(self, uid: int, finish: FinishReason, pieces: list[Piece]) -> None:
        """End a row before the batch ended it (cancel, a stop string)."""
        caches = self.generator.remove([uid], return_prompt_caches=True)
        row = self.rows[uid]
        found = caches.get(uid)
        tail = [] if finish == "stop" else route_tail(row.router, row.stopper)
        self._end(uid, found[0] if found else None, finish, pieces + tail, None)

    def _finish(self, uid: int, response: Any, pieces: list[Piece], eos: bool) -> None:
        token = None if eos else response.token
        logprob = token_logprob(self.tokenizer, response.logprobs, token, self.rows[uid].options)
        self._end(uid, response.prompt_cache, response.finish_reason, pieces, token, logprob)

    def _end(
        self,
        uid: int,
        cache: list[Any] | None,
        finish: FinishReason,
        pieces: list[Piece],
        token: int | None,
        logprob: TokenLogprob | None = None,
    ) -> None:
        row = self.rows.pop(uid)
        finish = finish_reason(row.router.splitter, finish)
        if cache is not None:  # the conversation's next turn starts from it
            row.session.cache = cache
            row.session.ids = []
            row.session.record(row.prompt + row.generated)
            self.cache.finished(row.session, idle=not self.busy())  # to the disk tier
        row.stats.context_tokens = len(row.session.ids) or row.stats.context_tokens
        row.stats.active_memory = mx.get_active_memory() / 1e9
        if not self.rows:  # nothing left in flight when the engine thread parks
            mx.synchronize(generation_stream)
        for call in row.router.take_calls():
            row.job.deliver(Chunk("", None, _snapshot(row.stats), tool_call=call))
        chunks = step_chunks(pieces, token, _snapshot(row.stats), row.router.channel, finish)
        for chunk in with_logprob(chunks, logprob):
            row.job.deliver(chunk)
        row.job.finish()
        self.cache.fit()

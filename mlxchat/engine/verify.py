"""Speculative decoding inside the batch: rows verify their drafts in the decode step.

`SpeculativeBatch` is the decode half of mlx-lm's `BatchGenerator` (its
`GenerationBatch`) with one more kind of step. When a watched row has a draft
(`speculative.PromptLookup`), the step feeds every row its pending token followed by its
draft, padded to the longest: a (rows, 1 + k) input in one forward pass. Each row then
keeps its pending token and the draft tokens its own sampler chose at each position (the
first mismatch ends them), and the sample after the last kept token becomes its next
pending token. So each row accepts its own number of tokens, and rows without a draft
decode one, as before. Steps where no row drafts are mlx-lm's own, unchanged.

Semantics kept per row:
- greedy rows produce exactly the tokens of plain decoding (up to float rounding of a wider
  matrix product);
- sampled rows: a prompt-lookup draft is one token with certainty, so "accept the draft
  token while the row's sample equals it, else keep the sample" is the standard
  speculative acceptance rule (accept with probability p(d), else draw from p without d):
  the output distribution is unchanged;
- the repetition penalty sees, at each position, the context extended by the draft
  tokens before it;
- end-of-sequence tokens and `max_tokens` cut the kept tokens where plain decoding would
  have stopped; stop strings and cancel are the batch's, per token, as before.

Rows with a constraint or a thinking budget (stateful logits processors) are not watched:
they decode plainly. Speculation needs every layer's cache to be a `BatchKVCache` (rows
trimmed per row); a model with rotating or recurrent caches decodes plainly.

KV caches are trimmed per row: the batch's common rejection by `trim`, the rest by rolling
each row right by its own count (mlx-lm's `prepare(right_padding=)` + `finalize`), which
turns a row's rejected tail into left padding.

mlx-lm internals used (verified on 0.32.2, pinned below 0.33): `GenerationBatch`
(`_step`, `next`, `filter`, `extract_cache`, `empty`, and its `uids`, `tokens`,
`samplers`, `fallback_sampler`, `logits_processors`, `max_tokens`, `prompt_cache`,
`_next_tokens`, `_next_logprobs`, `_token_context`, `_num_tokens`, `_matchers`),
`BatchGenerator._generation_batch` (replaced by this class while empty), `BatchKVCache`
(`trim`, `prepare`, `finalize`, `offset`).

Engine thread only.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
from mlx_lm.generate import BatchGenerator, GenerationBatch
from mlx_lm.models.cache import BatchKVCache

from mlxchat.engine.speculative import Drafter, PromptLookup

STEP_TOKENS = 16
"""The most tokens one speculative step feeds (rows x (1 + draft)): a row's draft is cut
to this share of it."""

AUTO_ROWS = 2
"""In "auto" mode a row drafts only while at most this many rows decode: a fuller batch
already uses the capacity a draft would (on the 2-core CPU, 8 clients, half of them
rewriting, made 0.64x the tokens of plain decoding with every row drafting; see
benchmarks/speculative.py). "lookup" rows draft in any batch."""


class SpeculativeBatch(GenerationBatch):
    """mlx-lm's decode batch whose watched rows verify prompt-lookup drafts."""

    drafters: dict[int, Drafter]
    pending: dict[int, int]
    always: set[int]

    def watch(self, uid: int, always: bool = False, drafter: Drafter | None = None) -> None:
        """Let row `uid` draft from its next step on: while the batch is small ("auto"), or
        `always` ("lookup", "draft"); with `drafter` (None: a `PromptLookup`)."""
        self.drafters[uid] = drafter or PromptLookup()
        if always:
            self.always.add(uid)

    def counts(self, uid: int) -> tuple[int, int]:
        """Row `uid`'s drafted and accepted tokens so far."""
        drafter = self.drafters.get(uid)
        return (drafter.drafted, drafter.accepted) if drafter else (0, 0)

    def next(self) -> list[Any]:
        if len(self.drafters) > len(self.uids):  # rows that left (their counts were read)
            live = set(self.uids)
            self.drafters = {uid: d for uid, d in self.drafters.items() if uid in live}
            self.always &= live
        drafts = self._drafts()
        if drafts is None:
            self.pending = {}  # the plain step leaves the next tokens unevaluated
            return super().next()
        return self._verify(drafts)

    # ----- drafting -------------------------------------------------------------------
    def _drafts(self) -> list[list[int]] | None:
        """Each row's draft this step (None: no row has one)."""
        if not self.uids or not self.drafters:
            return None
        if not all(type(c) is BatchKVCache for c in self.prompt_cache):
            return None
        crowded = len(self.uids) > AUTO_ROWS
        if crowded and not self.always:
            return None
        room = max(STEP_TOKENS // len(self.uids) - 1, 1)
        drafts: list[list[int]] = []
        known: Any = None
        for i, uid in enumerate(self.uids):
            drafter = self.drafters.get(uid)
            if drafter is None or (crowded and uid not in self.always):
                drafts.append([])
                continue
            drafter.extend(self.tokens[i][len(drafter.tokens) :])
            left = self.max_tokens[i] - self._num_tokens[i] - 1
            pending = self.pending.get(uid)
            if pending is None and getattr(drafter, "needs_pending", False) and left > 0:
                if known is None:  # a sync, after a plain step
                    known = self.pending_tokens()
                pending = known[i]
            drafts.append(drafter.draft(pending, min(room, left)))
        return drafts if any(drafts) else None

    def pending_tokens(self) -> Any:
        """Every row's pending token (evaluates the last plain step's samples)."""
        tokens: Any = self._next_tokens
        return tokens.tolist()

    # ----- verifying ------------------------------------------------------------------
    def _verify(self, drafts: list[list[int]]) -> list[Any]:
        """One step that feeds every row its pending token and its draft."""
        rows = len(self.uids)
        width = 1 + max(len(d) for d in drafts)
        pending = self._next_tokens
        before = self._next_logprobs
        padded = mx.array([d + [0] * (width - 1 - len(d)) for d in drafts], dtype=pending.dtype)
        inputs = mx.concatenate([pending[:, None], padded], axis=1)
        logits = self.model(inputs, cache=self.prompt_cache)
        logits = self._processed(logits, pending, drafts)
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        sampled = self._sample(logprobs)
        mx.eval(sampled, pending, before)
        chosen: Any = sampled.tolist()
        firsts: Any = pending.tolist()
        processors: Any = self.logits_processors

        responses: list[Any] = []
        keep: list[int] = []
        excess: list[int] = []
        finished: list[tuple[int, list[Any]]] = []
        nexts: list[int] = []
        next_logprobs: list[mx.array] = []
        for i, uid in enumerate(self.uids):
            draft = drafts[i]
            accepted = 0
            while accepted < len(draft) and draft[accepted] == chosen[i][accepted]:
                accepted += 1
            if (drafter := self.drafters.get(uid)) is not None:
                drafter.record(len(draft), accepted)
            emitted = [firsts[i], *draft[:accepted]]
            row_logprobs = [before[i], *(logprobs[i, j] for j in range(accepted))]
            reasons: list[str | None] = []
            for token in emitted:
                self._num_tokens[i] += 1
                reason = "length" if self._num_tokens[i] >= self.max_tokens[i] else None
                if self._matchers[i].advance(token):
                    reason = "stop"
                reasons.append(reason)
                if reason is not None:
                    break
            emitted = emitted[: len(reasons)]
            self.tokens[i].extend(emitted)
            if processors and processors[i] and len(emitted) > 1:
                self._token_context[i].update_and_fetch(mx.array(emitted[1:], dtype=mx.int32))
            excess.append(width - len(emitted))
            nexts.append(chosen[i][accepted])
            next_logprobs.append(logprobs[i, accepted])
            self.pending[uid] = chosen[i][accepted]
            items = list(zip(emitted, row_logprobs, reasons, strict=False))
            if reasons[-1] is None:
                keep.append(i)
            else:
                finished.append((i, items))
            responses.append((i, items))
        trim_rows(self.prompt_cache, excess)
        self._next_tokens = mx.array(nexts, dtype=pending.dtype)
        self._next_logprobs = next_logprobs
        self._current_tokens = pending  # type: ignore[assignment]
        self._current_logprobs = before
        caches = {i: self.extract_cache(i) for i, _ in finished}

        out: list[Any] = []
        for i, items in responses:
            for token, logprob, reason in items:
                done = reason is not None
                out.append(
                    self.Response(
                        uid=self.uids[i],
                        token=token,
                        logprobs=logprob,
                        finish_reason=reason,
                        prompt_cache=caches[i] if done else None,
                        all_tokens=self.tokens[i] if done else None,
                    )
                )
        if len(keep) < rows:
            self.filter(keep)
        return out

    def _processed(self, logits: mx.array, pending: mx.array, drafts: list[list[int]]) -> mx.array:
        """The logits after each row's processors, position by position: position j of a
        row sees its context extended by its pending token and draft tokens before j."""
        every: Any = self.logits_processors
        if not every or not any(every):
            return logits
        rows = []
        for e in range(len(self.uids)):
            processors = every[e] or ()
            if not processors:
                rows.append(logits[e])
                continue
            context = self._token_context[e].update_and_fetch(pending[e : e + 1])
            draft = drafts[e]
            positions = []
            for j in range(logits.shape[1]):
                row = logits[e, j : j + 1]
                if j <= len(draft):
                    seen = context
                    if j:
                        extra = mx.array(draft[:j], dtype=context.dtype)
                        seen = mx.concatenate([context, extra])
                    for processor in processors:
                        row = processor(seen, row)
                positions.append(row)
            rows.append(mx.concatenate(positions, axis=0))
        return mx.stack(rows)

    def _sample(self, logprobs: mx.array) -> mx.array:
        """Each row's sampler at each position: (rows, width) tokens."""
        rows, width, vocab = logprobs.shape
        given: list[Any] = list(self.samplers or []) or [None] * rows
        samplers = [self.fallback_sampler if s is None else s for s in given]
        if all(s is samplers[0] for s in samplers):
            return samplers[0](logprobs.reshape(rows * width, vocab)).reshape(rows, width)
        return mx.stack([s(logprobs[e]) for e, s in enumerate(samplers)])


def trim_rows(caches: list[Any], excess: list[int]) -> None:
    """Drop `excess[i]` tokens from the end of row i of every layer's `BatchKVCache`."""
    common = min(excess)
    rest = [n - common for n in excess]
    for cache in caches:
        if common:
            cache.trim(common)
        if any(rest):
            cache.prepare(right_padding=rest)
            cache.finalize()


def speculative_generator(generator: BatchGenerator) -> SpeculativeBatch:
    """Give an empty `BatchGenerator` a `SpeculativeBatch` as its decode batch."""
    batch = SpeculativeBatch.empty(generator.model, generator.sampler)
    assert isinstance(batch, SpeculativeBatch)
    batch.drafters = {}
    batch.pending = {}
    batch.always = set()
    generator._generation_batch = batch
    return batch

"""The engine facade: async and blocking APIs over the one thread that owns MLX.

    engine = Engine()
    await engine.load("demo")
    async for event in engine.stream("Hello"):
        if isinstance(event, Chunk):
            print(event.text, end="")

Requests are served one after another in arrival order. A stream is cancelled by
`stream.cancel()`, `engine.cancel()`, leaving the `async for` loop (the stream is closed when
dropped), or cancelling the task that iterates it; generation stops within one token and
the cache stays consistent.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import os
import queue
import weakref
from collections.abc import Callable, Generator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from mlxchat.engine.contract import ModelJob
from mlxchat.engine.runtime import import_runtime
from mlxchat.engine.types import (
    Chunk,
    EngineError,
    Event,
    LoadProgress,
    ModelInfo,
    ModelLoadError,
    Progress,
    RequestOptions,
    Result,
    SamplingParams,
)
from mlxchat.engine.worker import Done, EngineThread, Failed, Job, JobFn, async_channel

Prompt = Any  # str | Sequence[Message]; see generation.Prompt (kept MLX-free here)


class _Loaded:
    """What the engine thread holds for the current model (engine thread only)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        info: ModelInfo,
        cache_budget: int,
        batched: bool,
        disk: Any = None,
    ) -> None:
        from mlxchat.engine.prompt_cache import PromptCache

        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.cache = PromptCache(model, cache_budget, copies=batched, disk=disk)
        self.batch: Any = None
        self.draft: Any = None  # the draft model (None: none)


class EventStream:
    """An async iterator of one request's events; cancels the request when closed or dropped."""

    def __init__(self, job: Job, inbox: asyncio.Queue[Any]) -> None:
        self._job = job
        self._inbox = inbox
        self._finished = False
        self.value: Any = None

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        try:
            item = await self._inbox.get()
        except asyncio.CancelledError:
            self.cancel()
            raise
        if isinstance(item, Done):
            self._finished = True
            self.value = item.value
            raise StopAsyncIteration
        if isinstance(item, Failed):
            self._finished = True
            raise item.error
        return item

    def cancel(self) -> None:
        """Ask the engine to stop this request (it ends with finish_reason `cancelled`)."""
        self._job.cancel.set()

    @property
    def finished(self) -> bool:
        """Whether the request has ended (its last event was consumed)."""
        return self._finished

    async def aclose(self) -> None:
        """Cancel the request if still running and wait until the engine let go of it."""
        if not self._finished:
            self.cancel()
            async for _ in self:
                pass

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if not self._finished:
            self._job.cancel.set()


class Engine:
    """Loads models and generates text on a dedicated thread.

    Args:
        progress_interval: Seconds between `Progress` events in streams (tokens are never
            throttled).
        fast_cpu: Apply the CPU fast path (float32 weights with OpenBLAS) when on the CPU.
        prefill_step_size: Prompt tokens per model call (a prefill `Progress` event at most
            per step); None: the default for this machine.
        prompt_cache_bytes: The most bytes the prompt cache's entries hold together (None:
            `default_cache_budget()`, a tenth of the machine's memory).
        max_batch: The most answers generated together (more wait to join the batch).
        batched: Answer many requests at once (False: one after another, as a distributed
            model's lockstep needs, and the single-stream baseline of the benchmarks).
        prompt_cache_disk_bytes: The most bytes of prompt caches kept on disk across runs
            (0: no disk tier; see `disk_cache.py`).
        prompt_cache_dir: Where they are kept (None: `<cache dir>/prompts`).
        speculative: Speculative decoding in the batch: "lookup" (rows verify prompt-lookup
            drafts, see `verify.py`), "auto" (while at most 2 rows decode), "off", "draft"
            (the draft model's guesses).
        draft_model: The name of a small model with the main model's tokenizer, loaded with
            it to draft tokens (None: none; see `draft_model.py`).
    """

    def __init__(
        self,
        *,
        progress_interval: float = 0.25,
        fast_cpu: bool = True,
        prefill_step_size: int | None = None,
        prompt_cache_bytes: int | None = None,
        max_batch: int = 8,
        batched: bool = True,
        prompt_cache_disk_bytes: int = 0,
        prompt_cache_dir: Path | None = None,
        speculative: str = "auto",
        draft_model: str | None = None,
    ) -> None:
        from mlxchat.engine.cpu import setup_process

        setup_process()  # the fast BLAS, when MLX is not imported yet (see engine/blas.py)
        self.progress_interval = progress_interval
        self.fast_cpu = fast_cpu
        self.prefill_step_size = prefill_step_size
        self.prompt_cache_bytes = prompt_cache_bytes or default_cache_budget()
        self.max_batch = max_batch
        self.batched = batched
        self.prompt_cache_disk_bytes = prompt_cache_disk_bytes
        self.prompt_cache_dir = prompt_cache_dir
        self.speculative = speculative
        self.draft_model = draft_model or None
        self._thread = EngineThread()
        self._thread.submit(Job(lambda emit, cancelled: import_runtime(), lambda item: None))
        atexit.register(_close_at_exit, weakref.ref(self))
        self._loaded: _Loaded | None = None
        self._streams: set[Job] = set()

    # ----- plumbing -------------------------------------------------------------------
    def submit_async(self, fn: JobFn, *, exclusive: bool = False) -> EventStream:
        """Run `fn(emit, cancelled)` on the engine thread; iterate what it emits.

        Args:
            fn: The job.
            exclusive: Run it only while no answer is in the batch (a model switch).
        """
        deliver, inbox = async_channel(asyncio.get_running_loop())
        job = self._thread.submit(Job(fn, deliver, exclusive=exclusive))
        return EventStream(job, inbox)

    def submit_sync(self, fn: JobFn, *, exclusive: bool = False) -> Generator[Any, None, Any]:
        """Blocking counterpart of `submit_async`; closing the iterator cancels the job."""
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        job = self._thread.submit(Job(fn, inbox.put, exclusive=exclusive))
        done = False
        try:
            while True:
                item = inbox.get()
                if isinstance(item, Done):
                    done = True
                    return item.value
                if isinstance(item, Failed):
                    done = True
                    raise item.error
                yield item
        finally:
            if not done:
                job.cancel.set()
                while not isinstance(inbox.get(), Done | Failed):
                    pass

    async def call(self, fn: Callable[[], Any], *, exclusive: bool = False) -> Any:
        """Run `fn()` on the engine thread and return its result."""
        stream = self.submit_async(lambda emit, cancelled: fn(), exclusive=exclusive)
        async for _ in stream:
            pass
        return stream.value

    def call_sync(self, fn: Callable[[], Any], *, exclusive: bool = False) -> Any:
        """Blocking `call`."""
        iterator = self.submit_sync(lambda emit, cancelled: fn(), exclusive=exclusive)
        try:
            while True:
                next(iterator)
        except StopIteration as stop:
            return stop.value

    def _with_model_job(self, fn: ModelJob) -> JobFn:
        def job(emit: Callable[[Any], None], cancelled: Callable[[], bool]) -> Any:
            loaded = self._loaded
            if loaded is None:
                raise EngineError("no model is loaded; load one first (e.g. `demo`)")
            return fn(loaded.model, loaded.tokenizer, emit, cancelled)

        return job

    def with_model(self, fn: ModelJob) -> EventStream:
        """Run `fn(model, tokenizer, emit, cancelled)` on the engine thread; iterate its events.

        For algorithms that drive the model themselves (e.g. simultaneous translation).
        """
        return self.submit_async(self._with_model_job(fn))

    def with_model_sync(self, fn: ModelJob) -> Generator[Any, None, Any]:
        """Blocking `with_model`."""
        return self.submit_sync(self._with_model_job(fn))

    # ----- models ---------------------------------------------------------------------
    @property
    def model_info(self) -> ModelInfo | None:
        """The loaded model, or None."""
        return self._loaded.info if self._loaded else None

    def _load_job(self, name: str) -> JobFn:
        def job(emit: Callable[[Any], None], cancelled: Callable[[], bool]) -> ModelInfo:
            from mlxchat.engine.blas_hint import slow_blas_hint
            from mlxchat.models import loader as models

            # a bad name (or a failed download) fails here, the old model kept
            models.resolve_model(name, on_progress=emit, cancelled=cancelled)
            previous = self._loaded
            if previous is not None:  # free the old model before loading the new one
                self._loaded = None
                self._thread.stepper = None
                previous.cache.flush()
                del previous.model, previous.cache, previous.batch
                _free_memory()
            try:
                model, tokenizer, info = models.load_model(
                    name, fast_cpu=self.fast_cpu, on_progress=emit
                )
            except ModelLoadError:
                self._reload(previous, emit)
                raise
            except Exception as error:  # a loader bug or a broken model: one line for users
                self._reload(previous, emit)
                raise ModelLoadError(f"could not load model '{name}': {error}") from error
            try:
                draft = self._load_draft(name, tokenizer, emit)
            except ModelLoadError:  # the pair does not fit: the previous model comes back
                del model, tokenizer
                _free_memory()
                self._reload(previous, emit)
                raise
            info = replace(info, notice=slow_blas_hint() or "")
            self._serve(model, tokenizer, info, draft=draft)
            emit(LoadProgress(name, "ready", 1.0))
            return info

        return job

    def _load_draft(self, main: str, tokenizer: Any, emit: Callable[[Any], None]) -> Any:
        """The draft model for `main` (None: none set), its tokenizer checked against
        `tokenizer`.

        Raises:
            ModelLoadError: One line: it cannot be loaded, or its tokenizer differs.
        """
        if not self.draft_model:
            return None
        from mlxchat.engine.draft_model import check_pair
        from mlxchat.models import loader as models

        name = self.draft_model
        try:
            models.resolve_model(name, on_progress=emit)
            model, draft_tokenizer, _ = models.load_model(
                name, fast_cpu=self.fast_cpu, on_progress=emit
            )
        except ModelLoadError as error:
            raise ModelLoadError(f"draft model: {error}") from None
        except Exception as error:  # a loader bug or a broken model: one line for users
            raise ModelLoadError(f"could not load draft model '{name}': {error}") from error
        check_pair(main, tokenizer, name, draft_tokenizer, model)
        return model

    def _reload(self, previous: _Loaded | None, emit: Callable[[Any], None]) -> None:
        """Bring the previous model back after a failed switch."""
        if previous is None:
            return
        from mlxchat.models import loader as models

        name = previous.info.name
        emit(LoadProgress(name, f"reloading {name}", None))
        model, tokenizer, info = models.load_model(name, fast_cpu=self.fast_cpu)
        self._serve(model, tokenizer, info, draft=previous.draft)

    def adopt(self, load: Callable[[], tuple[Any, Any, ModelInfo]]) -> ModelInfo:
        """Blocking: serve the model `load()` returns (run on the engine thread), e.g. a
        shard of a distributed model.

        Raises:
            Whatever `load` raises; the previous model is then still loaded.
        """

        def job() -> ModelInfo:
            model, tokenizer, info = load()
            self._serve(model, tokenizer, info, batched=False)  # lockstep: one call at a time
            return info

        return self.call_sync(job, exclusive=True)

    def _serve(
        self, model: Any, tokenizer: Any, info: ModelInfo, batched: bool = True, draft: Any = None
    ) -> None:
        """Hold a loaded model (engine thread): its prompt cache, its batch and its draft
        model."""
        batched = batched and self.batched
        disk = self._disk_tier(tokenizer, info) if batched else None
        loaded = _Loaded(model, tokenizer, info, self.prompt_cache_bytes, batched, disk)
        loaded.draft = draft
        if batched:
            from mlxchat.engine.batching import Batch

            loaded.batch = Batch(
                model,
                tokenizer,
                info.context_length,
                loaded.cache,
                self.prefill_step_size,
                self.max_batch,
                self.speculative,
                draft,
            )
        self._loaded = loaded
        self._thread.stepper = loaded.batch

    def _disk_tier(self, tokenizer: Any, info: ModelInfo) -> Any:
        """The prompt cache's disk tier for a model (None: off, or a model with no folder)."""
        if self.prompt_cache_disk_bytes <= 0:
            return None
        from mlxchat.engine.disk_cache import DiskCache, default_dir, model_identity

        identity = model_identity(info.path, info.dtype, tokenizer)
        if not identity:
            return None
        root = self.prompt_cache_dir or default_dir()
        return DiskCache(root, identity, self.prompt_cache_disk_bytes)

    async def load(
        self, name: str, on_progress: Callable[[LoadProgress], None] | None = None
    ) -> ModelInfo:
        """Load `name` (demo, a .gguf file, an MLX dir or a cached HF repo id).

        Raises:
            ModelLoadError: with the reason; the previously loaded model stays loaded.
        """
        from mlxchat.models.prefetch import prefetch

        await prefetch(name, on_progress)  # off the engine thread: the old model answers on
        stream = self.submit_async(self._load_job(name), exclusive=True)
        async for event in stream:
            if on_progress is not None:
                on_progress(event)
        return stream.value

    def load_sync(
        self, name: str, on_progress: Callable[[LoadProgress], None] | None = None
    ) -> ModelInfo:
        """Blocking `load`."""
        iterator = self.submit_sync(self._load_job(name), exclusive=True)
        try:
            while True:
                event = next(iterator)
                if on_progress is not None:
                    on_progress(event)
        except StopIteration as stop:
            return stop.value

    # ----- generation -----------------------------------------------------------------
    def _generate_job(
        self,
        prompt: Prompt,
        params: SamplingParams,
        session: str | None,
        chat_template: bool,
        max_context: int | None,
        progress: bool,
        options: RequestOptions,
    ) -> JobFn:
        def job(emit: Callable[[Any], None], cancelled: Callable[[], bool]) -> None:
            from mlxchat.engine.generation import GenerateRequest, run_generation

            loaded = self._loaded
            if loaded is None:
                raise EngineError("no model is loaded; load one first (e.g. `demo`)")
            try:
                params.check()
            except ValueError as error:
                raise EngineError(str(error)) from None
            if isinstance(prompt, str) and not prompt.strip():
                raise EngineError("the prompt is empty; give some text to answer")
            request = GenerateRequest(
                prompt,
                params,
                session,
                chat_template,
                self.progress_interval if progress else None,
                max_context,
                self.prefill_step_size,
                options,
            )
            if loaded.batch is not None:  # joins the batch; ends when its answer does
                return loaded.batch.admit(self._thread.current, request)
            try:
                run_generation(
                    loaded.model,
                    loaded.tokenizer,
                    lambda tokens: loaded.cache.session(session, tokens),
                    request,
                    loaded.info.context_length,
                    emit,
                    cancelled,
                )
            finally:
                loaded.cache.fit()

        return job

    def stream(
        self,
        prompt: Prompt,
        params: SamplingParams | None = None,
        *,
        session: str | None = None,
        chat_template: bool = True,
        max_context: int | None = None,
        progress: bool = True,
        options: RequestOptions | None = None,
    ) -> EventStream:
        """Stream `Chunk`s (one per token) and throttled `Progress` events for `prompt`.

        Args:
            prompt: A user prompt, or the whole conversation as `Message`s.
            params: Sampling settings (greedy defaults when None).
            session: Keep the KV cache under this name across calls, so a conversation's
                next turn prefills only its new tokens (None: the prompt cache's entry that
                shares the longest prefix with the prompt).
            chat_template: Apply the model's chat template.
            max_context: Cap the context below the model's own; the oldest turns are left
                out of the prompt to fit (reported in `Stats.dropped_messages`).
            progress: Emit `Progress` events every `progress_interval` seconds.
            options: Tools, a response format, logprobs, template variables.
        """
        job = self._generate_job(
            prompt,
            params or SamplingParams(),
            session,
            chat_template,
            max_context,
            progress,
            options or RequestOptions(),
        )
        return self.submit_async(job)

    async def generate(
        self, prompt: Prompt, params: SamplingParams | None = None, **kw: Any
    ) -> Result:
        """The whole answer at once: exactly the streamed text joined."""
        return _collect([e async for e in self.stream(prompt, params, progress=False, **kw)])

    def iterate(
        self, prompt: Prompt, params: SamplingParams | None = None, **kw: Any
    ) -> Generator[Event, None, Any]:
        """Blocking stream for scripts; same arguments as `stream`."""
        progress = kw.pop("progress", True)
        job = self._generate_job(
            prompt,
            params or SamplingParams(),
            kw.pop("session", None),
            kw.pop("chat_template", True),
            kw.pop("max_context", None),
            progress,
            kw.pop("options", None) or RequestOptions(),
        )
        if kw:
            raise TypeError(f"unexpected arguments: {', '.join(kw)}")
        return self.submit_sync(job)

    def generate_sync(
        self, prompt: Prompt, params: SamplingParams | None = None, **kw: Any
    ) -> Result:
        """Blocking `generate`."""
        return _collect(list(self.iterate(prompt, params, progress=False, **kw)))

    def cancel(self) -> None:
        """Stop the requests the engine is running now (queued ones still run)."""
        for job in self._thread.running():
            job.cancel.set()

    async def reset_session(self, session: str) -> None:
        """Forget a session's cache (e.g. for a new conversation)."""

        def drop() -> None:
            if self._loaded is not None:
                self._loaded.cache.drop(session)

        await self.call(drop)

    def prompt_cache_report(self) -> dict[str, int] | None:
        """The prompt cache now: entries, bytes and budget (None: no model loaded)."""
        loaded = self._loaded
        return None if loaded is None else asdict(loaded.cache.report())

    async def count_tokens(
        self, prompt: Prompt, chat_template: bool = True, options: RequestOptions | None = None
    ) -> int:
        """How many tokens `prompt` takes with the loaded model's tokenizer."""

        def count() -> int:
            from mlxchat.engine.generation import encode_prompt  # on the engine thread

            if self._loaded is None:
                raise EngineError("no model is loaded")
            return len(encode_prompt(self._loaded.tokenizer, prompt, chat_template, options))

        return await self.call(count)

    def close(self) -> None:
        """Cancel what runs and what is queued, wait for the engine thread to let go, and
        free the model (the idle daemon thread stays parked).

        Leaving the process while the engine thread is inside MLX aborts it ("terminate
        called without an active exception"): entry points close the engine before exit.
        """
        self._thread.cancel_all()

        def unload() -> None:
            if self._loaded is not None:
                self._loaded.cache.flush()  # the last answers' caches reach the disk
            self._loaded = None
            self._thread.stepper = None
            _free_memory()

        self.call_sync(unload, exclusive=True)


def _collect(events: list[Event]) -> Result:
    chunks = [e for e in events if isinstance(e, Chunk)]
    last = chunks[-1]
    return Result(
        text="".join(c.text for c in chunks if c.channel == "answer"),
        finish_reason=last.finish_reason or "length",
        stats=last.stats,
        tokens=[c.token for c in chunks if c.token is not None],
        reasoning="".join(c.text for c in chunks if c.channel == "reasoning"),
        tool_calls=[c.tool_call for c in chunks if c.tool_call is not None],
    )


def _close_at_exit(engine: weakref.ref[Engine]) -> None:
    """An engine still holding a model at exit frees it on its own thread: MLX objects
    destroyed by the interpreter's teardown on another thread aborted the process
    ("terminate called without an active exception") in about one exit of two."""
    alive = engine()
    if alive is not None and alive._loaded is not None:
        alive.close()


def default_cache_budget() -> int:
    """A tenth of the machine's memory, at least 256 MB (the prompt cache's default)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 * 1024**3
    return max(memory // 10, 256 * 1024**2)


def _free_memory() -> None:
    """Release MLX buffers that nothing refers to any more (engine thread only)."""
    import mlx.core as mx

    gc.collect()
    mx.clear_cache()


__all__ = ["Engine", "EventStream", "Progress", "Chunk"]

"""How well the chat UI keeps up with a fast model, measured on the real app run headless.

Part 1 — rendering. A scripted engine thread pushes tokens at a fixed rate (default 2,000
tok/s, 20,000 tokens: Markdown prose with lists and code blocks) into the real `ChatApp`,
whose conversation already holds 200 earlier messages (a resumed chat). For every token it
records when it was emitted and when it was on screen: parsed into the answer's view (its
`flush`, which marks the changed rows) and then painted (the next compositor refresh; the
suite checks that a flush's rows are in that paint). It prints the lag
(max, p99, median), the UI's CPU time per 1,000 tokens (process CPU time minus the emitter
thread's), and checks that the final text equals what was sent. Goal: max lag < 100 ms.

Part 1b — the UI's CPU per token at the demo model's speed (11 tok/s, scripted), with
and without painting the streamed text: on a machine whose cores the model keeps busy,
this is what the app takes from the model.

Part 2 — speed shown vs raw speed (only when the demo model loads): the tok/s the app shows
at the end of an answer against raw `mlx_lm.stream_generate` on the same prompt and model,
in this one process, in cycles of raw, app, app, raw (so a machine that speeds up or slows
down during a cycle affects both sides alike); the verdict is the median over cycles.
Goal: shown ≥ 0.97 × raw.

    python benchmarks/render_throughput.py [--part 1|1b|2 ...] [--rate 2000] [--tokens 20000]
        [--history 200] [--demo-cycles 8] [--demo-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import threading
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# MLXCHAT_CODE: the checkout whose code to measure (render_ab.py runs an earlier one)
sys.path.insert(0, os.environ.get("MLXCHAT_CODE") or str(Path(__file__).resolve().parents[1]))

from mlxchat.engine.types import Chunk, LoadProgress, ModelInfo, Stats  # noqa: E402

# ----- the scripted token source ------------------------------------------------------------

WORDS_TEXT = (
    "the model streams tokens into a terminal while the user reads along and the screen "
    "keeps up with every piece of text that arrives from the engine thread through a queue "
    "markdown paragraphs lists and code blocks all render as they come"
)
WORDS = tuple(WORDS_TEXT.split())

CODE = [
    "def fib(n):\n",
    "    a, b = 0, 1\n",
    "    for _ in range(n):\n",
    "        a, b = b, a + b\n",
    "    return a\n",
]


def script_tokens(count: int, seed: int = 0) -> list[str]:
    """`count` token texts forming Markdown: paragraphs, bullet lists, fenced code."""
    rng = random.Random(seed)
    tokens: list[str] = []
    while len(tokens) < count:
        kind = rng.random()
        if kind < 0.15:
            tokens.append("```python\n")
            for line in CODE:
                tokens.extend(piece + " " for piece in line.split(" ")[:-1])
                tokens.append(line.split(" ")[-1])
            tokens.append("```\n\n")
        elif kind < 0.3:
            for _ in range(rng.randint(2, 5)):
                tokens.append("- ")
                tokens.extend(" " + rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
                tokens.append("\n")
            tokens.append("\n")
        else:
            tokens.extend(" " + rng.choice(WORDS) for _ in range(rng.randint(20, 80)))
            tokens.append(".\n\n")
    return tokens[:count]


@dataclass
class Emitted:
    """What the emitter thread did: per-token emit times and its own CPU time."""

    times: list[float] = field(default_factory=list)
    thread_cpu: float = 0.0
    marks: dict[int, asyncio.Event] = field(default_factory=dict)
    """Events set once that many tokens were emitted (see `reached`)."""

    async def reached(self, count: int) -> None:
        """Wait until `count` tokens were emitted (woken by the emitter: no polling)."""
        await self.marks.setdefault(count, asyncio.Event()).wait()


class ScriptedStream:
    """An async iterator fed from a thread, like the real engine's `EventStream`."""

    def __init__(self, tokens: list[str], rate: float, record: Emitted) -> None:
        self.tokens = tokens
        self.rate = rate
        self.record = record
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._cancel = threading.Event()
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._emit, args=(loop,), daemon=True)
        self._thread.start()

    def _emit(self, loop: asyncio.AbstractEventLoop) -> None:
        cpu0 = time.thread_time()
        start = time.perf_counter()
        put = self._queue.put_nowait
        count = len(self.tokens)
        for index, text in enumerate(self.tokens):
            due = start + index / self.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            stats = Stats(
                generation_tokens=index + 1,
                generation_tps=self.rate,
                context_tokens=index + 1,
                context_limit=1_000_000,
            )
            finish = (
                "cancelled" if self._cancel.is_set() else ("stop" if index == count - 1 else None)
            )
            self.record.times.append(time.perf_counter())
            loop.call_soon_threadsafe(put, Chunk(text, index, stats, finish_reason=finish))
            if (mark := self.record.marks.get(index + 1)) is not None:
                loop.call_soon_threadsafe(mark.set)
            if finish:
                break
        loop.call_soon_threadsafe(put, None)
        self.record.thread_cpu = time.thread_time() - cpu0

    def cancel(self) -> None:
        self._cancel.set()

    def __aiter__(self) -> ScriptedStream:
        return self

    async def __anext__(self) -> Any:
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item


class ScriptedEngine:
    """The engine API with a scripted answer pushed at `rate` tokens per second."""

    def __init__(self, tokens: list[str], rate: float) -> None:
        self.tokens = tokens
        self.rate = rate
        self.emitted = Emitted()
        self._info: ModelInfo | None = None

    @property
    def model_info(self) -> ModelInfo | None:
        return self._info

    async def load(self, name: str, on_progress: Any = None) -> ModelInfo:
        if on_progress:
            on_progress(LoadProgress(name, "ready", 1.0))
        self._info = ModelInfo(name=name, path="(scripted)", context_length=1_000_000)
        return self._info

    def stream(self, messages: Any, params: Any = None, **_: Any) -> ScriptedStream:
        return ScriptedStream(self.tokens, self.rate, self.emitted)

    async def reset_session(self, session: str) -> None:
        pass

    def cancel(self) -> None:
        pass


# ----- watching the screen ------------------------------------------------------------------


def streaming_class() -> type:
    """What the chat screen streams an answer into, in the code measured: the transcript's
    `StreamingMessage` (one widget for the whole chat), or, in code before it, the
    `StreamingView` widget (one widget per message)."""
    try:
        from mlxchat.ui.widgets.streaming import StreamingMessage

        return StreamingMessage
    except ImportError:
        from mlxchat.ui.widgets.streaming import StreamingView  # type: ignore[attr-defined]

        return StreamingView  # type: ignore[no-any-return]


class Probe:
    """Records when text reaches the answer's view and when the screen paints."""

    def __init__(self) -> None:
        self.appends: list[tuple[float, int]] = []  # (time appended, source length)
        self.paints: list[float] = []
        self.target: Any = None  # the answer being written (its StreamingMessage/View)

    def install(self) -> None:
        from textual.screen import Screen

        Markdown = streaming_class()
        if Markdown.__name__ == "StreamingView":  # the Markdown widget it is one of
            from mlxchat.ui.widgets.markdown_view import (  # type: ignore[import-not-found]
                MarkdownView as Markdown,
            )

        probe = self
        # the text is on its way to the screen once parsed (`flush`: the transcript or the
        # widget parses it and marks the changed rows; `append` in the code before the
        # line-API view, which MarkdownStream called)
        entry = "flush" if hasattr(Markdown, "flush") else "append"
        original_entry = getattr(Markdown, entry)
        original_refresh = Screen._compositor_refresh

        def parsed(widget: Markdown, *args: Any) -> Any:
            result = original_entry(widget, *args)
            if widget is probe.target:
                probe.appends.append((time.perf_counter(), len(widget.source)))
            return result

        def compositor_refresh(screen: Screen) -> None:
            original_refresh(screen)
            probe.paints.append(time.perf_counter())

        setattr(Markdown, entry, parsed)
        Screen._compositor_refresh = compositor_refresh  # type: ignore[method-assign]

    def lags(self, tokens: list[str], emitted: list[float]) -> tuple[list[float], list[float]]:
        """Per-token lag to the Markdown widget and to the next paint, in seconds."""
        ends, total = [], 0
        for text in tokens[: len(emitted)]:
            total += len(text)
            ends.append(total)
        append_times = [t for t, _ in self.appends]
        lengths = [n for _, n in self.appends]
        paints = sorted(self.paints)
        to_widget, to_screen = [], []
        for end, sent in zip(ends, emitted, strict=False):
            index = bisect_left(lengths, end)
            if index == len(lengths):
                continue  # only reached by the final full render
            arrived = append_times[index]
            to_widget.append(arrived - sent)
            paint_index = bisect_left(paints, arrived)
            painted = paints[paint_index] if paint_index < len(paints) else arrived
            to_screen.append(painted - sent)
        return to_widget, to_screen


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {platform.release()} {platform.machine()} ({cpu}), "
        f"{os.cpu_count()} CPUs, python {platform.python_version()}"
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def fill_history(history: Any, messages: int, seed: int = 1) -> int:
    """A saved chat of `messages` messages with Markdown answers; returns its id."""
    rng = random.Random(seed)
    cid = history.new_conversation(model="scripted")
    for index in range(messages):
        if index % 2 == 0:
            history.add_message(
                cid,
                "user",
                f"Question {index // 2}: "
                + " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 25))),
            )
        else:
            body = "".join(script_tokens(rng.randint(60, 200), seed=index))
            history.add_message(cid, "assistant", body, model="scripted", finish_reason="stop")
    return cid


def scripted_app(engine: ScriptedEngine, history: Any, resume: int | None = None) -> Any:
    """The real `ChatApp` on the scripted engine."""
    from mlxchat.config import Settings
    from mlxchat.ui.app import ChatApp

    return ChatApp(
        engine,
        Settings(model="scripted", theme="mlxchat-dark"),
        history,
        list_models=lambda: [],
        resume=resume,
    )


async def chat_opened(app: Any, engine: ScriptedEngine) -> Any:
    """Wait until the chat screen is up with the scripted model loaded; return the screen."""
    while not (engine.model_info and app.screen.__class__.__name__ == "ChatScreen"):
        await asyncio.sleep(0.01)
    return app.chat_screen


async def render_benchmark(rate: float, count: int, earlier: int) -> bool:
    from mlxchat.store.history import History

    tokens = script_tokens(count)
    engine = ScriptedEngine(tokens, rate)
    history = History.in_memory()
    cid = fill_history(history, earlier)
    probe = Probe()
    probe.install()
    app = scripted_app(engine, history, resume=cid)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await chat_opened(app, engine)
        while len(screen.conversation.messages) == 0:
            await asyncio.sleep(0.01)
        await pilot.pause(0.2)
        mounted = len(screen.conversation.messages)
        kept = getattr(screen.conversation, "earlier_count", 0)  # code that unmounted some
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        # what Enter does; returns once the answer view is there (before the first token)
        await screen.submit("Write a very long answer.")
        probe.target = screen.conversation.messages[-1]
        streaming_mounted = len(screen.conversation.messages)
        while screen.answering:
            await asyncio.sleep(0.01)
        cpu = time.process_time() - cpu0 - engine.emitted.thread_cpu
        wall = time.perf_counter() - wall0
        await pilot.pause()
        shown_text = probe.target.source  # what the streaming view held at the end
        final_text = screen.conversation.messages[-1].source  # the full render
        saved = history.get_conversation(cid).messages[-1].content

    sent = "".join(tokens)
    to_widget, to_screen = probe.lags(tokens, engine.emitted.times)
    emitted = len(engine.emitted.times)
    span = engine.emitted.times[-1] - engine.emitted.times[0]
    shape = (
        f"{mounted} mounted, {kept} kept off screen until scrolled to; {streaming_mounted} "
        "mounted while the answer streams"
        if kept
        else f"{streaming_mounted} messages in one transcript while the answer streams"
    )
    print(f"conversation: {earlier} earlier messages ({shape}), terminal 120x40")
    print(
        f"sent {emitted} tokens ({len(sent):,} characters) at {rate:,.0f} tok/s target, "
        f"{(emitted - 1) / span:,.0f} tok/s achieved by the emitter"
    )
    appends = len(probe.appends)
    print(
        f"Markdown appends: {appends} (about {emitted / max(1, appends):.0f} tokens each); "
        f"screen paints: {len(probe.paints)}"
    )
    measured = (("to the Markdown widget", to_widget), ("to the screen (painted)", to_screen))
    for label, lags in measured:
        worst, p99 = max(lags) * 1e3, percentile(lags, 0.99) * 1e3
        median = statistics.median(lags) * 1e3
        print(f"lag {label:24}: max {worst:6.1f} ms   p99 {p99:6.1f} ms   median {median:6.1f} ms")
    window = max(1, emitted // 10)
    worst = [max(to_screen[i : i + window]) * 1e3 for i in range(0, len(to_screen), window)]
    print(
        "max lag to the screen per tenth of the answer (ms): " + " ".join(f"{w:.0f}" for w in worst)
    )
    print(
        f"UI CPU time: {cpu:.2f} s for {emitted} tokens = {cpu / emitted * 1000 * 1e3:.1f} ms "
        f"per 1,000 tokens ({cpu / wall:.0%} of one core over {wall:.1f} s)"
    )
    same = shown_text == sent and final_text == sent and saved == sent
    print(
        f"streamed text == sent: {shown_text == sent}; final render source == sent: "
        f"{final_text == sent}; saved == sent: {saved == sent}"
    )
    ok = same and max(to_screen) < 0.1
    print(f"goal (keeps up, max lag < 100 ms, same text): {'ok' if ok else 'NOT MET'}")
    return ok


async def steady_cost(rate: float, count: int, paint: bool = True) -> float:
    """The UI thread's CPU seconds per token while a fresh chat's answer streams at `rate`.

    Measured from the 20th token to the last but one, so the answer's start (mounting its
    view) and end (the final full render) are left out. `paint=False` drops the streamed
    text before it reaches the answer's view (the status bar still runs): what the app costs
    without painting text.
    """
    from mlxchat.store.history import History

    warm_up()
    engine = ScriptedEngine(script_tokens(count), rate)
    app = scripted_app(engine, History.in_memory())
    # what the chat screen hands each token to (`feed` in the code before the line-API view)
    StreamingView = streaming_class()
    entry = "feed" if hasattr(StreamingView, "feed") else "append"
    hand_over = getattr(StreamingView, entry)
    if not paint:
        setattr(StreamingView, entry, lambda self, text: None)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await chat_opened(app, engine)
            await pilot.pause(0.5)
            await screen.submit("Write.")
            await engine.emitted.reached(20)
            cpu0, first = time.thread_time(), len(engine.emitted.times)
            await engine.emitted.reached(count - 1)
            cpu, tokens = time.thread_time() - cpu0, len(engine.emitted.times) - first
            while screen.answering:
                await asyncio.sleep(0.1)
    finally:
        setattr(StreamingView, entry, hand_over)
    return cpu / tokens


def warm_up() -> None:
    """Do the one-off work of a first code block before measuring (Pygments compiles a
    lexer's rules once per process: 0.25 s for Python on 2 cores), so a per-token figure
    does not depend on where in the window the first code block falls."""
    from pygments.lexers import get_lexer_by_name

    get_lexer_by_name("python")


def slow_stream_cost(rate: float, count: int) -> None:
    """Print the UI's CPU per token at a demo-like rate, with and without painting text."""
    painted = asyncio.run(steady_cost(rate, count))
    unpainted = asyncio.run(steady_cost(rate, count, paint=False))
    print(
        f"scripted answer at {rate:g} tok/s, fresh chat, 120x40, tokens 20..{count - 1}: "
        f"UI thread CPU per token {painted * 1e3:.2f} ms ({painted * rate:.1%} of one core); "
        f"without painting the text {unpainted * 1e3:.2f} ms ({unpainted * rate:.1%})"
    )


# ----- part 2: shown tok/s vs raw mlx-lm ----------------------------------------------------

PROMPT = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle that "
    "predicts the weather. Use three paragraphs."
)


def raw_tps(engine: Any, max_tokens: int) -> tuple[float, int]:
    """mlx-lm's own decode tok/s on the engine's thread, same model, fresh cache."""

    def run() -> tuple[float, int]:
        import mlx.core as mx
        from mlx_lm.generate import stream_generate
        from mlx_lm.sample_utils import make_sampler

        loaded = engine._loaded
        tokens = loaded.tokenizer.apply_chat_template(
            [{"role": "user", "content": PROMPT}], add_generation_prompt=True
        )
        responses = stream_generate(
            loaded.model,
            loaded.tokenizer,
            mx.array(tokens),
            max_tokens=max_tokens,
            sampler=make_sampler(temp=0.0),
        )
        last = None
        for response in responses:
            last = response
        return last.generation_tps, last.generation_tokens

    return engine.call_sync(run)


async def app_tps(engine: Any, max_tokens: int) -> tuple[float, int]:
    """The tok/s the app's status bar shows at the end of one answer (fresh chat)."""
    from mlxchat.config import Settings
    from mlxchat.store.history import History
    from mlxchat.ui.app import ChatApp

    settings = Settings(model="demo", temp=0.0, max_tokens=max_tokens)
    app = ChatApp(engine, settings, History.in_memory(), list_models=lambda: [])
    async with app.run_test(size=(120, 40)) as pilot:
        while app.screen.__class__.__name__ != "ChatScreen":
            await asyncio.sleep(0.01)
        screen = app.chat_screen
        while screen._loading:
            await asyncio.sleep(0.01)
        screen.prompt.insert(PROMPT)
        await pilot.press("enter")
        await asyncio.sleep(0.05)
        while screen.answering:  # seldom: the app, not this loop, should use the CPU
            await asyncio.sleep(0.2)
        stats = screen.status.stats
        await pilot.pause()
    return stats.generation_tps, stats.generation_tokens


def demo_benchmark(cycles: int, max_tokens: int) -> None:
    from mlxchat.engine.engine import Engine

    engine = Engine()
    try:
        info = engine.load_sync("demo")
    except Exception as error:  # no demo model here: skip, saying why
        print(f"skipped: the demo model does not load ({error})")
        return
    print(
        f"model: {info.name} ({info.path}); prompt: 1 user message; {max_tokens} tokens, "
        f"greedy; {cycles} cycles of raw, app, app, raw (drift cancels within a cycle)"
    )
    raw_tps(engine, 8)
    asyncio.run(app_tps(engine, 8))
    raws: list[float] = []
    shown: list[float] = []
    ratios: list[float] = []
    counts: set[tuple[str, int]] = set()
    for _ in range(cycles):
        first_raw, first_count = raw_tps(engine, max_tokens)
        apps = [asyncio.run(app_tps(engine, max_tokens)) for _ in range(2)]
        last_raw, last_count = raw_tps(engine, max_tokens)
        raws += [first_raw, last_raw]
        shown += [tps for tps, _ in apps]
        counts |= {("raw", first_count), ("raw", last_count)} | {("app", n) for _, n in apps}
        ratios.append(sum(tps for tps, _ in apps) / (first_raw + last_raw))
    raw, app = statistics.median(raws), statistics.median(shown)
    print("tokens per answer: " + ", ".join(f"{side} {n}" for side, n in sorted(counts)))
    print(f"raw mlx-lm decode tok/s: {', '.join(f'{r:.1f}' for r in raws)} (median {raw:.1f})")
    print(f"app shows decode tok/s : {', '.join(f'{s:.1f}' for s in shown)} (median {app:.1f})")
    print(f"shown/raw per cycle: {', '.join(f'{r:.3f}' for r in ratios)}")
    ratio = statistics.median(ratios)
    verdict = "ok" if ratio >= 0.97 else "BELOW GOAL"
    print(
        f"shown/raw: median of cycles {ratio:.3f}, ratio of medians {app / raw:.3f}"
        f"  (goal >= 0.97: {verdict})"
    )


def setup() -> None:
    """The fast BLAS first, before anything imports MLX (as `mlxchat` does)."""
    try:
        from mlxchat.engine.cpu import setup_process
    except ImportError:  # code from before `setup_process` (an A/B run of part 1b needs no BLAS)
        return
    setup_process()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=["1", "1b", "2"], help="default: all")
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--history", type=int, default=200)
    parser.add_argument("--demo-cycles", type=int, default=8)
    parser.add_argument("--demo-tokens", type=int, default=128)
    args = parser.parse_args()
    parts = args.part or ["1", "1b", "2"]
    setup()
    import textual

    print(f"machine: {machine()}; textual {textual.__version__}")
    if "1" in parts:
        print("\n== part 1: rendering throughput ==")
        asyncio.run(render_benchmark(args.rate, args.tokens, args.history))
    if "1b" in parts:
        print("\n== part 1b: UI cost at the demo model's speed ==")
        slow_stream_cost(11.0, 150)
    if "2" in parts:
        print("\n== part 2: tok/s shown vs raw mlx-lm (demo model) ==")
        demo_benchmark(args.demo_cycles, args.demo_tokens)


if __name__ == "__main__":
    main()

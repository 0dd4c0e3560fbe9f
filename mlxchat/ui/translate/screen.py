"""The translate screen: live simultaneous (wait-k) translation with its latency numbers.

Usable on its own (`TranslateApp`, for `mlxchat translate`) or pushed from the chat app
(`/translate`). The source is typed live (a word is read when followed by a space; Enter
ends the sentence) or, when a source text is given, played back at `wpm` words per minute.
Words go through a `Runner` queue to a `LiveTranslation` on the engine thread; every event
updates the panes, the latency panel, the alignment table, the delay plot and the status
bar. The model loads in the background: words typed meanwhile wait in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, replace

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Static
from textual.worker import Worker

from mlxchat.config import Settings
from mlxchat.engine.contract import TranslateEngine
from mlxchat.engine.types import EngineError, LoadProgress
from mlxchat.settings import MAX_WAIT_K
from mlxchat.text import sanitize
from mlxchat.translate.events import (
    Notice,
    SegmentDone,
    SourceRead,
    TargetWord,
    TranslationChunk,
    TranslationEvent,
)
from mlxchat.translate.runner import (
    EndSentence,
    Item,
    Runner,
    SourceWord,
    TranslationFactory,
)
from mlxchat.translate.segment import arrivals, ends_sentence, split_sentences
from mlxchat.translate.settings import WaitKSettings
from mlxchat.translate.translation import Translation, open_translation
from mlxchat.ui.model_load import load_model
from mlxchat.ui.model_notice import show_model_notice
from mlxchat.ui.translate.alignment import AlignmentTable
from mlxchat.ui.translate.delay_plot import DelayPlot
from mlxchat.ui.translate.latency_panel import LatencyPanel
from mlxchat.ui.translate.session import SentenceRecord, count_finished, session_averages
from mlxchat.ui.translate.source_pane import SourceInput, SourcePane
from mlxchat.ui.translate.target_pane import TargetPane
from mlxchat.ui.widgets.footer import FittingFooter
from mlxchat.ui.widgets.status import StatusBar

CONFIRM_SECONDS = 5.0
"""How long a second Ctrl+R confirms a restart that would clear what is on screen."""

DEMO_MODEL = "demo"
DEMO_CANNOT_TRANSLATE = "the chat demo cannot translate: try -m demo-translate"
"""Said under the translation while the chat demo is loaded (its French is nonsense)."""


def live_translation_factory(
    engine: TranslateEngine, base: Settings | None = None
) -> TranslationFactory:
    """Translations on `engine`'s model; the screen decides where sentences end.

    Args:
        engine: The engine.
        base: The config file's `Settings`, for the sampling of every entry point
            (`WaitKSettings.resolved`).
    """

    def make(settings: WaitKSettings) -> Translation:
        info = engine.model_info
        settings = settings.resolved(base, info.sampling_defaults if info else None)
        return open_translation(engine, settings, auto_segment=False)

    return make


class TranslateScreen(Screen[None]):
    """Source, translation, latency panel, alignment table, delay plot, status bar, footer.

    Bindings:
        escape: Cancel the translation in progress (and stop playback); when nothing runs,
            leave the source input so that single-letter keys work.
        ctrl+r: Restart: clear everything and play the source back again.
        f6 (or ctrl+up; + when not typing): wait-k one more, from the next sentence.
        f5 (or ctrl+down; - when not typing): wait-k one less, from the next sentence.
        f10 (q when not typing): Close: quit the app (standalone) or go back to the chat;
            ctrl+q quits the app.
        i (or tab, when not typing, live mode): back to typing the source (shown in the
            footer, and in the source box, whenever the box has lost the focus).

    The keys shown in the footer all work while the source input has the focus.
    """

    CSS_PATH = "translate.tcss"
    AUTO_FOCUS = "#source-input"  # the live source input (playback has none)
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+r", "restart", "Restart"),
        Binding("f5", "wait_k(-1)", "k−1"),
        Binding("f6", "wait_k(1)", "k+1"),
        Binding("f10", "close", "Close"),
        Binding("plus,equals_sign,ctrl+up", "wait_k(1)", "k+1", show=False),
        Binding("minus,ctrl+down", "wait_k(-1)", "k−1", show=False),
        Binding("q", "close", "Close", show=False),
        Binding("i,tab", "type", "Type", key_display="i"),
    ]

    @dataclass
    class SentenceFinished(Message):
        """A sentence's translation ended (normally, cut, stopped or failed).

        Attributes:
            record: Everything about the sentence, final metrics included.
        """

        record: SentenceRecord

    def __init__(
        self,
        engine: TranslateEngine,
        settings: WaitKSettings,
        *,
        model: str | None = None,
        source: str | None = None,
        wpm: float = 150.0,
        standalone: bool = False,
        factory: TranslationFactory | None = None,
        base: Settings | None = None,
    ) -> None:
        """Create the screen.

        Args:
            engine: The `Engine` the translations run on.
            settings: The wait-k settings of the first sentence.
            model: The model to load; None (or the loaded model's name) uses the model
                already loaded, or waits for one to be loaded (by the chat).
            source: A text to play back; None lets the user type.
            wpm: Playback speed in words per minute.
            standalone: The screen is the whole app: q quits it (else q closes the screen).
            factory: Makes the translations (default: `LiveTranslation` on `engine`).
            base: The config file's `Settings` (the sampling defaults).
        """
        super().__init__()
        if not wpm > 0:
            raise ValueError(f"wpm must be more than 0, got {wpm}")
        self.engine = engine
        self.model = model
        self.source = source
        self.wpm = wpm
        self.standalone = standalone
        self.playback = split_sentences(source) if source is not None else None
        """The sentences to play back (None in live mode)."""
        self.sentences: list[SentenceRecord] = []
        """Every sentence so far, by number."""
        self.failed: str | None = None
        """Why the model could not be loaded (None when it could)."""
        self.runner = Runner(
            factory or live_translation_factory(engine, base),
            settings,
            self._on_event,
            self._on_error,
            lambda item: self._refresh(),
        )
        self._shown = -1
        self._typing: int | None = None
        self._waiting = 0
        self._restart_asked = 0.0
        """Until when a second Ctrl+R confirms the restart the first one asked about."""
        self._footer_busy = False
        """Whether the footer was last drawn with work to cancel (Esc shown)."""
        self._loading = False
        self._player: Worker[None] | None = None
        self._model_timer: Timer | None = None

    # ----- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        """Panes on the left, numbers on the right, the status bar and the footer below."""
        with Horizontal(id="main"):
            with Vertical(id="panes"):
                yield SourcePane(live=self.playback is None, id="source")
                yield Static("", id="error", markup=False)
                yield TargetPane(id="target")
            with Vertical(id="side"):
                yield LatencyPanel(id="latency")
                yield AlignmentTable(id="alignment")
                yield DelayPlot(id="plot")
        yield StatusBar(id="status")
        yield FittingFooter()

    @property
    def source_pane(self) -> SourcePane:
        """The source words (and input)."""
        return self.query_one(SourcePane)

    @property
    def target_pane(self) -> TargetPane:
        """The translation."""
        return self.query_one(TargetPane)

    @property
    def panel(self) -> LatencyPanel:
        """The latency numbers."""
        return self.query_one(LatencyPanel)

    @property
    def alignment(self) -> AlignmentTable:
        """The alignment table."""
        return self.query_one(AlignmentTable)

    @property
    def plot(self) -> DelayPlot:
        """The delay plot."""
        return self.query_one(DelayPlot)

    @property
    def status(self) -> StatusBar:
        """The status bar."""
        return self.query_one(StatusBar)

    @property
    def settings(self) -> WaitKSettings:
        """The settings the next sentence will use."""
        return self.runner.settings

    @property
    def busy(self) -> bool:
        """Whether words are being translated, wait in the queue or are still to be played."""
        return self.runner.busy or self.playing

    @property
    def playing(self) -> bool:
        """Whether the source is being played back."""
        return self._player is not None and self._player.is_running

    def on_mount(self) -> None:
        """Show the source, start the translation loop and (if needed) load the model."""
        settings = self.settings
        self.source_pane.border_title = f"Source · {settings.source_lang}"
        if self.playback is not None:
            self.source_pane.border_subtitle = f"playback at {self.wpm:g} words/min"
        self.target_pane.border_title = f"Translation · {settings.target_lang}"
        self.query_one("#side").border_title = "Latency"
        self.alignment.border_title = "Alignment"
        self.plot.border_title = "Delays"
        self.panel.wait_k = self.panel.next_wait_k = settings.wait_k
        self._show_source()
        self.run_worker(self.runner.run(), group="runner", exit_on_error=False)
        info = getattr(self.engine, "model_info", None)
        if info is not None:
            self.status.set_model(info.name, info.context_length)
            show_model_notice(self.app, info)
        if info is not None and self.model in (None, info.name):
            self._model_ready()
        elif self.model:
            self._loading = True
            self.status.set_model(self.model)
            self.status.set_state("loading")
            self.panel.state = "loading the model"
            self.run_worker(self._load(self.model), group="load", exit_on_error=False)
        else:  # e.g. opened from the chat while its model loads: wait for it
            self._show_error("No model is loaded yet: waiting for one (e.g. /model demo).")
            self.panel.state = "waiting for a model"
            self._model_timer = self.set_interval(0.25, self._check_model, name="model-wait")
        self._refresh()

    def _check_model(self) -> None:
        info = getattr(self.engine, "model_info", None)
        if info is not None and self._model_timer is not None:
            self._model_timer.stop()
            self._model_timer = None
            self.query_one("#error", Static).display = False
            self.status.set_model(info.name, info.context_length)
            self._model_ready()

    def on_unmount(self) -> None:
        """Stop the engine work of this screen."""
        self.runner.cancel()

    def _show_source(self) -> None:
        if self.playback is None:
            return
        self.source_pane.set_sentences(self.playback)
        self.sentences = [
            SentenceRecord(i, list(words), source_length=len(words))
            for i, words in enumerate(self.playback)
        ]
        self.panel.sentences = len(self.playback)
        if not self.playback:
            self._show_error("The source text is empty: nothing to play back.")

    # ----- the model ------------------------------------------------------------------------
    async def _load(self, name: str) -> None:
        info = await load_model(self.engine, name, self.status, self._on_load_progress)
        if isinstance(info, str):  # the screen goes on
            self._loading = False
            self._fail(info)
            return
        self._loading = False
        self.status.set_model(info.name, info.context_length)
        show_model_notice(self.app, info)
        self._model_ready()

    def _on_load_progress(self, progress: LoadProgress) -> None:
        if progress.fraction is not None and 0 < progress.fraction < 1:
            self.panel.state = f"loading {progress.fraction:.0%}"

    def _model_ready(self) -> None:
        info = getattr(self.engine, "model_info", None)
        if info is not None and info.name == DEMO_MODEL:
            self.target_pane.border_subtitle = DEMO_CANNOT_TRANSLATE
        self.runner.set_ready()
        if self.playback:
            self._start_playback()
        self._refresh()

    def _fail(self, message: str) -> None:
        self.failed = message
        self._show_error(f"Model not loaded: {message}")
        self.status.set_state("error", "model not loaded")
        self.panel.state = "no model"

    def _show_error(self, message: str) -> None:
        error = self.query_one("#error", Static)
        error.update(sanitize(message))
        error.display = True

    # ----- source words ---------------------------------------------------------------------
    def _start_playback(self) -> None:
        self._player = self.run_worker(self._play(), group="playback", exclusive=True)

    async def _play(self) -> None:
        """Release the source words at `wpm`, whatever the translator's pace."""
        assert self.playback is not None
        for word in arrivals(self.playback, self.wpm):
            if word.due is not None and (wait := word.due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            self.source_pane.set_state(word.sentence, word.index, "queued")
            self._arrive(
                SourceWord(
                    word.sentence,
                    word.index,
                    word.word,
                    word.last,
                    received_at=time.perf_counter() if word.due is None else word.due,
                )
            )

    @on(SourcePane.Typed)
    def _typed(self, event: SourcePane.Typed) -> None:
        """Queue the words typed; Enter ends the sentence."""
        event.stop()
        for i, word in enumerate(event.words):
            record = self._typing_record()
            index = self.source_pane.add_word(record.index, word)
            record.words.append(word)
            last = ends_sentence(word) or (event.end and i == len(event.words) - 1)
            self._arrive(SourceWord(record.index, index, word, last))
            if last:
                self._end_typing(record)
        if event.end and not event.words and self._typing is not None:
            record = self.sentences[self._typing]
            self.runner.put(EndSentence(record.index))
            self._end_typing(record)

    def _typing_record(self) -> SentenceRecord:
        if self._typing is None:
            self._typing = len(self.sentences)
            self.sentences.append(SentenceRecord(self._typing))
            if self._shown < 0 or self.sentences[self._shown].done:
                self._shown = self._typing  # show the new sentence while it waits
        return self.sentences[self._typing]

    def _end_typing(self, record: SentenceRecord) -> None:
        record.source_length = len(record.words)
        self._typing = None

    def _arrive(self, word: SourceWord) -> None:
        self._waiting += 1
        self.runner.put(word)
        self._refresh()

    # ----- translation events ---------------------------------------------------------------
    def _on_event(self, item: Item, event: TranslationEvent) -> None:
        """One event from the translator, for the sentence of `item`."""
        if not 0 <= item.sentence < len(self.sentences):
            return
        record = self.sentences[item.sentence]
        self._shown = record.index
        if isinstance(event, SourceRead) and isinstance(item, SourceWord):
            self._read(record, item, event)
        elif isinstance(event, TranslationChunk):
            self._append(record, event.text)
        elif isinstance(event, TargetWord):
            self._append(record, event.text)
            record.target_words.append(event.word)
            record.delays = list(event.delays)
            record.metrics = dict(event.metrics)
            source_word = (
                record.words[event.delay - 1] if 0 < event.delay <= len(record.words) else ""
            )
            self.alignment.add_word(event.word, event.delay, source_word)
        elif isinstance(event, SegmentDone):
            self._append(record, event.text)
            self._segment_done(record, event)
        elif isinstance(event, Notice):
            self.notify(sanitize(event.message), title="Translation", severity="warning")
        self.status.set_stats(event.stats)
        self._refresh()

    def _read(self, record: SentenceRecord, item: SourceWord, event: SourceRead) -> None:
        if record.wait_k is None:
            live = self.runner.live
            record.wait_k = live.settings.wait_k if live is not None else self.settings.wait_k
            self.alignment.start(record.index)
        record.read = event.source_words_read
        self._waiting = max(self._waiting - 1, 0)
        self.source_pane.set_state(record.index, item.index, "read", current=True)

    def _append(self, record: SentenceRecord, text: str) -> None:
        if text:
            self.target_pane.append(record.index, text)
            record.text = self.target_pane.paragraph(record.index).text

    def _segment_done(self, record: SentenceRecord, event: SegmentDone) -> None:
        record.delays = list(event.delays)
        record.target_words = list(event.target_words)
        record.read = len(event.source_words)
        record.source_length = len(event.source_words)
        record.metrics = dict(event.metrics)
        record.finish_reason = event.finish_reason
        self.target_pane.end(record.index, event.finish_reason)
        self.source_pane.clear_current()
        self._sentence_over(record)

    def _on_error(self, item: Item | None, error: Exception) -> None:
        """The engine failed on `item`: its sentence is marked failed, the screen goes on."""
        message = (
            str(error) if isinstance(error, EngineError) else f"{type(error).__name__}: {error}"
        )
        self.notify(sanitize(message), title="Translation failed", severity="error", timeout=8)
        if item is not None and 0 <= item.sentence < len(self.sentences):
            record = self.sentences[item.sentence]
            if not record.done:
                record.finish_reason = "error"
                self.target_pane.end(record.index, "error")
                self._sentence_over(record)
        self._refresh()

    def _sentence_over(self, record: SentenceRecord) -> None:
        if self._typing == record.index:
            self._typing = None
        self.panel.session_metrics = session_averages(self.sentences)
        self.panel.finished = count_finished(self.sentences)
        self.post_message(self.SentenceFinished(record))

    # ----- showing the state ----------------------------------------------------------------
    def _refresh(self) -> None:
        """Update the panel, the plot and the status state from the records."""
        panel = self.panel
        if self.busy != self._footer_busy:  # Esc is offered while there is work to cancel
            self._footer_busy = self.busy
            self.refresh_bindings()
        panel.next_wait_k = self.settings.wait_k
        panel.queued = self._waiting
        if 0 <= self._shown < len(self.sentences):
            record = self.sentences[self._shown]
            k = record.wait_k or self.settings.wait_k
            panel.sentence = record.index
            panel.wait_k = k
            panel.read = record.read
            panel.written = record.written
            panel.source_done = record.source_read
            panel.sentence_metrics = record.metrics
            self.plot.show(record.delays, k, record.source_length, record.read, record.done)
        else:
            panel.wait_k = self.settings.wait_k
            panel.source_done = False
        if self.failed is not None:
            return
        if self._loading:  # the load progress shows in the status bar and the panel
            return
        if not self.runner.ready:
            state, detail, label = "waiting", f"{self._waiting} queued", "waiting for the model"
        elif self.runner.preparing:
            state, detail, label = "prefill", "instructions", "reading the instructions"
        elif self.runner.busy:
            state, detail, label = "generating", f"wait-{panel.wait_k}", "translating"
        elif self.playing:
            state, detail, label = "idle", "listening", "listening"
        else:
            state, detail, label = "idle", "", "idle"
        panel.state = label
        if (self.status.state, self.status.detail) != (state, detail):
            self.status.set_state(state, detail)  # type: ignore[arg-type]

    # ----- actions --------------------------------------------------------------------------
    def action_cancel(self) -> None:
        """Esc: cancel the translation and playback; when idle, leave the source input."""
        if self.busy:
            self._stop()
            self._refresh()
        elif isinstance(self.focused, Input):
            self.set_focus(None)

    def action_type(self) -> None:
        """i: back to typing the source (after Esc left the box)."""
        self.source_input.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`type` is offered only in live mode while the source box lacks the focus; Esc
        only while there is something to cancel or a box to leave."""
        if action == "type":
            live = self.query(SourceInput)
            return bool(live) and not live.first().has_focus
        if action == "cancel":
            return self.busy or isinstance(self.focused, Input)
        return True

    @property
    def source_input(self) -> SourceInput:
        """The live source box."""
        return self.query_one(SourceInput)

    @on(events.DescendantFocus)
    @on(events.DescendantBlur)
    def _focus_moved(self) -> None:
        """Show or hide the `Type` key as the focus moves."""
        self.refresh_bindings()

    def _stop(self) -> None:
        if self._player is not None:
            self._player.cancel()
            self._player = None
        self.runner.cancel()
        self._waiting = 0
        for record in self.sentences:
            if record.done:
                continue
            dropped = self.source_pane.drop_queued(record.index)
            if record.read or dropped:
                record.finish_reason = "cancelled"
                if record.read:
                    self.target_pane.end(record.index, "cancelled")
                self._sentence_over(record)
        self.source_pane.clear_current()
        self._typing = None

    async def action_restart(self) -> None:
        """Ctrl+R, then Ctrl+R again to confirm when there is something to lose: clear
        everything and start again (playback starts from the first word)."""
        now = time.monotonic()
        if self.sentences and now > self._restart_asked:
            self._restart_asked = now + CONFIRM_SECONDS
            count = len(self.sentences)
            what = "1 sentence" if count == 1 else f"{count} sentences"
            self.notify(f"Press Ctrl+R again to clear {what} and start again.", title="Restart?")
            return
        self._restart_asked = 0.0
        self._stop()
        self.sentences = []
        self._shown = -1
        await self.target_pane.clear()
        await self.source_pane.clear()
        self.alignment.start(-1)
        self.plot.show((), self.settings.wait_k, None, 0)
        self.panel.sentence = -1
        self.panel.read = self.panel.written = 0
        self.panel.sentence_metrics = {}
        self.panel.session_metrics = {}
        self.panel.finished = 0
        self._show_source()
        if self.runner.ready and self.playback:
            self._start_playback()
        self._refresh()

    def action_wait_k(self, delta: int) -> None:
        """F5/F6: change k for the next sentence (the one running keeps its k)."""
        k = max(1, min(MAX_WAIT_K, self.settings.wait_k + delta))
        self.runner.settings = replace(self.settings, wait_k=k)
        self._refresh()

    def action_close(self) -> None:
        """F10: stop, then quit the app (standalone) or go back to the chat."""
        self._stop()
        if self.standalone:
            self.app.exit(0)
        else:
            with contextlib.suppress(Exception):
                self.dismiss()

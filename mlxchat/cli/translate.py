"""`mlxchat translate`: simultaneous (wait-k) translation in the TUI, as plain text, or NDJSON."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlxchat.cli.app import (
    ApiKeyOpt,
    RemoteModelOpt,
    app,
    check_flags,
    echo_backend,
    emit_json,
    load_model_or_exit,
    model_name,
    settings_or_exit,
)
from mlxchat.cli.errors import EXIT_INTERRUPTED, fail
from mlxchat.translate.metrics import METRICS
from mlxchat.translate.translation import open_translation

if TYPE_CHECKING:
    from mlxchat.engine.contract import Engine
from mlxchat.cli.terminal import quiet_when_reader_leaves, read_utf8

DEFAULT_WPM = 150.0


def check_options(wpm: float | None, plain: bool, as_json: bool) -> None:
    """Fail with one line on options that do not go together or a bad `--wpm`."""
    if plain and as_json:
        fail("--plain and --json do not go together; pick one")
    if wpm is not None and not wpm > 0:
        fail(f"--wpm must be more than 0 words per minute (got {wpm:g})")


def _mean(values: list[float]) -> float:
    real = [v for v in values if not math.isnan(v)]
    return sum(real) / len(real) if real else math.nan


def _fmt_metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {metrics.get(k, math.nan):.3f}" for k in METRICS)


def _rounded(values: dict[str, float], digits: int = 3) -> dict[str, float]:
    """`values` rounded for JSON (latency in words: 3 decimals; BLEU/chrF: 2)."""
    return {k: round(v, digits) for k, v in values.items()}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def match_references(text: str, sentences: int) -> list[str]:
    """One reference per source sentence: the non-empty lines when there are as many,
    else the reference split as the source is (`split_sentences`); fails otherwise."""
    from mlxchat.translate.segment import split_sentences

    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == sentences:
        return lines
    split = [" ".join(words) for words in split_sentences(text)]
    if len(split) == sentences:
        return split
    fail(
        f"the reference has {_count(len(lines), 'line')} and {_count(len(split), 'sentence')} "
        f"but the source has {_count(sentences, 'sentence')}; give one reference line "
        "(or sentence) per source sentence"
    )


@dataclass
class Report:
    """What the plain and JSON printers collect across segments."""

    references: list[str] | None
    hypotheses: list[str] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    first_word: list[float] = field(default_factory=list)

    def segment_metrics(self, event: Any) -> dict[str, float]:
        """The segment's metrics, with the reference length when a reference is given."""
        from mlxchat.translate.metrics import latency_metrics

        if self.references is None:
            return dict(event.metrics)
        reference = self.references[event.segment]
        return latency_metrics(event.delays, len(event.source_words), len(reference.split()))

    def add(self, event: Any) -> dict[str, float]:
        metrics = self.segment_metrics(event)
        self.hypotheses.append(event.translation.strip())
        self.metrics.append(metrics)
        self.first_word.append(event.time_to_first_word)
        return metrics

    def averages(self) -> dict[str, float]:
        return {k: _mean([m[k] for m in self.metrics]) for k in METRICS}

    @property
    def target_length(self) -> str:
        """What |Y| in AL/LAAL/AP is: the reference's words when given (SimulEval), else
        the hypothesis's."""
        return "hypothesis" if self.references is None else "reference"

    def quality(self) -> dict[str, float] | None:
        """Corpus BLEU and chrF against the references (None without sacrebleu or refs)."""
        if self.references is None:
            return None
        try:
            import sacrebleu
        except ImportError:
            typer.echo("mlxchat: BLEU/chrF need sacrebleu: pip install 'mlxchat[eval]'", err=True)
            return None
        refs = [self.references[: len(self.hypotheses)]]
        return {
            "BLEU": sacrebleu.corpus_bleu(self.hypotheses, refs).score,
            "chrF": sacrebleu.corpus_chrf(self.hypotheses, refs).score,
        }


class PlainPrinter:
    """Target words as they complete; with `verbose`, the delay of each and the metrics."""

    def __init__(self, report: Report, verbose: bool) -> None:
        from mlxchat.text import sanitize

        self.report = report
        self.verbose = verbose
        self.sanitize = sanitize
        self.pending = ""
        self.out = sys.stdout

    def __call__(self, event: Any) -> None:
        from mlxchat.translate import Notice, SegmentDone, TargetWord

        self.pending += event.text
        if isinstance(event, TargetWord):
            if self.verbose:
                cut = ", cut at the token limit" if event.cut else ""
                self.out.write(
                    f"{self.sanitize(event.word)} [read {event.delay} source words{cut}]\n"
                )
            else:
                if event.cut:
                    self.pending = self.pending.rstrip() + "…"
                self.out.write(
                    self.sanitize(self.pending.lstrip() if self._line_start else self.pending)
                )
            self._line_start = False
            self.pending = ""
        elif isinstance(event, SegmentDone):
            metrics = self.report.add(event)
            if not self.verbose:
                self.out.write(self.sanitize(self.pending.rstrip()) + "\n")
            else:
                self.out.write(
                    f"-- {_fmt_metrics(metrics)}  | {len(event.source_words)} source words, "
                    f"{len(event.target_words)} target words, first word after "
                    f"{event.time_to_first_word:.2f} s\n"
                )
            self.pending = ""
            self._line_start = True
        elif isinstance(event, Notice):
            typer.echo(f"mlxchat: {event.message}", err=True)
        self.out.flush()

    _line_start = True

    def close(self) -> None:
        if self.verbose and self.report.metrics:
            line = (
                f"== {len(self.report.metrics)} sentences: {_fmt_metrics(self.report.averages())}"
            )
            quality = self.report.quality()
            if quality:
                line += f"  BLEU {quality['BLEU']:.1f}  chrF {quality['chrF']:.1f}"
            self.out.write(line + "\n")
            self.out.write(
                f"== latency metrics use |Y| = {self.report.target_length} words (SimulEval)\n"
            )
        elif self.report.references is not None:
            self.report.quality()
        self.out.flush()


class JsonPrinter:
    """NDJSON events: source words read, target words written, segment metrics, a summary."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.out = sys.stdout

    def __call__(self, event: Any) -> None:
        from mlxchat.translate import Notice, SegmentDone, SourceRead, TargetWord

        if isinstance(event, SourceRead):
            emit_json(
                self.out,
                type="source",
                segment=event.segment,
                word=event.word,
                read=event.source_words_read,
            )
        elif isinstance(event, TargetWord):
            emit_json(
                self.out,
                type="target",
                segment=event.segment,
                word=event.word,
                delay=event.delay,
                lag=event.lag,
                metrics=_rounded(event.metrics),
                cut=event.cut,
            )
        elif isinstance(event, SegmentDone):
            metrics = self.report.add(event)
            emit_json(
                self.out,
                type="segment",
                segment=event.segment,
                source=event.source,
                translation=event.translation.strip(),
                delays=list(event.delays),
                alignment=[list(pair) for pair in event.alignment],
                metrics=_rounded(metrics),
                finish_reason=event.finish_reason,
                time_to_first_word=round(event.time_to_first_word, 3),
                mean_word_wait=round(event.mean_word_wait, 3),
                tokens_computed=event.tokens_computed,
            )
        elif isinstance(event, Notice):
            emit_json(self.out, type="notice", message=event.message)
        self.out.flush()

    def close(self) -> None:
        quality = self.report.quality()
        emit_json(
            self.out,
            type="summary",
            sentences=len(self.report.metrics),
            metrics=_rounded(self.report.averages()),
            metric_target_length=self.report.target_length,
            time_to_first_word=round(_mean(self.report.first_word), 3),
            **({"quality": _rounded(quality, 2)} if quality else {}),
        )
        self.out.flush()


def run_plain(
    engine: Engine,
    sentences: list[list[str]],
    settings: Any,
    wpm: float | None,
    printer: PlainPrinter | JsonPrinter,
) -> int:
    """Feed the sentences word by word (paced at `wpm` when given) and print the events."""
    from mlxchat.engine.types import EngineError
    from mlxchat.translate.segment import arrivals

    live = open_translation(engine, settings, auto_segment=False)
    events = None
    try:
        for word in arrivals(sentences, wpm):
            if word.due is not None and (wait := word.due - time.perf_counter()) > 0:
                time.sleep(wait)
            events = live.feed_sync(
                word.word,
                last=word.last,
                received_at=time.perf_counter() if word.due is None else word.due,
                more_waiting=word.due is None and not word.last,
            )
            for event in events:
                printer(event)
    except KeyboardInterrupt:
        if events is not None:
            events.close()
        sys.stdout.write("\n")
        typer.echo("mlxchat: interrupted", err=True)
        return EXIT_INTERRUPTED
    except EngineError as error:
        sys.stdout.write("\n")
        fail(f"{error} (the translation above is incomplete)")
    printer.close()
    return 0


@app.command()
def translate(
    wait_k: Annotated[
        int, typer.Option("--wait-k", "-k", help="Source words read before the first target word.")
    ] = 3,
    source_lang: Annotated[str, typer.Option("--from", help="Source language.")] = "English",
    target_lang: Annotated[str, typer.Option("--to", help="Target language.")] = "French",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="The model (default: the translate_model setting, demo-translate: "
            "gemma-3-270m); a .gguf file, an MLX dir, a Hub id or a server's URL.",
        ),
    ] = None,
    remote_model: RemoteModelOpt = None,
    api_key: ApiKeyOpt = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", "-i", help="Source text file (default: stdin).")
    ] = None,
    wpm: Annotated[
        float | None,
        typer.Option(help="Play the source back at this many words per minute [TUI: 150]."),
    ] = None,
    max_new_words: Annotated[
        int | None, typer.Option("--max-new-words", help="Most target words per sentence.")
    ] = None,
    max_tokens_per_word: Annotated[
        int, typer.Option("--max-tokens-per-word", help="Tokens after which a word is cut.")
    ] = 16,
    temp: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")] = 0.0,
    few_shot: Annotated[
        bool | None,
        typer.Option(
            "--few-shot/--chat-prompt",
            help="Prompt with example translations as plain text, or through the chat "
            "template [default: few-shot only for models without a chat template].",
            show_default=False,
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="Reference translation, one line or sentence per source sentence (BLEU, "
            "chrF; AL/LAAL/AP then use its length, as SimulEval does)."
        ),
    ] = None,
    plain: Annotated[
        bool, typer.Option("--plain", help="No TUI: print words as they come.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="With --plain: delays, metrics and the backend.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Write NDJSON events.")] = False,
) -> None:
    """Translate while the source is still arriving (wait-k), with live latency metrics."""
    check_options(wpm, plain, as_json)
    from mlxchat.translate.segment import split_sentences
    from mlxchat.translate.settings import WaitKSettings

    flags = check_flags(
        wait_k=wait_k,
        max_new_words=max_new_words,
        max_tokens_per_word=max_tokens_per_word,
        source_lang=source_lang,
        target_lang=target_lang,
        temp=temp,
        few_shot=few_shot,
    )
    settings = WaitKSettings.from_values(flags)
    name = model_name(model, remote_model) or settings_or_exit().translate_model
    interactive = input_file is None and sys.stdin.isatty()
    if not plain and not as_json and sys.stdout.isatty():
        source = None if interactive else read_utf8(input_file, "input")
        from mlxchat.ui.translate.app import attach_terminal_input

        if not (sys.stderr.isatty() and attach_terminal_input()):  # stdout is one
            fail(
                "the translate screen needs a terminal; for pipes and scripts use --plain or --json"
            )
        from mlxchat.ui.translate import run_translate

        code = run_translate(name, settings, source=source, wpm=wpm or DEFAULT_WPM, api_key=api_key)
        raise typer.Exit(code)
    if interactive:
        fail("no source text: pass --input FILE or pipe text on stdin (or run in a terminal)")
    text = read_utf8(input_file, "input")
    sentences = split_sentences(text)
    if not sentences:
        fail("the source text is empty")
    references = None
    if reference is not None:
        references = match_references(read_utf8(reference, "reference"), len(sentences))
    from mlxchat.engine.factory import make_engine

    engine = make_engine(name, api_key=api_key)
    info = load_model_or_exit(engine, name, quiet=as_json)
    settings = settings.resolved(settings_or_exit(), info.sampling_defaults)
    if verbose:
        echo_backend(info)
    report = Report(references)
    printer = JsonPrinter(report) if as_json else PlainPrinter(report, verbose)
    with quiet_when_reader_leaves():
        code = run_plain(engine, sentences, settings, wpm, printer)
    raise typer.Exit(code)

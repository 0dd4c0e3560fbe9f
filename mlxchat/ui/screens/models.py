"""The /models picker: the models found on this machine, filtered as you type.

It returns the chosen model's name (what `/model NAME` takes), or None when closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from mlxchat.text import sanitize

ListModels = Callable[[], Sequence[object]]
"""Returns the local models (objects with name, kind, size, path)."""


@dataclass(frozen=True)
class ModelChoice:
    """One line of the picker.

    Attributes:
        name: What `/model` takes to load it.
        kind: Where it comes from (demo, gguf, mlx, hf, …).
        size: Its size in bytes (0: unknown).
        path: Where it lives, shown dimmed.
    """

    name: str
    kind: str = ""
    size: int = 0
    path: str = ""


def format_size(size: int) -> str:
    """Bytes as "98 MB" / "1.4 GB" ("" when unknown)."""
    if size <= 0:
        return ""
    if size < 1e9:
        return f"{size / 1e6:.0f} MB"
    return f"{size / 1e9:.1f} GB"


def choices_from(models: Sequence[object]) -> list[ModelChoice]:
    """ModelChoices from `list_local_models()` results (anything with name/kind/size/path)."""
    result = []
    for model in models:
        size = getattr(model, "size", 0) or 0
        result.append(
            ModelChoice(
                name=str(getattr(model, "name", model)),
                kind=str(getattr(model, "kind", "") or ""),
                size=int(size) if isinstance(size, int | float) else 0,
                path=str(getattr(model, "path", "") or ""),
            )
        )
    return result


class ModelPicker(ModalScreen[str | None]):
    """Pick a local model.

    Bindings:
        escape: Close without choosing.
        down/up: Move in the list while typing in the filter.
    """

    DEFAULT_CSS = """
    ModelPicker {
        align: center middle;
    }
    ModelPicker > Vertical {
        width: 90%;
        max-width: 110;
        height: auto;
        max-height: 90%;
        border: round $primary;
        border-title-color: $primary;
        background: $surface;
        padding: 0 1;
    }
    ModelPicker Input { margin: 0 0 1 0; }
    ModelPicker OptionList { height: auto; max-height: 20; background: $surface; }
    ModelPicker .picker--empty { color: $text-muted; padding: 1; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
    ]

    def __init__(self, models: Sequence[ModelChoice], current: str = "", error: str = "") -> None:
        """Create the picker.

        Args:
            models: The models to offer.
            current: The model in use (marked).
            error: Why the list could not be read, shown instead of it.
        """
        super().__init__()
        self.models = list(models)
        self.current = current
        self.error = error
        self._shown: list[ModelChoice] = []

    def compose(self) -> ComposeResult:
        """A filter box and the list."""
        with Vertical() as box:
            box.border_title = "Models on this machine"
            yield Input(placeholder="filter…", id="model-filter")
            yield OptionList(id="model-list")
            yield Label("", classes="picker--empty")

    def on_mount(self) -> None:
        """Fill the list and focus the filter."""
        self._fill("")
        self.query_one(Input).focus()

    def _fill(self, text: str) -> None:
        words = text.lower().split()
        self._shown = [
            m for m in self.models if all(w in f"{m.name} {m.kind} {m.path}".lower() for w in words)
        ]
        options = self.query_one(OptionList)
        options.clear_options()
        names = [sanitize(m.name, one_line=True) for m in self._shown]
        width = max((len(name) for name in names), default=0)
        for name, model in zip(names, self._shown, strict=True):
            mark = "● " if model.name == self.current else "  "
            label = Content.assemble(
                (mark, "$success"),
                (name.ljust(width), "bold"),
                (f"  {model.kind:<5}", "$secondary"),
                (f" {format_size(model.size):>8}", ""),
                (
                    "\n    " + sanitize(model.path, one_line=True)
                    if model.path and model.path != model.name
                    else "",
                    "$text-muted",
                ),
            )
            options.add_option(Option(label))
        if self._shown:
            options.highlighted = 0
        empty = self.query_one(".picker--empty", Label)
        if self.error:
            empty.update(self.error)
        elif not self.models:
            empty.update("No local models found. Use /model NAME with a path or a Hugging Face id.")
        elif not self._shown:
            empty.update("No model matches the filter.")
        else:
            empty.update("Enter loads the highlighted model · Esc closes")

    @on(Input.Changed, "#model-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#model-filter")
    def _submit(self, event: Input.Submitted) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None and self._shown:
            self.dismiss(self._shown[highlighted].name)

    @on(OptionList.OptionSelected, "#model-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._shown[event.option_index].name)

    def action_move(self, delta: int) -> None:
        """Move the highlight while the filter has the focus."""
        options = self.query_one(OptionList)
        if not self._shown:
            return
        current = options.highlighted if options.highlighted is not None else 0
        options.highlighted = max(0, min(len(self._shown) - 1, current + delta))

    def action_close(self) -> None:
        """Close without choosing."""
        self.dismiss(None)

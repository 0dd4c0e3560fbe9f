"""The /models picker: the models found on this machine, filtered as you type.

It returns the chosen model's name (what `/model NAME` takes), or None when closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual.content import Content

from mlxchat.text import sanitize
from mlxchat.ui.screens.filter_list import FilterList

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


class ModelPicker(FilterList[ModelChoice, str]):
    """Pick a local model (see `FilterList` for the keys)."""

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

    BOX_TITLE = "Models on this machine"
    INPUT_ID = "model-filter"
    LIST_ID = "model-list"
    NOTE_CLASS = "picker--empty"

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

    def find(self, text: str) -> tuple[list[ModelChoice], str]:
        """The models whose name, kind or path hold every word of `text`."""
        words = text.lower().split()
        shown = [
            m for m in self.models if all(w in f"{m.name} {m.kind} {m.path}".lower() for w in words)
        ]
        if not shown and self.typed(text.strip()):
            note = f"Enter downloads {text.strip()} from the Hugging Face Hub and loads it"
        elif self.error:
            note = self.error
        elif not self.models:
            note = "No local models found. Use /model NAME with a path or a Hugging Face id."
        elif not shown:
            note = "No model matches the filter."
        else:
            note = "Enter loads the highlighted model · Esc closes"
        return shown, note

    def labels(self, items: Sequence[ModelChoice]) -> list[Content]:
        """Name (the one in use marked), kind, size, and the path below."""
        names = [sanitize(m.name, one_line=True) for m in items]
        width = max((len(name) for name in names), default=0)
        return [
            Content.assemble(
                ("● " if model.name == self.current else "  ", "$success"),
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
            for name, model in zip(names, items, strict=True)
        ]

    def typed(self, text: str) -> str | None:
        """A Hub id typed in the filter (org/name[:QUANT]) that nothing here matches."""
        from mlxchat.models.hub import parse

        return text if parse(text) is not None else None

    def value(self, item: ModelChoice) -> str:
        """The model's name, what `/model` takes."""
        return item.name

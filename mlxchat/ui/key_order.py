"""Keys handled in the order they were typed, also when they arrive together.

Textual puts a focused widget's printable keys in at once, in the widget's own task, but
runs a bound key (an arrow, Backspace, Home, Tab, Ctrl+Up, a transcript key) only once the
event has bubbled up to the app, in the app's task (Textual issue 6605). Keys that arrive
together (over SSH, from a macro, while the UI is busy) were applied out of order: `abc`
then Left Left X in one burst gave `abcX`, and a key after Tab went to the widget Tab had
left. A widget that `TakesKeys` is handed each key in the app's task instead, one after the
other, and resolves it there: its own keys, printable text, then the binding in force where
the focus is (the one Textual would run). Focus changes made by those keys take effect at
once (`Screen.set_focus`), so the next key goes where the user expects. A paste is taken
in the same task, so that a paste and the Enter after it (one burst from a terminal without
bracketed paste) are applied in that order.

Only public Textual API: `App.on_event`, `Screen.active_bindings`, `App.run_action`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from textual import events
from textual.app import App
from textual.widget import Widget


@runtime_checkable
class TakesKeys(Protocol):
    """A widget that resolves its keys where they arrive, in order."""

    async def take_key(self, event: events.Key) -> bool:
        """Handle `event` now; False leaves it to Textual's usual path."""
        ...

    async def take_paste(self, text: str) -> bool:
        """Insert pasted `text` now; False leaves it to Textual's usual path."""
        ...


async def take_in_order(app: App[object], event: events.Key | events.Paste) -> bool:
    """Give a key or a paste straight from the terminal to the focused widget if it takes
    keys in order (priority bindings, such as Ctrl+Q, keep Textual's path); whether it was
    taken."""
    focused = app.focused
    if not isinstance(focused, TakesKeys):
        return False
    if isinstance(event, events.Paste):
        return await focused.take_paste(event.text)
    active = app.screen.active_bindings.get(event.key)
    if active is not None and active.binding.priority:
        return False
    app.app_focus = True
    return await focused.take_key(event)


async def run_binding(widget: Widget, key: str) -> bool:
    """Run the binding in force for `key` where the focus is (`widget`'s, its screen's or
    the app's), as Textual's app would; whether one ran."""
    active = widget.screen.active_bindings.get(key)
    if active is None or not active.enabled:
        return False
    return await widget.app.run_action(active.binding.action, active.node)

"""The key footer, showing only the keys that fit whole.

Textual's `Footer` cuts the last key that does not fit mid-word ("^n Ne"); this one hides
the keys from there on, so a narrow window shows fewer keys, each readable.
"""

from __future__ import annotations

from textual import events
from textual.widget import Widget
from textual.widgets import Footer


class FittingFooter(Footer):
    """A `Footer` that hides the keys that would be cut at its right edge."""

    async def recompose(self) -> None:
        """The keys again (the bindings changed); then those that fit."""
        await super().recompose()
        self.call_after_refresh(self._fit)

    def on_resize(self, event: events.Resize) -> None:
        """Every key again, then those that fit the new width."""
        for key in self._keys():
            key.display = True
        self.call_after_refresh(self._fit)

    def _keys(self) -> list[Widget]:
        """The keys in order, but the command palette's (docked at the right)."""
        return [key for key in self.query("FooterKey") if not key.has_class("-command-palette")]

    def _fit(self) -> None:
        palettes = [key for key in self.query("FooterKey") if key.has_class("-command-palette")]
        right = palettes[0].region.x if palettes and palettes[0].display else self.region.right
        cut = False
        for key in self._keys():
            cut = cut or key.region.right > right
            if cut:
                key.display = False

"""The command palette (Ctrl+P) offers the slash-commands, from the same table as /help.

A command without an argument runs at once; one that needs an argument puts "/name " in
the prompt so the user can type it (with completion).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from mlxchat.ui.commands import COMMANDS, Command


@runtime_checkable
class CommandHost(Protocol):
    """A screen that can run slash-commands (the chat screen)."""

    def palette_command(self, command: Command) -> None:
        """Run `command`, or start typing it when it needs an argument."""
        ...


class SlashCommandProvider(Provider):
    """Palette hits for every slash-command ("/temp X — sampling temperature …")."""

    def _host(self) -> CommandHost | None:
        screen = self.screen
        if isinstance(screen, CommandHost):
            return screen
        for candidate in reversed(self.app.screen_stack):
            if isinstance(candidate, CommandHost):
                return candidate
        return None

    def _runner(self, host: CommandHost, command: Command):  # noqa: ANN202 - a callback
        return lambda: host.palette_command(command)

    async def discover(self) -> Hits:
        """Every command, in table order."""
        host = self._host()
        if host is None:
            return
        for command in COMMANDS.values():
            yield DiscoveryHit(
                command.usage, self._runner(host, command), text=command.usage, help=command.help
            )

    async def search(self, query: str) -> Hits:
        """Commands whose usage or help matches `query` (fuzzy)."""
        host = self._host()
        if host is None:
            return
        matcher = self.matcher(query.lstrip("/"))
        for command in COMMANDS.values():
            text = f"/{command.name} {command.help}"
            score = max(matcher.match(command.usage), matcher.match(text) * 0.8)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.usage),
                    self._runner(host, command),
                    text=command.usage,
                    help=command.help,
                )

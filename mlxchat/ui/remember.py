"""Keep what the user changes in the app (theme, model) in config.toml for the next start."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from mlxchat.config import ConfigError, save_setting


def remember(app: App, name: str, value: str) -> None:
    """Write `name = value` to the config file; a failure is one notice, never an error."""
    try:
        save_setting(name, value)
    except ConfigError as error:
        app.notify(str(error), title="Setting not saved", severity="warning", markup=False)


def model_to_remember(name: str) -> str:
    """The model name to write: a relative path made absolute (it must work from anywhere)."""
    path = Path(name).expanduser()
    return str(path.resolve()) if not path.is_absolute() and path.exists() else name

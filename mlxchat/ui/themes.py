"""Colour themes from TOML files: the built-in `themes/` folder and the user's own.

The file format is documented in `themes/README.md`: top-level keys are the fields of
`textual.theme.Theme` (`name`, `primary`, … `dark`), plus an optional `[variables]` table.
A bad file is reported (one line) and skipped; the app starts with the others.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.color import Color, ColorParseError
from textual.theme import BUILTIN_THEMES, Theme

COLOR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)
"""Theme fields that hold a colour (any form Textual parses: "#RRGGBB", "rgb(…)", names)."""

NUMBER_KEYS = ("luminosity_spread", "text_alpha")
KNOWN_KEYS = frozenset(("name", "dark", "variables", *COLOR_KEYS, *NUMBER_KEYS))


class ThemeFileError(Exception):
    """A theme file is unusable; the message says why."""


def builtin_themes_dir() -> Traversable:
    """The shipped theme files: package data `mlxchat.themes`, else `<checkout>/themes`."""
    try:
        return files("mlxchat.themes")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "themes"


def theme_from_mapping(data: dict[str, Any]) -> Theme:
    """Build a Theme from a parsed theme file, checking every key.

    Raises:
        ThemeFileError: A missing, unknown or invalid key.
    """
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ThemeFileError(f"unknown key '{unknown[0]}' (known: {', '.join(sorted(KNOWN_KEYS))})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError("'name' must be a non-empty string")
    if "primary" not in data:
        raise ThemeFileError("'primary' is required")
    for key in COLOR_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ThemeFileError(f"'{key}' must be a colour string like \"#4FB8A8\"")
        try:
            Color.parse(value)
        except ColorParseError:
            raise ThemeFileError(f"'{key}' is not a colour: {value!r}") from None
    if not isinstance(data.get("dark", True), bool):
        raise ThemeFileError("'dark' must be true or false")
    for key in NUMBER_KEYS:
        if key in data and (isinstance(data[key], bool) or not isinstance(data[key], int | float)):
            raise ThemeFileError(f"'{key}' must be a number")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ThemeFileError("[variables] must be a table of strings")
    theme = Theme(**{**data, "name": name.strip()})
    try:
        theme.to_color_system().generate()
    except Exception as error:  # Textual's own checks, whatever they raise
        raise ThemeFileError(f"Textual rejects it: {error}") from None
    return theme


def load_theme_file(path: Traversable) -> Theme:
    """Read one theme file.

    Raises:
        ThemeFileError: Unreadable, invalid TOML or an invalid theme.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ThemeFileError(
            f"cannot read it ({getattr(error, 'strerror', None) or error})"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ThemeFileError(f"invalid TOML: {error}") from None
    return theme_from_mapping(data)


def _theme_files(folder: Traversable) -> list[Traversable]:
    return sorted(
        (p for p in folder.iterdir() if p.name.endswith(".toml") and p.is_file()),
        key=lambda p: p.name,
    )


def load_themes(
    builtin_dir: Traversable | None, user_dir: Traversable | None
) -> tuple[list[Theme], list[str]]:
    """All themes, built-in first; a user theme replaces a built-in of the same name.

    Args:
        builtin_dir: The shipped themes (`builtin_themes_dir()`), or None.
        user_dir: The user's themes (`locations.themes_dir()`); may not exist.

    Returns:
        The themes, and one line per file that was skipped, naming the file and the problem.
    """
    themes: dict[str, Theme] = {}
    errors: list[str] = []
    for folder in (builtin_dir, user_dir):
        if folder is None or not folder.is_dir():
            continue
        try:
            paths = _theme_files(folder)
        except OSError as error:
            errors.append(f"theme folder {folder}: cannot list it ({error.strerror or error})")
            continue
        seen: dict[str, str] = {}
        for path in paths:
            try:
                theme = load_theme_file(path)
            except ThemeFileError as error:
                errors.append(f"theme file {path}: {error}; skipped")
                continue
            if theme.name in seen:
                errors.append(
                    f"theme file {path}: name '{theme.name}' is already used by "
                    f"{seen[theme.name]}; skipped"
                )
                continue
            seen[theme.name] = path.name
            themes[theme.name] = theme
    return list(themes.values()), errors


FALLBACK_THEME = "textual-dark"


def default_themes() -> tuple[list[Theme], list[str]]:
    """The built-in theme files and the user's own (a bad file is an error line, skipped)."""
    from mlxchat import locations

    try:
        return load_themes(builtin_themes_dir(), locations.themes_dir())
    except Exception as error:  # never let a theme problem stop the app
        return [], [f"themes could not be loaded: {error}"]


def install_themes(app: App[Any], themes: list[Theme], errors: list[str], wanted: str) -> None:
    """Register `themes` on `app`, apply `wanted` (else the first theme file's), and show
    each problem once as a notification.

    The themes offered (the palette's theme picker, /theme) are then mlxchat's and the
    user's files only: Textual's own built-in themes are unregistered once one loaded.
    """
    for theme in themes:
        try:
            app.register_theme(theme)
        except Exception as error:
            errors.append(f"theme {theme.name}: {error}")
    ours = [t.name for t in themes if t.name in app.available_themes]
    offered = ours or list(app.available_themes)
    if wanted in offered:
        app.theme = wanted
    else:
        app.theme = ours[0] if ours else FALLBACK_THEME
        if wanted:
            errors.append(f"no theme named '{wanted}'; available: {', '.join(sorted(offered))}")
    for name in BUILTIN_THEMES:
        if name not in offered:
            app.unregister_theme(name)
    for problem in errors:
        app.notify(problem, title="Theme", severity="warning", timeout=10, markup=False)

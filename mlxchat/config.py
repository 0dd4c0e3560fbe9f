"""Settings: defaults, the TOML file (`locations.config_file()`) and command-line overrides.

Precedence, lowest first: the defaults below, the config file, command-line flags.
Every problem is a `ConfigError` whose message is one line naming the file, the key and
the fix, so the CLI can print it as is.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from mlxchat import locations
from mlxchat.engine.types import SamplingParams


class ConfigError(Exception):
    """A bad setting: the message is one line saying where, what, and how to fix it."""


@dataclass(frozen=True)
class Settings:
    """Everything a user can set, with the chat defaults."""

    model: str = "demo"
    """The model to chat with: "demo", a Hugging Face id, a local folder or a .gguf file."""

    system_prompt: str = ""
    """The system prompt sent before every conversation ("" sends none)."""

    temp: float = 0.7
    """Sampling temperature; 0 always picks the most likely token."""

    top_p: float = 0.95
    """Nucleus sampling: keep the most likely tokens up to this probability mass (1 = off)."""

    min_p: float = 0.0
    """Drop tokens less likely than this fraction of the top token (0 = off)."""

    top_k: int = 0
    """Keep only the k most likely tokens (0 = off)."""

    max_tokens: int = 1024
    """The longest answer, in tokens."""

    seed: int | None = None
    """Random seed for repeatable answers (unset: different each time)."""

    repetition_penalty: float | None = None
    """Penalty for repeating recent tokens, e.g. 1.1 (unset: off)."""

    theme: str = "mlxchat-dark"
    """The colour theme: a built-in one or a file in the user themes folder."""

    max_context: int | None = None
    """Most tokens of context to keep (unset: the model's own limit)."""

    progress_interval: float = 0.25
    """Seconds between status-bar updates while generating."""

    fast_cpu: bool = True
    """On CPU, use the system OpenBLAS and float32 weights when that is faster."""

    def sampling(self) -> SamplingParams:
        """The decoding settings for the engine."""
        return SamplingParams(
            temp=self.temp,
            top_p=self.top_p,
            min_p=self.min_p,
            top_k=self.top_k,
            repetition_penalty=self.repetition_penalty,
            seed=self.seed,
            max_tokens=self.max_tokens,
        )


_EXAMPLES: dict[str, Any] = {"seed": 0, "repetition_penalty": 1.1, "max_context": 4096}
"""Values shown in the default file for settings that are unset by default."""

_RANGES: dict[str, tuple[float | None, float | None, str]] = {
    "temp": (0.0, None, "a number ≥ 0"),
    "top_p": (0.0, 1.0, "a number from 0 to 1"),
    "min_p": (0.0, 1.0, "a number from 0 to 1"),
    "top_k": (0, None, "a whole number ≥ 0"),
    "max_tokens": (1, None, "a whole number ≥ 1"),
    "repetition_penalty": (0.0, None, "a number > 0"),
    "max_context": (1, None, "a whole number ≥ 1"),
    "progress_interval": (0.0, None, "a number of seconds > 0"),
}
_STRICT_LOWER = {"repetition_penalty", "progress_interval"}
_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _field_types() -> dict[str, tuple[type, bool]]:
    """Each field's base type and whether it may be None."""
    hints = typing.get_type_hints(Settings)
    result: dict[str, tuple[type, bool]] = {}
    for f in fields(Settings):
        hint = hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
        base = next(a for a in args if a is not type(None)) if args else hint
        result[f.name] = (base, bool(args))
    return result


def field_docs() -> dict[str, str]:
    """The docstring of every Settings field, read from this module's source."""
    try:
        tree = ast.parse(inspect.getsource(Settings))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
        ):
            docs[node.target.id] = str(after.value.value)
    return docs


def _describe(value: object) -> str:
    """A value as TOML would show it, with its kind."""
    kinds = {bool: "true/false", int: "whole number", float: "number", str: "string"}
    kinds.update({dict: "table", list: "array"})
    shown = _toml(value) if type(value) in kinds and type(value) not in (dict, list) else "…"
    return f"{shown} ({kinds.get(type(value), type(value).__name__)})"


def _check(name: str, value: object, where: str, in_file: bool) -> object:
    """Validate one value for field `name`; return it converted (int -> float)."""
    base, optional = _field_types()[name]
    if value is None and optional:
        return None
    if value is None:
        raise ConfigError(f"{where}: '{name}' cannot be unset; give {_TYPE_WORDS[base]}")
    default = getattr(Settings(), name)
    if not in_file:
        fix = f"give {_TYPE_WORDS[base]}"
    elif default is None:
        fix = "fix it, or delete the line to leave it unset"
    else:
        fix = f"fix it, or delete the line to use the default ({_toml(default)})"
    original = value
    ok = isinstance(value, base) and not (base is int and isinstance(value, bool))
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        words = _TYPE_WORDS[base]
        raise ConfigError(f"{where}: '{name}' must be {words}, got {_describe(value)}; {fix}")
    if name in _RANGES:
        low, high, words = _RANGES[name]
        number = typing.cast(float, value)
        too_low = low is not None and (number <= low if name in _STRICT_LOWER else number < low)
        if too_low or (high is not None and number > high):
            raise ConfigError(f"{where}: '{name}' must be {words}, got {_toml(original)}; {fix}")
    if name in ("model", "theme") and not str(value).strip():
        raise ConfigError(f"{where}: '{name}' must not be empty; {fix}")
    return value


def _unknown(name: str, where: str) -> ConfigError:
    names = [f.name for f in fields(Settings)]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"remove it (known: {', '.join(names)})"
    return ConfigError(f"{where}: unknown key '{name}'; {hint}")


def apply_overrides(
    settings: Settings,
    overrides: Mapping[str, Any],
    where: str = "command line",
    *,
    in_file: bool = False,
) -> Settings:
    """A copy of `settings` with `overrides` applied and checked; None values are skipped.

    Args:
        settings: The settings to start from.
        overrides: Field name -> value (e.g. from CLI flags; None means "not given").
        where: What to name in error messages (a file path, "command line", "/temp").
        in_file: Whether the values come from a file (changes the suggested fix).

    Raises:
        ConfigError: An unknown key or a bad value.
    """
    known = {f.name for f in fields(Settings)}
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in known:
            raise _unknown(name, where)
        if value is not None:
            changes[name] = _check(name, value, where, in_file)
    return replace(settings, **changes)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(
            f"{path}: cannot read the config file ({reason}); fix or remove it"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.match(r"(.*) \(at (line (\d+), column \d+|end of document)\)$", str(error))
        what, at = (match.group(1), match.group(2)) if match else (str(error), "end of document")
        line = match.group(3) if match and match.group(3) else str(max(1, len(text.splitlines())))
        if not at.startswith("line"):
            at = f"line {line} ({at})"
        raise ConfigError(f"{path}: invalid TOML at {at}: {what}; fix line {line}") from None


def load_settings(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings from the defaults, the config file, then `overrides`.

    Args:
        path: The TOML file; None means `locations.config_file()`. A missing file is fine.
        overrides: Command-line values by field name; None values mean "not given".

    Raises:
        ConfigError: Invalid TOML, an unknown key, or a value of the wrong type or range.
    """
    path = locations.config_file() if path is None else Path(path)
    settings = apply_overrides(Settings(), _read_toml(path), str(path), in_file=True)
    return apply_overrides(settings, overrides or {})


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def default_config_text() -> str:
    """A commented config file listing every setting at its default (all commented out)."""
    docs = field_docs()
    lines = [
        "# mlxchat settings (TOML). Uncomment a line to change a setting.",
        "# Command-line flags override what is set here.",
    ]
    for f in fields(Settings):
        default = getattr(Settings(), f.name)
        lines.append("")
        lines.append(f"# {docs.get(f.name, f.name)}")
        if default is None:
            lines.append(f"# {f.name} = {_toml(_EXAMPLES[f.name])}  # an example; unset by default")
        else:
            lines.append(f"# {f.name} = {_toml(default)}")
    return "\n".join(lines) + "\n"


def write_default_config(path: Path | None = None, *, overwrite: bool = False) -> Path:
    """Write the commented default config file and return its path.

    Raises:
        ConfigError: The file exists (and `overwrite` is False) or cannot be written.
    """
    path = locations.config_file() if path is None else Path(path)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path}: a config file is already there; edit it or move it away")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(default_config_text(), encoding="utf-8")
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"{path}: cannot write the config file ({reason})") from None
    return path

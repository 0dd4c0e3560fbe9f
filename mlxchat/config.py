"""Settings: the TOML file (`locations.config_file()`) and command-line overrides.

Precedence, lowest first: the built-in defaults (`mlxchat.settings`), the model's own
`generation_config.json` (sampling only, see `Settings.sampling`), the config file,
command-line flags (and, in the chat, slash-commands).
Every problem is a `ConfigError` whose message is one line naming the file, the key and
the fix, so the CLI can print it as is.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from mlxchat import locations
from mlxchat.engine.types import RequestOptions, SamplingParams
from mlxchat.settings import (
    SAMPLING,
    SETTINGS,
    SettingError,
    default,
    toml_value,
    unknown,
    validate,
)
from mlxchat.tools.config import McpConfigError, ServerConfig, parse_mcp


class ConfigError(Exception):
    """A bad setting: the message is one line saying where, what, and how to fix it.

    Attributes:
        name: The setting at fault, when one is ("top_p").
    """

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class Settings:
    """What the config file and the chat's flags set; each is declared in `mlxchat.settings`.

    `chosen` names the settings the user gave (in the file or as a flag): those beat a
    model's own `generation_config.json`, the built-in defaults do not.
    """

    model: str = default("model")
    translate_model: str = default("translate_model")
    system_prompt: str = default("system_prompt")
    temp: float = default("temp")
    top_p: float = default("top_p")
    min_p: float = default("min_p")
    top_k: int = default("top_k")
    max_tokens: int = default("max_tokens")
    seed: int | None = default("seed")
    repetition_penalty: float | None = default("repetition_penalty")
    repetition_context_size: int = default("repetition_context_size")
    enable_thinking: bool | None = default("enable_thinking")
    thinking_budget: int | None = default("thinking_budget")
    theme: str = default("theme")
    max_context: int | None = default("max_context")
    progress_interval: float = default("progress_interval")
    fast_cpu: bool = default("fast_cpu")
    prompt_cache_mb: int | None = default("prompt_cache_mb")
    prompt_cache_disk_mb: int = default("prompt_cache_disk_mb")
    speculative: str = default("speculative")
    draft_model: str = default("draft_model")
    allowed_hosts: str = default("allowed_hosts")
    allowed_origins: str = default("allowed_origins")
    max_tool_steps: int = default("max_tool_steps")
    tool_timeout: float = default("tool_timeout")
    model_aliases: str = default("model_aliases")
    mcp_servers: tuple[ServerConfig, ...] = ()
    """The `[mcp.servers.NAME]` tables (mlxchat/tools/config.py)."""
    chosen: frozenset[str] = frozenset()

    def request_options(self) -> RequestOptions:
        """The thinking settings as a request's options (the template's `enable_thinking`
        only when set)."""
        kwargs = {} if self.enable_thinking is None else {"enable_thinking": self.enable_thinking}
        return RequestOptions(template_kwargs=kwargs, thinking_budget=self.thinking_budget)

    @property
    def prompt_cache_bytes(self) -> int | None:
        """`prompt_cache_mb` in bytes (None: the engine's default)."""
        return None if self.prompt_cache_mb is None else self.prompt_cache_mb * 10**6

    @property
    def prompt_cache_disk_bytes(self) -> int:
        """`prompt_cache_disk_mb` in bytes (0: no disk tier)."""
        return self.prompt_cache_disk_mb * 10**6

    def sampling(self, model_defaults: Mapping[str, Any] | None = None) -> SamplingParams:
        """The decoding settings: the user's choices, else the model's, else the built-in.

        Args:
            model_defaults: The loaded model's own defaults (`ModelInfo.sampling_defaults`).
        """
        values = {name: getattr(self, name) for name in SAMPLING}
        for name, value in (model_defaults or {}).items():
            if name in values and name not in self.chosen:
                values[name] = value
        return SamplingParams(**values)


KEYS = tuple(f.name for f in fields(Settings) if f.name in SETTINGS)
"""The keys a config file may set, in the order the default file lists them."""


def _fix(name: str, in_file: bool) -> str:
    setting = SETTINGS[name]
    if not in_file:
        return f"give {setting.expects}"
    if setting.default is None:
        return "fix it, or delete the line to leave it unset"
    return f"fix it, or delete the line to use the default ({toml_value(setting.default)})"


def apply_overrides(
    settings: Settings,
    overrides: Mapping[str, Any],
    where: str = "command line",
    *,
    in_file: bool = False,
) -> Settings:
    """A copy of `settings` with `overrides` applied, checked and marked as chosen.

    Args:
        settings: The settings to start from.
        overrides: Setting name -> value (e.g. from CLI flags; None means "not given").
        where: What to name in error messages (a file path, "command line").
        in_file: Whether the values come from a file (changes the suggested fix).

    Raises:
        ConfigError: An unknown key or a bad value.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    for name in overrides:
        if name not in KEYS:
            raise ConfigError(f"{where}: {unknown(name, KEYS)}")
    try:
        changes = validate(given, KEYS)
    except SettingError as error:
        message = f"{where}: {error}; {_fix(error.name, in_file)}"
        raise ConfigError(message, error.name) from None
    return replace(settings, **changes, chosen=settings.chosen | set(changes))


def effective_sampling(
    settings: Settings,
    model_defaults: Mapping[str, Any] | None,
    request: Mapping[str, Any] | None = None,
    where: str = "request",
) -> SamplingParams:
    """The sampling one request runs with: the one rule of every entry point (the chat,
    `generate`, `translate`, and the server's HTTP and WebSocket requests).

    Highest first: the request's own values (a flag, a slash-command, a JSON field), the
    config file, the model's `generation_config.json` (`ModelInfo.sampling_defaults`), the
    built-in defaults.

    Args:
        settings: The config file and flags (what the user chose is in `chosen`).
        model_defaults: The loaded model's own defaults (None: unknown, e.g. no model yet).
        request: Sampling values of this request by setting name (None values: not given).
        where: How to name the request in an error.

    Raises:
        ConfigError: A request value out of range (its `name` says which).
    """
    if request:
        settings = apply_overrides(settings, request, where)
    return settings.sampling(model_defaults)


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
    return _parse(path, text)


def _parse(path: Path, text: str) -> dict[str, Any]:
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
    values = _read_toml(path)
    try:
        servers = parse_mcp(values.pop("mcp", {}))
    except McpConfigError as error:
        raise ConfigError(f"{path}: {error}; fix it, or delete the table") from None
    settings = apply_overrides(Settings(mcp_servers=servers), values, str(path), in_file=True)
    return apply_overrides(settings, overrides or {})


def default_config_text() -> str:
    """A commented config file listing every setting at its default (all commented out)."""
    lines = [
        "# mlxchat settings (TOML). Uncomment a line to change a setting.",
        "# Command-line flags and slash-commands override what is set here; what is set",
        "# here overrides a model's own generation_config.json. mlxchat itself updates",
        "# `theme` and `model` here when you change them in the app.",
    ]
    for name in KEYS:
        setting = SETTINGS[name]
        lines += ["", f"# {setting.help}"]
        if setting.default is None:
            example = toml_value(setting.example)
            lines.append(f"# {name} = {example}  # an example; unset by default")
        else:
            lines.append(f"# {name} = {toml_value(setting.default)}")
    return "\n".join(lines) + "\n"


def write_default_config(path: Path | None = None, *, overwrite: bool = False) -> Path:
    """Write the commented default config file and return its path.

    Raises:
        ConfigError: The file exists (and `overwrite` is False) or cannot be written.
    """
    path = locations.config_file() if path is None else Path(path)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path}: a config file is already there; edit it or move it away")
    _write_atomically(path, default_config_text())
    return path


def save_setting(name: str, value: Any, path: Path | None = None) -> Path:
    """Set `name = value` in the config file, keeping its comments and every other line.

    The line that sets `name` gets the new value (a comment after it stays); without one,
    the new line goes under the commented-out example of the default file, else at the end
    of the top-level keys. A missing file starts from the commented default. The file is
    replaced atomically, so a crash leaves the old or the new file, never half of one.

    Raises:
        ConfigError: A bad value, or the file cannot be read, parsed or written.
    """
    path = locations.config_file() if path is None else Path(path)
    if name not in KEYS:
        raise ConfigError(f"{path}: {unknown(name, KEYS)}")
    try:
        value = SETTINGS[name].check(value)
    except SettingError as error:
        raise ConfigError(f"{path}: {error}") from None
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else default_config_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(f"{path}: cannot read the config file ({reason})") from None
    before = _parse(path, text)
    updated = _set_line(text, name, toml_value(value))
    if _parse(path, updated) != {**before, name: value}:
        raise ConfigError(f"{path}: cannot update '{name}' automatically; edit the file")
    _write_atomically(path, updated)
    return path


_TABLE = re.compile(r"^\s*\[")
_VALUE = r"(\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s#]+)"


def _set_line(text: str, name: str, shown: str) -> str:
    """`text` with the top-level `name` set to the TOML value `shown`."""
    lines = text.splitlines(keepends=True)
    end = next((i for i, line in enumerate(lines) if _TABLE.match(line)), len(lines))
    key = re.escape(name)
    setting = re.compile(rf"^(\s*{key}\s*=\s*){_VALUE}")
    for i in range(end):
        if match := setting.match(lines[i]):
            lines[i] = match.group(1) + shown + lines[i][match.end() :]
            return "".join(lines)
    new = f"{name} = {shown}\n"
    example = re.compile(rf"^\s*#\s*{key}\s*=")
    at = next((i + 1 for i in range(end) if example.match(lines[i])), end)
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, new)
    return "".join(lines)


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file next to `path`, then rename it over `path`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        reason = error.strerror or str(error)
        raise ConfigError(f"{path}: cannot write the config file ({reason})") from None

"""Every setting a user can give, declared once: its type, default, range and help.

The config file, command-line flags, slash-commands and HTTP requests all check values
with the same `Setting.check` (one value) or `validate` (a dict of raw values), so the
rules cannot disagree. A bad value raises `SettingError`, whose message names the setting:

    validate({"temp": 0.2, "top_p": 1.5})
    # SettingError: 'top_p' must be a number from 0 to 1, got 1.5

Defaults (lowest precedence first): the built-in defaults below, the model's own
`generation_config.json` (`from_generation_config`), the user's config file, then a flag
or slash-command. This module imports no MLX.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_WAIT_K = 32
"""The largest wait-k lag (source words read before the first target word)."""

_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


class SettingError(ValueError):
    """A bad setting value: the message is one line naming the setting and its rule.

    Attributes:
        name: The setting's name.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class Setting:
    """One setting.

    Attributes:
        name: The key in the config file and in requests ("top_p"); the flag and the
            slash-command use dashes ("--top-p", "/top-p").
        kind: bool, int, float or str.
        default: The built-in default (None: unset).
        help: One line saying what it does.
        low: The smallest allowed number (None: no limit).
        high: The largest allowed number (None: no limit).
        above: `low` itself is not allowed (the value must be greater).
        optional: None ("unset") is allowed.
        example: A value to show in the default config file when the default is None.
        longest: The most characters a string may have (None: no limit).
        choices: The only values a string may take (None: any).
    """

    name: str
    kind: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    above: bool = False
    optional: bool = False
    example: Any = None
    longest: int | None = None
    choices: tuple[str, ...] | None = None

    @property
    def expects(self) -> str:
        """What a valid value is, in words: "a number from 0 to 1"."""
        words = _KINDS[self.kind]
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        if self.longest is not None:
            return f"{words} of at most {self.longest} characters"
        if self.low is not None and self.high is not None:
            return f"{words} from {show(self.low)} to {show(self.high)}"
        if self.low is not None:
            return f"{words} {'>' if self.above else '≥'} {show(self.low)}"
        return words

    @property
    def flag(self) -> str:
        """The command-line flag: "--top-p"."""
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any, label: str | None = None) -> Any:
        """`value` if valid (an int given for a float becomes a float).

        Args:
            value: The raw value.
            label: How to name the setting in the error (default: 'top_p').

        Raises:
            SettingError: Wrong type, out of range, an empty name, or None where not allowed.
        """
        label = label or f"'{self.name}'"
        if value is None:
            if self.optional:
                return None
            raise SettingError(self.name, f"{label} cannot be unset; give {self.expects}")
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if self.kind is float and is_int:
            value = float(value)
        elif not isinstance(value, self.kind) or (self.kind is int and not is_int):
            raise SettingError(self.name, f"{label} must be {self.expects}, got {describe(value)}")
        if self.kind is float and not math.isfinite(value):
            raise SettingError(self.name, f"{label} must be {self.expects}, got {value}")
        if self.kind in (int, float) and not self._in_range(value):
            raise SettingError(self.name, f"{label} must be {self.expects}, got {show(value)}")
        if self.kind is str and self.name in NOT_EMPTY and not value.strip():
            raise SettingError(self.name, f"{label} must not be empty")
        if self.longest is not None and len(value) > self.longest:
            raise SettingError(self.name, f"{label} must be {self.expects}, got {len(value)}")
        if self.choices is not None and value not in self.choices:
            raise SettingError(self.name, f"{label} must be {self.expects}, got '{clip(value)}'")
        return value

    def parse(self, text: str, label: str | None = None) -> Any:
        """Check a value typed as text (a slash-command's argument); "off" unsets.

        Args:
            text: What was typed.
            label: How to name the setting in the error (default: 'top_p').

        Raises:
            SettingError: Not a value of the right type, or out of range.
        """
        text = text.strip()
        if self.optional and text.lower() in ("off", "none", "unset"):
            return None
        value: Any = text
        if self.kind in (int, float):
            try:
                value = self.kind(text)
            except ValueError:
                raise SettingError(
                    self.name, f"'{clip(text)}' is not {_KINDS[self.kind]}"
                ) from None
        elif self.kind is bool:
            words = {"true": True, "on": True, "yes": True, "false": False, "off": False}
            if text.lower() not in words:
                raise SettingError(self.name, f"'{clip(text)}' is not on or off")
            value = words[text.lower()]
        return self.check(value, label)

    def _in_range(self, number: float) -> bool:
        if self.low is not None and (number <= self.low if self.above else number < self.low):
            return False
        return self.high is None or number <= self.high


NOT_EMPTY = {"model", "translate_model", "theme", "source_lang", "target_lang"}
"""Text settings that must not be blank."""

_ALL = (
    # --- what to chat with and how it looks -----------------------------------------------
    Setting(
        "model",
        str,
        "demo",
        'The model to chat with: "demo", a Hugging Face id, a local folder or a .gguf file.',
    ),
    Setting(
        "translate_model",
        str,
        "demo-translate",
        "The model `mlxchat translate` uses when none is given (-m).",
    ),
    Setting(
        "system_prompt", str, "", 'The system prompt sent before every conversation ("": none).'
    ),
    # --- sampling (shared by the chat, `generate`, translation and the server) ------------
    Setting(
        "temp",
        float,
        0.0,
        "Sampling temperature; 0 always picks the most likely token (greedy).",
        low=0.0,
        high=5.0,
    ),
    Setting(
        "top_p",
        float,
        1.0,
        "Nucleus sampling: keep the most likely tokens up to this probability mass (1 = off).",
        low=0.0,
        high=1.0,
    ),
    Setting(
        "min_p",
        float,
        0.0,
        "Drop tokens less likely than this fraction of the top token (0 = off).",
        low=0.0,
        high=1.0,
    ),
    Setting("top_k", int, 0, "Keep only the k most likely tokens (0 = off).", low=0),
    Setting(
        "repetition_penalty",
        float,
        None,
        "Penalty for repeating recent tokens, e.g. 1.1 (unset: off).",
        low=0.0,
        above=True,
        optional=True,
        example=1.1,
    ),
    Setting(
        "repetition_context_size",
        int,
        20,
        "How many recent tokens the repetition penalty looks at.",
        low=1,
    ),
    Setting("max_tokens", int, 1024, "The longest answer, in tokens.", low=1),
    Setting(
        "seed",
        int,
        None,
        "Random seed for repeatable answers (unset: different each time).",
        low=0,
        high=2**63 - 1,
        optional=True,
        example=0,
    ),
    # --- models that think ------------------------------------------------------------------
    Setting(
        "enable_thinking",
        bool,
        None,
        "Let a model that thinks reason before it answers (unset: its template's default).",
        optional=True,
        example=True,
    ),
    Setting(
        "thinking_budget",
        int,
        None,
        "Most reasoning tokens before the answer is forced to begin (unset: no cap).",
        low=0,
        optional=True,
        example=1024,
    ),
    # --- the chat app ---------------------------------------------------------------------
    Setting(
        "theme",
        str,
        "mlxchat-dark",
        "The colour theme: a built-in one or a file in the user themes folder.",
    ),
    Setting(
        "max_context",
        int,
        None,
        "Most tokens of context to keep (unset: the model's own limit).",
        low=1,
        optional=True,
        example=4096,
    ),
    Setting(
        "progress_interval",
        float,
        0.25,
        "Seconds between status-bar updates while generating.",
        low=0.0,
        above=True,
    ),
    Setting(
        "fast_cpu", bool, True, "On CPU, use the system OpenBLAS and float32 weights when faster."
    ),
    Setting(
        "prompt_cache_mb",
        int,
        None,
        "Most megabytes of KV cache kept for reuse (unset: a tenth of the machine's memory).",
        low=1,
        optional=True,
        example=2048,
    ),
    # --- tools (MCP servers, [mcp.servers.NAME]) ---------------------------------------------
    Setting(
        "max_tool_steps",
        int,
        10,
        "Most rounds of tool calls in one answer before the chat stops to ask you.",
        low=1,
        high=100,
    ),
    Setting(
        "tool_timeout",
        float,
        60.0,
        "Seconds a tool call may take before it fails (an MCP server may take 60 to start).",
        low=0.0,
        above=True,
    ),
    Setting(
        "prompt_cache_disk_mb",
        int,
        4096,
        "Most megabytes of KV cache kept on disk across runs, so a resumed chat or a "
        "restarted server skips the prefill (0: off).",
        low=0,
    ),
    Setting(
        "speculative",
        str,
        "auto",
        "Speculative decoding: 'lookup' guesses the next tokens from earlier text and the "
        "model checks them in one step (same answers, faster when text repeats); 'draft': the "
        "draft model guesses them; 'auto': the draft model when one is set, else lookup, "
        "while at most 2 answers are written at once; 'off'.",
        choices=("auto", "off", "lookup", "draft"),
    ),
    Setting(
        "draft_model",
        str,
        "",
        "A small model with the same tokenizer as the chat model, loaded with it to guess "
        "tokens for speculative decoding (empty: none).",
    ),
    # --- mlxchat serve ----------------------------------------------------------------------
    Setting(
        "allowed_hosts",
        str,
        "",
        "More Host names `mlxchat serve` answers to, comma-separated (DNS-rebinding guard).",
    ),
    Setting(
        "allowed_origins",
        str,
        "",
        "Web page origins that may call `mlxchat serve`, comma-separated (none by default).",
    ),
    Setting(
        "model_aliases",
        str,
        "",
        "Model names `mlxchat serve` answers as the served model, comma-separated; '*' "
        "matches any run of characters (e.g. 'claude-*' for Claude Code).",
    ),
    # --- simultaneous translation ---------------------------------------------------------
    Setting(
        "wait_k",
        int,
        3,
        "Source words read before the first target word (the wait-k lag).",
        low=1,
        high=MAX_WAIT_K,
    ),
    Setting(
        "max_new_words",
        int,
        None,
        "Most target words per sentence (unset: 2 × source words + 2).",
        low=1,
        high=4096,
        optional=True,
        example=40,
    ),
    Setting(
        "max_tokens_per_word", int, 16, "Tokens after which a target word is cut.", low=1, high=256
    ),
    Setting("source_lang", str, "English", "The language of the source.", longest=40),
    Setting("target_lang", str, "French", "The language to translate into.", longest=40),
    Setting(
        "few_shot",
        bool,
        None,
        "Prompt translations with examples as plain text (unset: for models without a chat "
        "template).",
        optional=True,
        example=False,
    ),
    Setting(
        "stop_at_newline",
        bool,
        True,
        "End a translated sentence at a line break (small models go on commenting).",
    ),
)

SETTINGS: dict[str, Setting] = {s.name: s for s in _ALL}
"""Every setting by name."""

SAMPLING = (
    "temp",
    "top_p",
    "min_p",
    "top_k",
    "repetition_penalty",
    "repetition_context_size",
    "max_tokens",
    "seed",
)
"""The settings that make up a `SamplingParams` (besides its stop strings)."""


def default(name: str) -> Any:
    """The built-in default of setting `name`."""
    return SETTINGS[name].default


def validate(
    values: Mapping[str, Any], known: Sequence | None = None, *, flags: bool = False
) -> dict[str, Any]:
    """Check raw values by setting name; return them checked (ints for floats converted).

    Args:
        values: Setting name -> value, e.g. a parsed JSON request or TOML file.
        known: The names allowed here (default: every setting).
        flags: Name the settings as command-line flags ("--top-p") in errors.

    Raises:
        SettingError: An unknown name (with the closest known one) or a bad value.
    """
    allowed = list(known) if known is not None else list(SETTINGS)
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in allowed:
            raise unknown(name, allowed)
        setting = SETTINGS[name]
        checked[name] = setting.check(value, setting.flag if flags else None)
    return checked


def unknown(name: str, allowed: Sequence) -> SettingError:
    """The error for a name that is no setting, suggesting the closest one."""
    import difflib

    close = difflib.get_close_matches(name, list(allowed), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"remove it (known: {', '.join(allowed)})"
    return SettingError(name, f"unknown key '{name}'; {hint}")


_GENERATION_CONFIG = {
    "temperature": "temp",
    "top_p": "top_p",
    "min_p": "min_p",
    "top_k": "top_k",
    "repetition_penalty": "repetition_penalty",
}


def from_generation_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling defaults a model's `generation_config.json` asks for, in our names.

    `do_sample: false` means greedy (as in transformers). Values out of range are ignored,
    so a model's odd file never stops it from loading.
    """
    found: dict[str, Any] = {}
    for key, name in _GENERATION_CONFIG.items():
        if config.get(key) is None:
            continue
        try:
            found[name] = SETTINGS[name].check(config[key])
        except SettingError:
            continue
    if config.get("do_sample") is False:
        found["temp"] = 0.0
    return found


def show(value: float) -> str:
    """A number as people write it: 0.5, 1, 1e-05."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def clip(text: str, limit: int = 40) -> str:
    """`text` cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def toml_value(value: object) -> str:
    """`value` written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def describe(value: object) -> str:
    """A value as TOML would show it, with its kind: '"hot" (string)'."""
    kinds = {bool: "true/false", int: "whole number", float: "number", str: "string"}
    kinds.update({dict: "table", list: "array"})
    shown = toml_value(value) if type(value) in (bool, int, float, str) else "…"
    return f"{shown} ({kinds.get(type(value), type(value).__name__)})"

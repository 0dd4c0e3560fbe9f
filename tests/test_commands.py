"""Slash-commands: parsing, checked arguments, suggestions and completion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from mlxchat.ui.commands import (
    CommandError,
    completion_text,
    completions,
    is_command,
    parse_command,
    run_command,
    split_command,
)


class Context:
    """Records what the commands asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def theme_names(self) -> Sequence[str]:
        return ["dark", "light"]

    def model_names(self) -> Sequence[str]:
        return ["mlx-community/SmolLM2", "other/model"]

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, args))


def test_split_and_recognise() -> None:
    assert split_command("  /Temp  0.5 ") == ("temp", "0.5")
    assert split_command("/system\nline two") == ("system", "line two")
    assert is_command(" /help") and not is_command("//not a command") and not is_command("hi")


async def test_a_command_runs_its_handler_with_the_checked_value() -> None:
    ctx = Context()
    await run_command(ctx, "/temp 0.5")
    await run_command(ctx, "/model other/model")
    assert ctx.calls == [("set_sampling", ("temp", 0.5)), ("switch_model", ("other/model",))]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("/temp", "/temp needs"),
        ("/temp hot", "temp"),
        ("/help me", "takes no argument"),
        ("/model", "/model needs"),
        ("/theme neon", "no theme named 'neon'"),
    ],
)
def test_a_bad_argument_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(CommandError, match=problem):
        parse_command(Context(), text)


def test_an_unknown_command_suggests_close_ones() -> None:
    with pytest.raises(CommandError, match=r"Did you mean /temp\?") as caught:
        parse_command(Context(), "/tmp 1")
    assert "/help" in str(caught.value)


def test_completions_for_the_name_then_the_argument() -> None:
    ctx = Context()
    # names that start with it first, then those that contain it
    assert [text for text, _ in completions(ctx, "/he")] == ["/help", "/theme [NAME]"]
    assert completions(ctx, "/model oth") == [("/model other/model", "")]
    assert completions(ctx, "hello") == []


def test_accepting_a_completion() -> None:
    assert completion_text("/model NAME") == "/model "
    assert completion_text("/help") == "/help"
    assert completion_text("/model other/model") == "/model other/model"

"""Every engine and fake keeps the engine contract's signatures (mypy checks the types too:
tests/contract_check.py, run by .ci/run)."""

from __future__ import annotations

import inspect
from typing import Any, Protocol

import pytest
from ui.fake_engine import FakeEngine as ChatFake
from ui_translate.fake_translation import FakeTranslation

from mlxchat.engine import contract
from mlxchat.engine.engine import Engine
from mlxchat.engine.remote import RemoteEngine
from mlxchat.translate import translation
from mlxchat.translate.live import LiveTranslation
from mlxchat.translate.text_translation import TextTranslation

IMPLEMENTATIONS = [
    (Engine, contract.Engine),
    (RemoteEngine, contract.Engine),
    (ChatFake, contract.ChatEngine),
    (LiveTranslation, translation.BlockingTranslation),
    (TextTranslation, translation.BlockingTranslation),
    (FakeTranslation, translation.Translation),
]


def members(protocol: type) -> dict[str, Any]:
    """The methods and properties a protocol declares, with those of its protocol bases."""
    found: dict[str, Any] = {}
    for cls in reversed(protocol.__mro__):
        if getattr(cls, "_is_protocol", False) and cls is not Protocol:
            found.update(
                {k: v for k, v in vars(cls).items() if callable(v) or isinstance(v, property)}
            )
    return {k: v for k, v in found.items() if not k.startswith("_") or k in ("__anext__",)}


def test_the_contract_names_what_the_screens_and_cli_call() -> None:
    assert set(members(contract.Engine)) >= {
        "model_info", "load", "load_sync", "stream", "iterate", "cancel", "reset_session",
        "count_tokens", "close",
    }  # fmt: skip


@pytest.mark.parametrize(("impl", "protocol"), IMPLEMENTATIONS, ids=lambda x: x.__qualname__)
def test_implementation_keeps_the_contract(impl: type, protocol: type) -> None:
    for name, declared in members(protocol).items():
        assert hasattr(impl, name), f"{impl.__qualname__} lacks {name}"
        actual = inspect.getattr_static(impl, name)
        if isinstance(declared, property):
            continue  # a property or a plain attribute: mypy checks the type
        assert inspect.iscoroutinefunction(actual) == inspect.iscoroutinefunction(declared), name
        want = list(inspect.signature(declared).parameters.values())[1:]
        have = inspect.signature(actual).parameters
        for param in want:
            if param.kind is param.VAR_KEYWORD:
                assert any(p.kind is p.VAR_KEYWORD for p in have.values()), (impl, name)
                continue
            assert param.name in have, f"{impl.__qualname__}.{name} lacks '{param.name}'"
            got = have[param.name]
            assert got.kind == param.kind, f"{impl.__qualname__}.{name}({param.name}) kind"
            if param.default is not param.empty:
                assert got.default == param.default, f"{impl.__qualname__}.{name}({param.name})"
        extra = [p for n, p in have.items() if n != "self" and n not in {w.name for w in want}]
        for param in extra:  # more parameters are fine when callers need not pass them
            assert param.default is not param.empty or param.kind in (
                param.VAR_KEYWORD,
                param.VAR_POSITIONAL,
            ), f"{impl.__qualname__}.{name} requires '{param.name}'"

"""Static check of the engine contract (not a test module): `mypy` proves each engine and
fake satisfies its protocol. Run by .ci/run:

    mypy  # with the files and settings of [tool.mypy] in pyproject.toml
"""

from __future__ import annotations

from ui.fake_engine import FakeEngine as ChatFake
from ui_translate.fake_translation import FakeTranslation

from mlxchat.engine import contract
from mlxchat.engine.engine import Engine
from mlxchat.engine.remote import RemoteEngine
from mlxchat.translate import translation
from mlxchat.translate.live import LiveTranslation
from mlxchat.translate.text_translation import TextTranslation


def local_engine(engine: Engine) -> contract.Engine:
    return engine


def remote_engine(engine: RemoteEngine) -> contract.Engine:
    return engine


def chat_fake(engine: ChatFake) -> contract.ChatEngine:
    return engine


def live_translation(live: LiveTranslation) -> translation.BlockingTranslation:
    return live


def text_translation(text: TextTranslation) -> translation.BlockingTranslation:
    return text


def fake_translation(fake: FakeTranslation) -> translation.Translation:
    return fake

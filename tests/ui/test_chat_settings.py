"""Which sampling settings the chat sends, and what it keeps in config.toml for next time."""

from __future__ import annotations

import tomllib

from mlxchat import locations
from mlxchat.config import Settings, apply_overrides, write_default_config
from mlxchat.ui.screens.help import HelpScreen

from .helpers import SIZE, model_settled, ready, send, until


def sent(engine) -> tuple[float, float]:
    """(temp, top_p) of the newest request."""
    params = engine.requests[-1].params
    return params.temp, params.top_p


async def test_model_defaults_apply_unless_the_user_chose(make_app, engine) -> None:
    engine.sampling_defaults = {"temp": 0.6, "top_p": 0.9}
    chosen = apply_overrides(Settings(model="fake", theme="mlxchat-dark"), {"top_p": 0.5})
    app = make_app(settings=chosen)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "Hello")
        assert sent(engine) == (0.6, 0.5)  # the model's temp; the user's top-p
        await send(pilot, "/temp 0.2")
        engine.sampling_defaults = {"temp": 1.0}
        await send(pilot, "/model other")
        await until(pilot, lambda: model_settled(screen))
        await send(pilot, "Again")
        assert sent(engine) == (0.2, 0.5)  # chosen in this chat: kept on another model
        await send(pilot, "/new")
        await send(pilot, "Fresh")
        assert sent(engine) == (1.0, 0.5)  # a new chat: the new model's default
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.screen.query_one("Markdown").source
        assert "Now: temp 1 · top-p 0.5 · min-p 0 · top-k 0 · repetition-penalty off" in text
        assert "Built-in defaults: greedy (temp 0, top-p 1" in text


async def test_theme_and_model_changes_are_kept_in_the_config_file(make_app) -> None:
    path = write_default_config()
    path.write_text(path.read_text() + "\n# my own note\nmax_tokens = 300  # long enough\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, "/theme nord-frost")
        await send(pilot, "/model other")
        await until(pilot, lambda: model_settled(screen))
        await pilot.pause()
    text = locations.config_file().read_text()
    assert tomllib.loads(text) == {"theme": "nord-frost", "model": "other", "max_tokens": 300}
    assert "# my own note\nmax_tokens = 300  # long enough\n" in text
    assert '# theme = "mlxchat-dark"\ntheme = "nord-frost"\n' in text
    assert text.startswith("# mlxchat settings (TOML).")

"""Settings: defaults, the TOML file, CLI overrides, and one clear line for each mistake."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from mlxchat.config import (
    KEYS,
    ConfigError,
    Settings,
    apply_overrides,
    default_config_text,
    load_settings,
    write_default_config,
)
from mlxchat.engine.types import SamplingParams
from mlxchat.settings import SETTINGS
from mlxchat.ui.themes import builtin_themes_dir, load_themes


@pytest.fixture
def config(tmp_path: Path):
    path = tmp_path / "config.toml"

    def write(text: str) -> Path:
        path.write_text(text, encoding="utf-8")
        return path

    return write


def error_of(path: Path | None, overrides: dict[str, object] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_and_sampling(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "missing.toml")
    assert settings == Settings()
    assert (settings.model, settings.temp, settings.top_p, settings.max_tokens) == (
        "demo",
        0.0,
        1.0,
        1024,
    )
    assert settings.sampling() == SamplingParams(
        temp=0.0, top_p=1.0, min_p=0.0, top_k=0, max_tokens=1024, seed=None
    )
    custom = Settings(temp=0.0, top_k=40, seed=7, repetition_penalty=1.1, max_tokens=64)
    sampling = custom.sampling()
    assert (sampling.temp, sampling.top_k, sampling.seed) == (0.0, 40, 7)
    assert (sampling.repetition_penalty, sampling.max_tokens) == (1.1, 64)


def test_every_setting_has_help() -> None:
    assert all(len(setting.help) > 10 for setting in SETTINGS.values())


def test_default_theme_is_shipped() -> None:
    themes, errors = load_themes(builtin_themes_dir(), None)
    assert errors == []
    assert Settings().theme in {t.name for t in themes}


def test_file_values_then_overrides(config) -> None:
    path = config(
        'model = "mlx-community/Qwen2.5-0.5B-Instruct-4bit"\n'
        "temp = 1\n"  # an integer is fine for a float setting
        "seed = 42\n"
        "fast_cpu = false\n"
        'system_prompt = """\nBe brief.\nUse Markdown."""\n'
    )
    settings = load_settings(path)
    assert settings.model == "mlx-community/Qwen2.5-0.5B-Instruct-4bit"
    assert settings.temp == 1.0 and isinstance(settings.temp, float)
    assert (settings.seed, settings.fast_cpu) == (42, False)
    assert settings.system_prompt == "Be brief.\nUse Markdown."
    assert settings.top_p == 1.0  # untouched keys keep their defaults

    overridden = load_settings(path, {"temp": 0.2, "model": "demo", "seed": None, "top_k": 20})
    assert (overridden.temp, overridden.model, overridden.top_k) == (0.2, "demo", 20)
    assert overridden.seed == 42  # None means "flag not given"


def test_default_location_follows_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLXCHAT_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.toml").write_text("max_tokens = 99\n")
    assert load_settings().max_tokens == 99


def test_invalid_toml_names_the_file_and_line(config) -> None:
    path = config('model = "demo"\ntemp = 0.5\ntheme = nord-frost\n')
    message = error_of(path)
    assert message.startswith(f"{path}: invalid TOML at line 3")
    assert message.endswith("fix line 3")


def test_unterminated_value_at_the_end_names_the_last_line(config) -> None:
    path = config('model = "demo"\ntemp =')
    assert re.match(rf"{re.escape(str(path))}: invalid TOML at line 2\b", error_of(path))


def test_wrong_type_names_key_and_fix(config) -> None:
    path = config('temp = "hot"\n')
    assert error_of(path) == (
        f"{path}: 'temp' must be a number from 0 to 5, got \"hot\" (string); "
        "fix it, or delete the line to use the default (0.0)"
    )
    assert "'fast_cpu' must be true or false, got 1" in error_of(config("fast_cpu = 1\n"))
    assert "'top_k' must be a whole number ≥ 0, got true" in error_of(config("top_k = true\n"))
    message = error_of(config("seed = 1.5\n"))
    assert "'seed' must be a whole number" in message and "leave it unset" in message
    assert "'temp' must be a number" in error_of(config("temp = [1]\n"))


def test_out_of_range_values(config) -> None:
    path = config("top_p = 1.5\n")
    assert error_of(path) == (
        f"{path}: 'top_p' must be a number from 0 to 1, got 1.5; "
        "fix it, or delete the line to use the default (1.0)"
    )
    assert "'temp' must be a number from 0 to 5, got -1" in error_of(config("temp = -1\n"))
    assert "'max_tokens' must be a whole number ≥ 1" in error_of(config("max_tokens = 0\n"))
    assert "'progress_interval'" in error_of(config("progress_interval = 0\n"))
    assert "'theme' must not be empty" in error_of(config('theme = ""\n'))


def test_unknown_key_suggests_the_right_one(config) -> None:
    path = config("tempp = 0.5\n")
    assert error_of(path) == f"{path}: unknown key 'tempp'; did you mean 'temp'?"
    message = error_of(config("[ui]\ncolour = 1\n"))
    assert "unknown key 'ui'; remove it (known: model, translate_model, system_prompt," in message


def test_bad_override_names_the_command_line(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    assert error_of(missing, {"top_p": 3}).startswith("command line: 'top_p' must be")
    assert error_of(missing, {"nope": 1}).startswith("command line: unknown key 'nope'")
    assert apply_overrides(Settings(), {"temp": 0}, "/temp").temp == 0.0
    with pytest.raises(ConfigError, match=r"^/temp: 'temp' must be a number from 0 to 5"):
        apply_overrides(Settings(), {"temp": -0.5}, "/temp")


def test_unreadable_config_path(tmp_path: Path) -> None:
    folder = tmp_path / "config.toml"
    folder.mkdir()
    message = error_of(folder)
    assert message.startswith(f"{folder}: cannot read the config file")


def test_write_default_config(tmp_path: Path) -> None:
    path = write_default_config(tmp_path / "sub" / "config.toml")
    text = path.read_text()
    assert text == default_config_text()
    assert tomllib.loads(text) == {}  # everything is commented out
    assert load_settings(path) == Settings()
    for name in KEYS:
        assert f"# {name} = " in text
    # uncommenting every setting line gives a valid file
    uncommented = re.sub(r"^# (\w+ = )", r"\1", text, flags=re.MULTILINE)
    path.write_text(uncommented)
    settings = load_settings(path)
    assert (settings.seed, settings.repetition_penalty, settings.max_context) == (0, 1.1, 4096)
    assert settings.temp == Settings().temp

    with pytest.raises(ConfigError, match="already there"):
        write_default_config(path)
    assert path.read_text() == uncommented  # not overwritten
    write_default_config(path, overwrite=True)
    assert path.read_text() == text


def test_write_default_config_to_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write the config file"):
        write_default_config(blocker / "config.toml")

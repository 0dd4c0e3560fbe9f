"""One declaration per setting: the same rule everywhere, model defaults, config write-back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mlxchat.config import (
    ConfigError,
    Settings,
    apply_overrides,
    default_config_text,
    load_settings,
    save_setting,
)
from mlxchat.engine.types import SamplingParams
from mlxchat.settings import SETTINGS, SettingError, from_generation_config, validate
from mlxchat.translate.settings import WaitKSettings
from mlxchat.ui.commands import COMMANDS, CommandError

# (setting, slash-command, a value out of range, a value in range)
SHARED = [
    ("temp", "temp", 7.5, 4.0),
    ("top_p", "top-p", 1.5, 0.5),
    ("max_tokens", "max-tokens", 0, 5),
    ("seed", "seed", -1, 3),
    ("wait_k", "translate", 33, 32),
]


@pytest.mark.parametrize(("name", "command", "bad", "good"), SHARED)
def test_config_flags_commands_and_requests_share_one_rule(
    name: str, command: str, bad: float, good: float
) -> None:
    expected = f"must be {SETTINGS[name].expects}, got {bad}"
    with pytest.raises(SettingError, match=f"^'{name}' {expected}$"):
        validate({name: bad})
    with pytest.raises(SettingError, match=f"^--{name.replace('_', '-')} {expected}$"):
        validate({name: bad}, flags=True)
    with pytest.raises(CommandError, match=f"^/{command} {expected} — usage"):
        COMMANDS[command].parse(None, str(bad))  # type: ignore[arg-type]
    assert COMMANDS[command].parse(None, str(good)) == good  # type: ignore[arg-type]
    assert validate({name: good}) == {name: good}
    if name in Settings.__dataclass_fields__:
        with pytest.raises(ConfigError, match=f"^config.toml: '{name}' {expected}; fix it"):
            apply_overrides(Settings(), {name: bad}, "config.toml", in_file=True)


def test_dataclasses_check_their_values_with_the_same_rules() -> None:
    with pytest.raises(
        SettingError, match="'max_new_words' must be a whole number from 1 to 4096, got 0"
    ):
        WaitKSettings(max_new_words=0)
    with pytest.raises(SettingError, match="'wait_k' must be a whole number from 1 to 32"):
        WaitKSettings.from_values({"wait_k": 40})
    with pytest.raises(SettingError, match="'top_p' must be a number from 0 to 1, got 2"):
        SamplingParams(top_p=2).check()
    settings = WaitKSettings.from_values({"wait_k": 2, "temp": 0.5, "target_lang": "German"})
    assert (settings.wait_k, settings.sampling.temp, settings.target_lang) == (2, 0.5, "German")
    with pytest.raises(SettingError, match="unknown key 'wait'; did you mean 'wait_k'?"):
        WaitKSettings.from_values({"wait": 2})


def test_a_dict_of_raw_values_gets_one_clear_error() -> None:
    assert validate({"temp": 1, "seed": None, "theme": "nord-frost"}) == {
        "temp": 1.0,
        "seed": None,
        "theme": "nord-frost",
    }
    with pytest.raises(SettingError, match="^'temp' must be a number from 0 to 5, got \"hot\""):
        validate({"temp": "hot"})
    with pytest.raises(SettingError, match="'top_k' cannot be unset") as caught:
        validate({"top_k": None})
    assert caught.value.name == "top_k"
    with pytest.raises(SettingError, match="'model' must not be empty"):
        validate({"model": "  "})


def test_generation_config_defaults_in_our_names() -> None:
    config = {"temperature": 0.6, "top_p": 0.9, "top_k": 20, "repetition_penalty": 1.05}
    assert from_generation_config(config) == {
        "temp": 0.6,
        "top_p": 0.9,
        "top_k": 20,
        "repetition_penalty": 1.05,
    }
    assert from_generation_config({"temperature": 0.7, "do_sample": False}) == {"temp": 0.0}
    assert from_generation_config({"temperature": -1, "top_p": "x", "eos_token_id": 2}) == {}


def test_precedence_user_then_model_then_built_in(tmp_path: Path) -> None:
    model = {"temp": 0.6, "top_p": 0.9, "repetition_penalty": 1.1}
    assert Settings().sampling(model) == SamplingParams(temp=0.6, top_p=0.9, repetition_penalty=1.1)
    path = tmp_path / "config.toml"
    path.write_text("top_p = 0.8\n")
    settings = load_settings(path, {"temp": 0.1})
    chosen = settings.sampling(model)
    assert (chosen.temp, chosen.top_p, chosen.repetition_penalty) == (0.1, 0.8, 1.1)
    assert Settings().sampling() == SamplingParams(temp=0.0, top_p=1.0, max_tokens=1024)


def test_the_engine_reads_the_model_folders_generation_config(tiny_llama: Path, tmp_path):
    from mlxchat.models.loader import model_defaults

    assert model_defaults(str(tiny_llama), tiny_llama) == {}
    assert model_defaults("demo", tiny_llama) == {"repetition_penalty": 1.1}  # greedy + mild
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "generation_config.json").write_text(json.dumps({"temperature": 0.3, "top_k": 5}))
    assert model_defaults("org/model", folder) == {"temp": 0.3, "top_k": 5}
    (folder / "generation_config.json").write_text("{not json")
    assert model_defaults("org/model", folder) == {}


def test_save_setting_keeps_comments_and_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# mine\nmodel = "demo"  # the small one\ntemp = 0.2\n\n[extra]\ntheme = 1\n')
    save_setting("model", "/models/qwen", path)
    save_setting("theme", "nord-frost", path)
    assert path.read_text() == (
        '# mine\nmodel = "/models/qwen"  # the small one\ntemp = 0.2\n\ntheme = "nord-frost"\n'
        "[extra]\ntheme = 1\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary file left


def test_save_setting_starts_from_the_commented_default(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    save_setting("theme", "solarized-dusk", path)
    text = path.read_text()
    assert tomllib.loads(text) == {"theme": "solarized-dusk"}
    assert text.replace('theme = "solarized-dusk"\n', "") == default_config_text()


def test_save_setting_never_damages_a_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("theme = [broken\n")
    with pytest.raises(ConfigError, match="invalid TOML at line 1"):
        save_setting("theme", "nord-frost", path)
    assert path.read_text() == "theme = [broken\n"
    with pytest.raises(ConfigError, match="'theme' must not be empty"):
        save_setting("theme", "", path)


def test_plain_settings_and_events_import_no_mlx() -> None:
    code = (
        "import sys, mlxchat.settings, mlxchat.config, mlxchat.translate.settings,"
        " mlxchat.translate.events, mlxchat.translate.metrics, mlxchat.ui.translate.screen,"
        " mlxchat.cli.translate; from mlxchat.translate import WaitKSettings, METRICS;"
        " print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'mlx_lm')))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

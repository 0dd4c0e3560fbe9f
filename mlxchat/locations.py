"""Where mlxchat keeps its files (platformdirs), each overridable by an environment variable.

- config: `MLXCHAT_CONFIG_DIR` (config.toml and the user's themes/)
- data:   `MLXCHAT_DATA_DIR`   (history.sqlite3)
- cache:  `MLXCHAT_CACHE_DIR`  (converted GGUF models, the demo model)
- prompts: `MLXCHAT_PROMPTS_DIR` (the prompt cache's disk tier; default: cache/prompts)
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "mlxchat"


def _dir(env: str, default: str) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser() if value else Path(default)


def config_dir() -> Path:
    """The folder holding config.toml and the user's themes/."""
    return _dir("MLXCHAT_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    """The folder holding the history database."""
    return _dir("MLXCHAT_DATA_DIR", platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    """The folder holding converted models (safe to delete: they are rebuilt)."""
    return _dir("MLXCHAT_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME))


def config_file() -> Path:
    """The TOML settings file."""
    return config_dir() / "config.toml"


def themes_dir() -> Path:
    """The folder for the user's own theme files."""
    return config_dir() / "themes"


def models_dir() -> Path:
    """The folder for models converted from GGUF files."""
    return cache_dir() / "models"


def prompts_dir() -> Path:
    """The folder for prompt caches kept across runs (the prompt cache's disk tier)."""
    return _dir("MLXCHAT_PROMPTS_DIR", str(cache_dir() / "prompts"))

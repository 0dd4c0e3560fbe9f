"""Theme files: every shipped theme works in Textual; a bad file is reported once and skipped."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.theme import Theme
from textual.widgets import Static

from mlxchat.ui.themes import builtin_themes_dir, load_themes

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "themes").glob("*.toml"))

GOOD = """
name = "{name}"
primary = "{primary}"
background = "#101010"

[variables]
footer-key-foreground = "{primary}"
"""


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "themes"
    folder.mkdir()
    return folder


def write(folder: Path, filename: str, text: str) -> Path:
    path = folder / filename
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_dir_in_a_checkout_is_the_repo_folder() -> None:
    folder = builtin_themes_dir()
    assert {p.name for p in folder.iterdir() if p.name.endswith(".toml")} == {
        p.name for p in SHIPPED
    }


def test_all_shipped_themes_load() -> None:
    assert len(SHIPPED) >= 4
    themes, errors = load_themes(builtin_themes_dir(), None)
    assert errors == []
    assert [t.name for t in themes] == [p.stem for p in SHIPPED]  # name matches the file
    by_name = {t.name: t for t in themes}
    assert by_name["mlxchat-light"].dark is False
    assert by_name["mlxchat-dark"].dark is True
    for theme in themes:
        assert isinstance(theme, Theme)
        assert theme.background and theme.foreground and theme.surface and theme.panel
        colors = theme.to_color_system().generate()
        assert colors["primary"] and colors["footer-key-foreground"]


class ThemedApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("hello", id="hello")


async def test_shipped_themes_apply_in_a_textual_app() -> None:
    themes, _ = load_themes(builtin_themes_dir(), None)
    app = ThemedApp()
    async with app.run_test() as pilot:
        for theme in themes:
            app.register_theme(theme)
            app.theme = theme.name
            await pilot.pause()
            assert app.current_theme.name == theme.name
            assert app.screen.styles.background.hex.upper() == theme.background.upper()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('name = "x"\nprimary = "#123456\n', "invalid TOML"),
        ('name = "x"\nprimary = "not-a-colour"\n', "'primary' is not a colour"),
        ('name = "x"\nprimary = "#123456"\nshadow = "#000000"\n', "unknown key 'shadow'"),
        ('primary = "#123456"\n', "'name' must be a non-empty string"),
        ('name = "x"\n', "'primary' is required"),
        ('name = "x"\nprimary = "#123456"\ndark = "yes"\n', "'dark' must be true or false"),
        ('name = "x"\nprimary = 123456\n', "'primary' must be a colour string"),
        ('name = "x"\nprimary = "#123456"\n[variables]\na = 1\n', "[variables]"),
        ('name = "x"\nprimary = "#123456"\ntext_alpha = "high"\n', "'text_alpha' must be"),
    ],
)
def test_a_broken_file_is_reported_once_and_skipped(
    user_dir: Path, text: str, problem: str
) -> None:
    write(user_dir, "good.toml", GOOD.format(name="good", primary="#FF8800"))
    broken = write(user_dir, "broken.toml", text)
    themes, errors = load_themes(builtin_themes_dir(), user_dir)
    assert len(errors) == 1
    assert errors[0].startswith(f"theme file {broken}: ")
    assert problem in errors[0] and errors[0].endswith("; skipped")
    names = [t.name for t in themes]
    assert "good" in names and "x" not in names
    assert len(names) == len(SHIPPED) + 1


def test_user_theme_replaces_a_builtin_of_the_same_name(user_dir: Path) -> None:
    write(user_dir, "mine.toml", GOOD.format(name="nord-frost", primary="#FF0000"))
    themes, errors = load_themes(builtin_themes_dir(), user_dir)
    assert errors == []
    matching = [t for t in themes if t.name == "nord-frost"]
    assert len(matching) == 1 and matching[0].primary == "#FF0000"
    assert len(themes) == len(SHIPPED)


def test_duplicate_name_in_one_folder_is_reported(user_dir: Path) -> None:
    write(user_dir, "a.toml", GOOD.format(name="twin", primary="#00FF00"))
    second = write(user_dir, "b.toml", GOOD.format(name="twin", primary="#0000FF"))
    themes, errors = load_themes(None, user_dir)
    assert [t.primary for t in themes] == ["#00FF00"]
    assert errors == [f"theme file {second}: name 'twin' is already used by a.toml; skipped"]


def test_missing_folders_and_other_files_are_ignored(tmp_path: Path, user_dir: Path) -> None:
    write(user_dir, "notes.txt", "not a theme")
    (user_dir / "folder.toml").mkdir()
    assert load_themes(None, user_dir) == ([], [])
    assert load_themes(tmp_path / "nowhere", tmp_path / "nowhere-either") == ([], [])


def test_a_copied_builtin_file_works_as_a_user_theme(user_dir: Path) -> None:
    """The format in themes/README.md is the format of the shipped files."""
    data = tomllib.loads(SHIPPED[0].read_text())
    copy = user_dir / "copy.toml"
    shutil.copy(SHIPPED[0], copy)
    copy.write_text(copy.read_text().replace(f'"{data["name"]}"', '"my-copy"'))
    themes, errors = load_themes(None, user_dir)
    assert errors == [] and [t.name for t in themes] == ["my-copy"]


def test_pyproject_ships_the_themes_folder_as_mlxchat_themes() -> None:
    """When pyproject maps `mlxchat.themes` to themes/, every package must be listed too."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = config.get("tool", {}).get("setuptools", {})
    if setuptools.get("package-dir", {}).get("mlxchat.themes") != "themes":
        pytest.skip("pyproject.toml does not map mlxchat.themes to themes/ yet")
    packages = set(setuptools["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "mlxchat").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert on_disk | {"mlxchat.themes"} == packages
    assert "*.toml" in config["tool"]["setuptools"]["package-data"]["mlxchat.themes"]

"""The key footer in a narrow window: fewer keys, each whole (Textual cut one mid-word)."""

from __future__ import annotations

from pilot_helpers import screen_rows

from .helpers import ready, until

KEYS = ["esc Stop", "f1 Help", "f2 Models", "f3 History", "^n New", "^r Retry"]


def footer_words(app) -> list[str]:
    """The footer row's keys and words before the command palette's."""
    row = screen_rows(app)[-1]
    return row.split("▏")[0].split()


def whole_keys(words: list[str]) -> bool:
    """Whether the words are the footer's first keys in order, each whole."""
    pairs = [" ".join(words[i : i + 2]) for i in range(0, len(words), 2)]
    return len(words) % 2 == 0 and pairs == KEYS[: len(pairs)]


async def test_a_narrow_window_shows_whole_keys_and_a_wider_one_all_of_them(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(60, 24)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: whole_keys(footer_words(app)) and len(footer_words(app)) > 4)
        assert "^p palette" in screen_rows(app)[-1]
        await pilot.resize_terminal(120, 24)
        await until(pilot, lambda: " ".join(footer_words(app)) == " ".join(KEYS))
        await pilot.resize_terminal(45, 24)
        await until(pilot, lambda: whole_keys(footer_words(app)) and len(footer_words(app)) > 2)

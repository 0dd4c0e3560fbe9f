"""Text shown as it was written: model line breaks and unfenced code, user messages as typed,
stored titles escaped in the history list and in exports."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pilot_helpers import screen_rows

from mlxchat.text import sanitize
from mlxchat.ui.markdown_render import parse_markdown
from mlxchat.ui.screens.history import HistoryScreen
from mlxchat.ui.widgets.markdown_body import MarkdownBody
from mlxchat.ui.widgets.message import Message

from .helpers import MARKDOWN_PIECES, SIZE, ready, send, until

DEMO_ANSWER = """\
def reverse_string(input_str):
    return input_str[::-1]

# Example usage:
print(reverse_string("Hello World"))  # Output: "dlroW olleH"

This function uses Python's slicing syntax to create a reversed copy of the input string. \
The `[::-1]` slicing syntax is a Python idiom that reverses a string.
"""
"""The demo model's greedy answer to "Write a Python function that reverses a string",
with its ``` fences taken out."""

JS_ANSWER = """\
Here is the code:

function reverse(s) {
  return s.split('').reverse().join('');
}

console.log(reverse("hi"));

## Explanation

The function splits the string,
reverses the letters
and joins them again.
"""

TITLE = "evil\x1b[2J title\u202eabc"
"""A stored title with a terminal escape and a right-to-left override."""
SHOWN_TITLE = "evil\\x1b[2J title\\u202eabc"


def plain_lines(text: str, width: int = 70) -> list[str]:
    return [line.plain.rstrip() for line in parse_markdown(text).lines(width)]


def test_unfenced_code_keeps_its_lines_indentation_and_comments() -> None:
    lines = plain_lines(DEMO_ANSWER)
    assert lines[:5] == [
        " def reverse_string(input_str):",
        "     return input_str[::-1]",
        "",
        " # Example usage:",  # a comment, not a heading
        ' print(reverse_string("Hello World"))  # Output: "dlroW olleH"',
    ]
    assert lines[6].startswith("This function uses")


def test_a_long_run_of_comments_stays_code() -> None:
    lines = plain_lines("def f(s):\n    return s\n\n" + "# note\n" * 1500 + "print(f(1))\n")
    assert lines[3:5] == [" # note", " # note"] and lines[-1] == " print(f(1))"


def test_single_newlines_are_line_breaks_and_markdown_still_works() -> None:
    lines = plain_lines(JS_ANSWER)
    assert lines[:7] == [
        "Here is the code:",
        "",
        " function reverse(s) {",
        "   return s.split('').reverse().join('');",
        " }",
        "",
        ' console.log(reverse("hi"));',
    ]
    assert lines[8:] == [
        "Explanation",  # a Markdown heading after the code stays a heading
        "",
        "The function splits the string,",
        "reverses the letters",
        "and joins them again.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Steps:\n  1. Open the file\n  2. Read it",
        "Note:\nthis stays prose.",
        "# Title\n\nText after a heading.",
        "A paragraph (with brackets) = fine.\n\nAnother one.",
    ],
)
def test_prose_is_not_taken_for_code(text: str) -> None:
    spans = [span for line in parse_markdown(text).lines(70) for span in line.spans]
    assert "on $boost" not in str(spans)  # no code block style anywhere


@pytest.mark.parametrize("step", [1, 4])
@pytest.mark.parametrize(
    "text",
    [
        DEMO_ANSWER,
        JS_ANSWER,
        "".join(MARKDOWN_PIECES),
        DEMO_ANSWER + "\n" + JS_ANSWER,
        # unsafe characters change the text's length when escaped; only "\\n" ends a line
        "Red \x1b[31mtext\r\n\r\nNext\u2028same line\u2029\n\n```\ncode\x07\n```\n\nEnd \x9b.",
    ],
)
async def test_a_streamed_text_always_looks_like_the_same_text_rendered_whole(
    text: str, step: int
) -> None:
    streamed = MarkdownBody("")
    for end in range(step, len(text) + step, step):
        streamed.append(text[end - step : end])
        whole = MarkdownBody(text[:end])
        assert [line.plain for line in streamed.lines(60)] == [
            line.plain for line in whole.lines(60)
        ], repr(text[:end])
    assert streamed.text == text
    assert streamed.source == sanitize(text)


def test_a_user_message_is_shown_as_typed() -> None:
    typed = "**not bold**\n    indented\tcode\n# not a heading\n\n- not a list"
    view = Message("user", typed)
    assert view.rendered_text(60).split("\n")[1:] == [
        "**not bold**",
        "    indented    code",
        "# not a heading",
        "",
        "- not a list",
    ]


async def test_a_three_line_message_and_an_unfenced_answer_on_screen(make_app, engine) -> None:
    engine.answers = [[DEMO_ANSWER[i : i + 5] for i in range(0, len(DEMO_ANSWER), 5)]]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "first line\nsecond line\nthird line")
        shown = screen_rows(app)
        first = next(i for i, line in enumerate(shown) if "first line" in line)
        assert "second line" in shown[first + 1] and "third line" in shown[first + 2]
        text = "\n".join(shown)
        assert "     return input_str[::-1]" in text
        assert "# Example usage:" in text


async def test_titles_are_escaped_in_the_history_list(make_app, history) -> None:
    chat = history.new_conversation(title=TITLE, model="m\u202eodel")
    history.add_message(chat, "user", "hello")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "/history")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.pause()
        text = "\n".join(screen_rows(app))
        assert SHOWN_TITLE in text and "m\\u202eodel" in text
        assert "\x1b" not in text and "\u202e" not in text


async def test_an_export_escapes_the_title_and_the_text(
    make_app, engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine.answers = [["red \x1b[31m", "text\u202e"]]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await send(pilot, TITLE)
        assert await screen.submit("/export chat.md")
        exported = (tmp_path / "chat.md").read_text()
        assert exported.startswith(f"# {SHOWN_TITLE}\n")
        assert "red \\x1b[31mtext\\u202e" in exported
        assert "\x1b" not in exported and "\u202e" not in exported


# fmt: off
TRICKY_PIECES = (
    " the", " word", "s", " 42", ",", ".", "!", "?", "'", '"', "-", " ", "  ", "\n", "\n\n",
    "*", "**", "_", "__", "`", "~~", "[", "](", ")", "(", "<b>", "</b>", "&", "amp", ";", "#",
    "# ", "- ", "1", ". ", "> ", "|", "---", "===", "```", "http", "://", "example", "com",
    "www", "@", "/", "foo_bar", "\\", "    ", "def f(x):", "\n    return x", "é", "中文",
)
# fmt: on


@pytest.mark.parametrize("seed", range(12))
def test_a_streamed_text_keeps_the_styles_of_the_whole_text(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [rng.choice(TRICKY_PIECES) if rng.random() < 0.3 else " word" for _ in range(150)]
    streamed = MarkdownBody("")
    text = ""
    for number, piece in enumerate(pieces):
        text += piece
        streamed.append(piece)
        width = 50 if number % 20 else 37  # now and then the terminal is resized
        whole = MarkdownBody(text)
        assert styled_lines(streamed, width) == styled_lines(whole, width), repr(text)


def styled_lines(
    view: MarkdownBody, width: int = 50
) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """Each line's text and styled spans, as drawn at `width`."""
    return [
        (line.plain, [(span.start, span.end, str(span.style)) for span in line.spans])
        for line in view.lines(width)
    ]


@pytest.mark.parametrize(
    "pieces",
    [
        ["Visit", " example", ".", "com", " today"],  # the word becomes a link
        ["Write", " to", " me", "@", "example", ".", "org"],  # an e-mail address
        ["Say", " it", " _loud_", "ly", " now"],  # the closing _ is no longer one
        ["Some", " text", "\n", "1", ".", " item"],  # the line becomes a list item
        ["Title", " here", "\n", "=", "==", "\n\nAfter"],  # a setext heading underline
        ["<div>", "\n", "Hello", " there", "   you"],  # an HTML block keeps its spaces
    ],
)
def test_a_piece_that_changes_earlier_text_is_parsed_again(pieces: list[str]) -> None:
    streamed = MarkdownBody("")
    for end, piece in enumerate(pieces, 1):
        streamed.append(piece)
        assert styled_lines(streamed) == styled_lines(MarkdownBody("".join(pieces[:end])))

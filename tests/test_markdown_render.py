"""Markdown drawn as lines, and a streamed answer split into finished and growing blocks."""

from __future__ import annotations

from mlxchat.ui.markdown_render import (
    layout_blocks,
    open_fence,
    parse_markdown,
    plain_document,
    split_complete,
)


def lines(source: str, width: int = 40) -> list[str]:
    return [line.plain for line in parse_markdown(source).lines(width)]


def test_inline_markup_is_styled_not_shown() -> None:
    [content] = parse_markdown("some **bold** and `code`").lines(40)
    assert content.plain == "some bold and code"
    assert any("bold" in str(span.style) for span in content.spans)


def test_a_paragraph_wraps_at_the_width() -> None:
    assert lines("one two three four five six", width=10) == ["one two", "three four", "five six"]


def test_list_items_get_bullets_and_numbers() -> None:
    bullets = lines("- apple\n- pear")
    numbers = lines("1. first\n2. second")
    assert [line.split()[-1] for line in bullets] == ["apple", "pear"]
    assert bullets[0].split()[0] != "apple"
    assert [line.split()[0] for line in numbers] == ["1.", "2."]


def test_a_table_keeps_its_cells() -> None:
    text = "\n".join(lines("| a | b |\n|---|---|\n| 1 | 22 |"))
    for cell in ("a", "b", "1", "22"):
        assert cell in text


def test_code_keeps_its_spaces() -> None:
    assert "    indented()" in "\n".join(lines("```python\ndef f():\n    indented()\n```"))


def test_plain_text_is_shown_as_typed() -> None:
    shown = [line.plain for line in layout_blocks(plain_document("# not a heading").blocks, 40)]
    assert shown == ["# not a heading"]


def test_only_blocks_followed_by_a_blank_line_are_complete() -> None:
    split = split_complete("First paragraph.\n\nSecond, still gr")
    assert [b for b in split.complete] and split.consumed == len("First paragraph.\n\n")
    assert [line.plain for line in layout_blocks(split.tail, 40)] == ["Second, still gr"]
    assert split_complete("One paragraph, growing").complete == []


def test_open_fence_reports_an_unclosed_code_block() -> None:
    assert open_fence("```py\na\nb\n") == ("```py\n", 2)
    assert open_fence("```py\na\n```\n") is None
    assert open_fence("text\n```") is None

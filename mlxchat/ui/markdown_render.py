"""Markdown rendered to one `Content` (a single widget), in the look of Textual's Markdown.

Textual's `Markdown` widget mounts a widget per block (a list item alone takes four), and
Textual lays out every mounted widget whenever anything grows, so a long chat streamed at
thousands of tokens a second would drown in widgets. This module parses with the same
parser (markdown-it "gfm-like") and lays the document out as lines of `Content` for one
widget (`widgets.transcript.Transcript`, through `widgets.markdown_body`): headings,
paragraphs with inline styles, nested lists, block quotes, tables, rules and fenced code
highlighted with Textual's own highlighter, all in theme colours.

Text is shown as chat models write it: a single newline is a line break (as chat front ends
show it), and code written without fences is shown as code (`unfenced_code`).

    document = parse_markdown(text)          # once (width independent)
    lines = document.lines(width)            # per width
    split = split_complete(tail)             # streaming: what later text cannot change
    plain_document(text)                     # text shown as typed (no Markdown)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from textual.content import Content, Span
from textual.highlight import HighlightTheme, highlight
from textual.style import Style

from mlxchat.ui.unfenced_code import TOKEN as UNFENCED_CODE
from mlxchat.ui.unfenced_code import add_unfenced_code

BULLETS = ("• ", "▪ ", "‣ ", "⭑ ", "◦ ")
"""Bullets by list depth (as Textual's Markdown)."""

HEADING_STYLES = {
    1: "bold $markdown-h1-color",
    2: "underline $markdown-h2-color",
    3: "bold $markdown-h3-color",
    4: "bold $markdown-h4-color",
    5: "$markdown-h5-color",
    6: "underline $markdown-h6-color",
}
CODE_LINE_STYLE = "on $boost"
CODE_INLINE_STYLE = "$text-warning on $warning 10%"
QUOTE_BAR = ("▌ ", "$primary 50%")
RULE_STYLE = "$secondary"
BULLET_STYLE = "$text-primary"
TABLE_RULE_STYLE = "$text-muted"


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return add_unfenced_code(MarkdownIt("gfm-like"))


# ----- the width-independent document -------------------------------------------------------


@dataclass
class Block:
    """One block of a parsed document.

    Attributes:
        kind: text, heading, code, rule, list, quote, table.
        content: The inline text (text, heading).
        level: Heading level, or list depth.
        code: Highlighted code (code).
        items: List items: (bullet, blocks) (list).
        tight: Whether list items are tight (no blank lines between them).
        children: Nested blocks (quote).
        rows: Table rows of cells; the first is the header (table).
    """

    kind: str
    content: Content = field(default_factory=Content)
    level: int = 0
    code: Content = field(default_factory=Content)
    items: list[tuple[str, list[Block]]] = field(default_factory=list)
    tight: bool = True
    children: list[Block] = field(default_factory=list)
    rows: list[list[Content]] = field(default_factory=list)


@dataclass
class Document:
    """A parsed Markdown document; `lines(width)` lays it out."""

    blocks: list[Block]

    def lines(self, width: int) -> list[Content]:
        """The document as lines no wider than `width` cells."""
        return _layout_blocks(self.blocks, max(width, 8), separated=True)


def parse_markdown(source: str) -> Document:
    """Parse `source` (already safe to display) into a Document."""
    tokens = _parser().parse(source)
    blocks, _ = _parse_blocks(tokens, 0, len(tokens), depth=0)
    return Document(blocks)


def plain_document(text: str) -> Document:
    """`text` (already safe to display) as typed: no Markdown, line breaks and spaces kept."""
    return Document([Block("text", Content(text.expandtabs(4)))] if text else [])


def _close_index(tokens: list[Token], start: int) -> int:
    """The index of the token closing the one opened at `start`."""
    depth = 0
    for index in range(start, len(tokens)):
        depth += tokens[index].nesting
        if depth == 0:
            return index
    return len(tokens) - 1


def _parse_blocks(
    tokens: list[Token], start: int, end: int, depth: int, *, streaming: bool = False
) -> tuple[list[Block], bool]:
    """Blocks from tokens[start:end]; also whether any paragraph was hidden (tight list).

    `streaming`: the blocks end a text still being written (see `_highlight`).
    """
    blocks: list[Block] = []
    tight = False
    index = start
    while index < end:
        token = tokens[index]
        kind = token.type
        if kind in ("paragraph_open", "heading_open"):
            close = _close_index(tokens, index)
            inline = tokens[index + 1] if index + 1 < close else None
            content = _inline(inline) if inline is not None else Content()
            if kind == "heading_open":
                level = int(token.tag[1:]) if token.tag[1:].isdigit() else 1
                blocks.append(Block("heading", content.stylize(HEADING_STYLES[level]), level))
            else:
                tight = tight or token.hidden
                blocks.append(Block("text", content))
            index = close + 1
        elif kind in ("bullet_list_open", "ordered_list_open"):
            close = _close_index(tokens, index)
            blocks.append(_parse_list(tokens, index, close, depth, streaming))
            index = close + 1
        elif kind == "blockquote_open":
            close = _close_index(tokens, index)
            children, _ = _parse_blocks(tokens, index + 1, close, depth, streaming=streaming)
            blocks.append(Block("quote", children=children))
            index = close + 1
        elif kind == "table_open":
            close = _close_index(tokens, index)
            blocks.append(_parse_table(tokens, index, close))
            index = close + 1
        elif kind in ("fence", "code_block", UNFENCED_CODE):
            code = _highlight(token.content, token.info, streaming=streaming)
            blocks.append(Block("code", code=code))
            index += 1
        elif kind == "hr":
            blocks.append(Block("rule"))
            index += 1
        elif kind == "html_block":
            blocks.append(Block("text", Content(token.content.rstrip("\n"))))
            index += 1
        elif token.nesting == 1:  # anything else that opens: skip it whole
            index = _close_index(tokens, index) + 1
        else:
            index += 1
    return blocks, tight


def _parse_list(
    tokens: list[Token], start: int, end: int, depth: int, streaming: bool = False
) -> Block:
    ordered = tokens[start].type == "ordered_list_open"
    items: list[tuple[str, list[Block]]] = []
    tight = True
    number = int(tokens[start].attrs.get("start", 1) or 1) if ordered else 0
    index = start + 1
    while index < end:
        token = tokens[index]
        if token.type == "list_item_open":
            close = _close_index(tokens, index)
            children, hidden = _parse_blocks(
                tokens, index + 1, close, depth + 1, streaming=streaming
            )
            tight = tight and (hidden or not any(b.kind == "text" for b in children))
            bullet = f"{number}. " if ordered else BULLETS[depth % len(BULLETS)]
            number += 1
            items.append((bullet, children))
            index = close + 1
        else:
            index += 1
    if ordered and items:
        size = max(len(b) for b, _ in items)
        items = [(b.rjust(size), blocks) for b, blocks in items]
    return Block("list", level=depth, items=items, tight=tight)


def _parse_table(tokens: list[Token], start: int, end: int) -> Block:
    rows: list[list[Content]] = []
    row: list[Content] | None = None
    for index in range(start, end):
        token = tokens[index]
        if token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            rows.append(row)
            row = None
        elif token.type == "inline" and row is not None:
            row.append(_inline(token))
    return Block("table", rows=rows)


def _highlight(code: str, language: str, *, streaming: bool = False) -> Content:
    """`code` highlighted as `language` (plain when there is none or it is unknown).

    `streaming`: the code is still being written, a token at a time. Its complete lines are
    highlighted together (once per line: the result is cached) and the last line alone,
    so a token costs one line's highlighting, not the whole block's. Inside a construct
    spanning lines (a docstring) the unfinished line may show code colours until it ends;
    the finished answer is highlighted whole.
    """
    code = code.rstrip("\n")
    language = (language or "").strip().split(" ")[0]
    if not language:
        return Content(code)
    head, newline, last = code.rpartition("\n") if streaming else ("", "", code)
    if not newline:
        return _highlight_whole(code, language)
    return _highlight_whole(head, language) + Content("\n") + _highlight_whole(last, language)


@lru_cache(maxsize=16)
def _highlight_whole(code: str, language: str) -> Content:
    try:
        return highlight(code, language=language, theme=HighlightTheme)
    except Exception:  # an unknown lexer or a Pygments problem: plain code
        return Content(code)


def _inline(token: Token) -> Content:
    """Inline children as Content with styles (as Textual's MarkdownBlock does)."""
    if not token.children:
        return Content(token.content)
    text: list[str] = []
    spans: list[Span] = []
    stack: list[tuple[Style | str, int]] = []
    position = 0

    def add(piece: str) -> None:
        nonlocal position
        text.append(piece)
        position += len(piece)

    def close() -> None:
        if stack:
            style, begin = stack.pop()
            spans.append(Span(begin, position, style))

    for child in token.children:
        kind = child.type
        if kind == "text":
            add(re.sub(r"[ \t]+", " ", child.content))
        elif kind in ("hardbreak", "softbreak"):
            add("\n")
        elif kind == "code_inline":
            stack.append((CODE_INLINE_STYLE, position))
            add(child.content)
            close()
        elif kind == "em_open":
            stack.append(("italic", position))
        elif kind == "strong_open":
            stack.append(("bold", position))
        elif kind == "s_open":
            stack.append(("strike", position))
        elif kind == "link_open":
            href = str(child.attrs.get("href", ""))
            stack.append((Style(underline=True, link=href or None), position))
        elif kind == "image":
            alt = child.content or str(child.attrs.get("alt", ""))
            add(f"🖼  {alt}" if alt else "🖼 ")
        elif kind == "html_inline":
            add(child.content)
        elif kind.endswith("_close"):
            close()
    while stack:
        close()
    return Content("".join(text), spans=spans)


# ----- layout ---------------------------------------------------------------------------------


def _layout_blocks(blocks: list[Block], width: int, *, separated: bool) -> list[Content]:
    lines: list[Content] = []
    for index, block in enumerate(blocks):
        if index and separated:
            lines.append(Content(""))
        lines.extend(_layout_block(block, width))
    return lines


def _wrap(content: Content, width: int) -> list[Content]:
    if not content.plain:
        return [Content("")]
    result: list[Content] = []
    for line in content.split("\n", allow_blank=True):
        result.extend(line.wrap(width) if line.cell_length > width else [line])
    return result


def _layout_block(block: Block, width: int) -> list[Content]:
    kind = block.kind
    if kind in ("text", "heading"):
        return _wrap(block.content, width)
    if kind == "code":
        return _layout_code(block.code, width)
    if kind == "rule":
        return [Content.styled("─" * width, RULE_STYLE)]
    if kind == "list":
        return _layout_list(block, width)
    if kind == "quote":
        bar, style = QUOTE_BAR
        inner = _layout_blocks(block.children, max(width - len(bar), 4), separated=True)
        return [Content.assemble((bar, style), line) for line in inner]
    if kind == "table":
        return _layout_table(block.rows, width)
    return []


def _layout_code(code: Content, width: int) -> list[Content]:
    lines: list[Content] = []
    for line in code.split("\n", allow_blank=True):
        lines.extend(_layout_code_line(line.plain, tuple(line.spans), width))
    return lines


@lru_cache(maxsize=4096)
def _layout_code_line(text: str, spans: tuple[Span, ...], width: int) -> tuple[Content, ...]:
    """One line of code, folded and padded to `width` (cached: a streamed code block is laid
    out again on every append, but only its last line changes)."""
    line = Content(text, list(spans)).expand_tabs(4)
    inner = max(width - 2, 4)
    pieces = line.fold(inner) if line.cell_length > inner else [line]
    return tuple(
        (Content(" ") + piece + Content(" " * max(0, inner - piece.cell_length))).stylize_before(
            CODE_LINE_STYLE
        )
        for piece in pieces
    )


def _layout_list(block: Block, width: int) -> list[Content]:
    lines: list[Content] = []
    for index, (bullet, children) in enumerate(block.items):
        if index and not block.tight:
            lines.append(Content(""))
        indent = len(bullet)
        inner = _layout_blocks(children, max(width - indent, 4), separated=not block.tight)
        if not inner:
            inner = [Content("")]
        for number, line in enumerate(inner):
            prefix = Content.styled(bullet, BULLET_STYLE) if number == 0 else Content(" " * indent)
            lines.append(prefix + line)
    return lines


def _layout_table(rows: list[list[Content]], width: int) -> list[Content]:
    if not rows:
        return []
    columns = max(len(row) for row in rows)
    rows = [row + [Content("")] * (columns - len(row)) for row in rows]
    widths = [max(row[c].cell_length for row in rows) for c in range(columns)]
    available = width - 3 * (columns - 1)
    while sum(widths) > available and max(widths) > 4:  # shrink the widest column
        widest = widths.index(max(widths))
        widths[widest] -= 1
    separator = Content.styled(" │ ", TABLE_RULE_STYLE)
    lines: list[Content] = []
    for number, row in enumerate(rows):
        cells = [
            (cell.truncate(widths[c], ellipsis=True) if cell.cell_length > widths[c] else cell)
            for c, cell in enumerate(row)
        ]
        cells = [cell.pad_right(widths[c] - cell.cell_length) for c, cell in enumerate(cells)]
        line = separator.join(cells)
        lines.append(line.stylize_before("bold") if number == 0 else line)
        if number == 0:
            rule = "─┼─".join("─" * w for w in widths)
            lines.append(Content.styled(rule, TABLE_RULE_STYLE))
    return lines


def layout_blocks(blocks: list[Block], width: int) -> list[Content]:
    """Lines for `blocks` at `width` (blocks separated by a blank line)."""
    return _layout_blocks(blocks, max(width, 8), separated=True)


@dataclass
class Split:
    """The result of `split_complete`.

    Attributes:
        complete: Blocks that later text cannot change any more.
        consumed: How many characters of the source they came from.
        tail: The blocks after them (the last one may still grow).
    """

    complete: list[Block]
    consumed: int
    tail: list[Block]


LONG_FENCE = 120
"""An open code block longer than this many lines is split (its head is complete)."""


def split_complete(source: str) -> Split:
    """Parse `source` (the not yet complete end of a streamed answer) and split it.

    Every top-level block before the last one is complete when a blank line separates it
    from the last one — except code written without fences, which stays in the tail while
    only one block follows it (what comes next may still make that block part of the code).
    An open fenced code block longer than `LONG_FENCE` lines is cut: its first lines become
    a complete code block (the caller re-opens the fence for the rest).
    """
    tokens = _parser().parse(source)
    top = [i for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0 and t.map]
    if not top:
        return Split([], 0, [])
    cut = len(top) - 1
    while cut > 0 and tokens[top[cut - 1]].type == UNFENCED_CODE:
        cut -= 1
    tail_start = tokens[top[cut]].map[0]  # type: ignore[index]
    if cut > 0:
        previous = tokens[top[cut - 1]]
        if previous.map and previous.map[1] < tail_start or previous.type in ("fence", "hr"):
            complete, _ = _parse_blocks(tokens, 0, top[cut], depth=0)
            tail, _ = _parse_blocks(tokens, top[cut], len(tokens), depth=0, streaming=True)
            return Split(complete, line_end(source, tail_start), tail)
    blocks, _ = _parse_blocks(tokens, 0, len(tokens), depth=0, streaming=True)
    return Split([], 0, blocks)


_INERT = frozenset(" ,.?!'\"-")
"""Characters besides letters and digits that mean nothing inline (typographer off)."""

_LINK_HINTS = tuple(".:@/")
"""Characters a link found in plain text needs (linkify: "example.com", "a@b", "http://")."""

_SETTLED_LINE = re.compile(r"\s*[^\W\d_]+ ")
"""A line whose first word is letters and ended: no block marker can start it any more."""


def extend_paragraph(block: Block, before: str, piece: str) -> Block | None:
    """`block`, a paragraph parsed from `before`, with `piece` appended, or None.

    Streaming appends a token at a time, and most tokens add a word to the paragraph being
    written; this skips parsing it again when `piece` cannot change how anything before it
    parses: `piece` holds only letters, digits, spaces and ``,.?!'"-`` (no newline); `before`
    ends in one of those (so no delimiter run changes flanking); the last line's first word
    is ended letters (so it cannot become a list item, heading, quote, fence, table row or
    setext underline); and the word the piece ends up in holds none of ``.:@/`` (so no link
    appears). Otherwise (None) the caller parses the text again.
    """
    if block.kind != "text" or not before or not piece or before.lstrip()[:1] == "<":
        return None  # "<": an HTML block, kept as written
    last = before[-1]
    if not (last.isalnum() or last in _INERT):
        return None
    if not all(char.isalnum() or char in _INERT for char in piece):
        return None
    if not _SETTLED_LINE.match(before, before.rfind("\n") + 1):
        return None
    touched = piece if piece[0] == " " else before.rsplit(" ", 1)[-1] + piece
    if any(hint in touched for hint in _LINK_HINTS):
        return None
    spaces = len(before) - len(before.rstrip(" "))  # the parser dropped them at the end
    added = re.sub(" {2,}", " ", " " * spaces + piece).rstrip(" ")
    return Block("text", block.content + Content(added)) if added else block


def rewrap_grown(
    lines: list[Content], former: int, content: Content, width: int
) -> list[Content] | None:
    """`lines`, a paragraph's lines at `width` when its content was `former` characters long,
    for the paragraph grown to `content` by `extend_paragraph`; None when they do not fit.

    Wrapping is greedy, so text added at the end changes only the last line and what
    follows: only the last line is wrapped again.
    """
    last = lines[-1]
    start = former - len(last.plain)
    if start < 0 or content.plain[start:former] != last.plain:
        return None
    return [*lines[:-1], *_wrap(content[start:], width)]


def line_end(text: str, lines: int) -> int:
    """Where the first `lines` lines of `text` end (only "\\n" ends a line, as for the parser)."""
    end = 0
    for _ in range(lines):
        found = text.find("\n", end)
        if found < 0:
            return len(text)
        end = found + 1
    return end


def _lines(text: str) -> list[str]:
    """`text` as lines, each with its "\\n" (only "\\n" ends a line, as for the parser)."""
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def open_fence(source: str) -> tuple[str, int] | None:
    """When `source` is one open fenced code block: its opening line and body line count."""
    stripped = source.lstrip(" ")
    if not stripped.startswith(("```", "~~~")):
        return None
    lines = _lines(source)
    marker = stripped[:3]
    closed = any(
        line.strip().startswith(marker) and line.strip() == line.strip()[0] * len(line.strip())
        for line in lines[1:]
    )
    if closed:
        return None
    return lines[0], len(lines) - 1

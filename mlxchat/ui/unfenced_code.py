"""Code a model wrote without ``` fences, found so that it is shown as code.

Small chat models often write a function as plain lines. As Markdown, its indentation is
lost and a `# comment` becomes a heading. This markdown-it block rule turns such lines into
one `unfenced_code` token (shown like a code block without a language). The rule is
deliberately simple, and only applies at the top level of the text (not in lists or quotes):

- **Start**: a line that opens a block — it ends with `:` or `{` — directly followed by a
  line indented deeper than it that is not a list item (`def f(s):` then `    return s`).
  It is not a list item, quote, heading or table row itself, and it may interrupt a
  paragraph.
- **Continue** over lines indented deeper than the start, and over lines at its depth or
  less that look like code: another block opener (as above), a statement (`name(…`,
  `name = …`, `name[…] = …`, `const x`, `return …`, `import …`, `from x import …`), a closing
  bracket (`}`), a `//` comment, or `# comment` lines directly followed by such a line.
  Blank lines are kept when code-looking lines follow them.
- **End** before the first line that does not look like code (and any blank lines before it).

Whether a line continues the code depends only on it and the lines right after it, so the
code block of a streamed answer only grows at its end (see `markdown_render.split_complete`).
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock

TOKEN = "unfenced_code"
"""The token type of a code block written without fences."""

_LIST_MARKER = r"([-*+]|\d{1,9}[.)])(\s|$)"
_LIST_ITEM = re.compile(_LIST_MARKER)
_NOT_AN_OPENER = re.compile(f"{_LIST_MARKER}|[>#|]")
_STATEMENT = re.compile(
    r"[A-Za-z_][\w.]*(\[[^\]]*\])?(\(|\s*[-+*/%&|^]?=(?!=))"
    r"|(const|let|var) \w|(return|raise|yield|await)\b|pass$|break$|continue$"
    r"|import \w|from [\w.]+ import\b"
    r"|[}\])]"
    r"|//"
)
_COMMENT = re.compile(r"#(\s|$)")


def _text(state: StateBlock, line: int) -> str:
    """The line without its indentation or trailing spaces."""
    return state.src[state.bMarks[line] + state.tShift[line] : state.eMarks[line]].rstrip()


def _opens_block(state: StateBlock, line: int, end: int) -> bool:
    """`line` ends with `:` or `{` and the next line is indented deeper (not a list item)."""
    text = _text(state, line)
    if not text.endswith((":", "{")) or _NOT_AN_OPENER.match(text):
        return False
    after = line + 1
    return (
        after < end
        and not state.isEmpty(after)
        and state.sCount[after] > state.sCount[line]
        and not _LIST_ITEM.match(_text(state, after))
    )


def _looks_like_code(state: StateBlock, line: int, end: int, depth: int) -> bool:
    """Whether `line` continues code that started at indentation `depth`."""
    while line < end and not state.isEmpty(line):
        if state.sCount[line] > depth:
            return True
        text = _text(state, line)
        if not _COMMENT.match(text):
            return bool(_STATEMENT.match(text)) or _opens_block(state, line, end)
        line += 1  # a comment counts when the code it comments follows
    return False


def unfenced_code(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """The markdown-it block rule (see the module docstring)."""
    if state.level or state.is_code_block(start) or not _opens_block(state, start, end):
        return False
    if silent:
        return True
    depth = state.sCount[start]
    last = line = start + 1
    while line < end:
        if state.isEmpty(line):
            line += 1
        elif _looks_like_code(state, line, end, depth):
            line += 1
            last = line
        else:
            break
    token = state.push(TOKEN, "code", 0)
    token.content = state.getLines(start, last, state.sCount[start], False)
    token.map = [start, last]
    state.line = last
    return True


def add_unfenced_code(parser: MarkdownIt) -> MarkdownIt:
    """Add the rule to `parser` (before its other block rules; it may end a paragraph)."""
    first = parser.block.ruler.get_all_rules()[0]
    parser.block.ruler.before(first, TOKEN, unfenced_code, {"alt": ["paragraph"]})
    return parser

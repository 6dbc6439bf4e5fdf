"""Text that wraps between terms, never inside a formula, and views without trailing spaces.

Rich wraps at any space, so `f'(z) = f(z) * (1 - f(z))` could end a line at `(1 -`. Wrapped ranks every space:
prose (0), before `=`, an arrow or an opening bracket (1), before `+`, `-`, a comparison, `if` or `else` (2), before `*`, `/` or `^` (3),
inside brackets (8), after an operator or `sum_i` (9). Each line ends at the furthest space of the lowest rank that
fits; a line broken inside a formula continues indented. So a formula stays whole when it fits on a line, and
otherwise breaks between its terms, its brackets balanced on every line.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text

BREAK_BEFORE = {"=": 1, "<-": 1, "->": 1, "+": 2, "-": 2, ">": 2, "<": 2, ">=": 2, "<=": 2, "if": 2, "else": 2,
                "*": 3, "/": 3, "^": 3}
INSIDE, AFTER_OPERATOR = 8, 9
INDENT = 4  # a line that continues a formula


def _gaps(s: str) -> list[tuple[int, int, int]]:
    """(start, end, rank) of every run of spaces in s."""
    out = []
    depth = 0
    i, n = 0, len(s)
    word_start = 0
    prev = ""
    while i < n:
        c = s[i]
        if c == " ":
            j = i
            while j < n and s[j] == " ":
                j += 1
            nxt_end = s.find(" ", j)
            nxt = s[j:nxt_end if nxt_end >= 0 else n]
            prev = s[word_start:i]
            if depth > 0:
                rank = INSIDE
            elif prev in BREAK_BEFORE or prev == "sum" or prev.startswith("sum_"):
                rank = AFTER_OPERATOR
            elif nxt.startswith("("):  # a remark in brackets stays beside what it is about when it can
                rank = 1
            else:
                rank = BREAK_BEFORE.get(nxt, 0)
            if j < n:
                out.append((i, j, rank))
            i = word_start = j
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(depth - 1, 0)
        i += 1
    return out


def break_lines(s: str, width: int) -> list[tuple[int, int, int]]:
    """(start, end, indent) of each line of s (one paragraph) wrapped to `width` columns."""
    width = max(width, 1)
    gaps = _gaps(s)
    lines: list[tuple[int, int, int]] = []
    start, indent = 0, 0
    g = 0  # first gap after `start`
    while True:
        room = width - indent
        if len(s) - start <= room:
            lines.append((start, len(s), indent))
            return lines
        while g < len(gaps) and gaps[g][0] <= start:
            g += 1
        cut = None
        for rank in (0, 1, 2, 3, INSIDE, AFTER_OPERATOR):
            best = None
            for k in range(g, len(gaps)):
                a, b, r = gaps[k]
                if a - start > room:
                    break
                if r <= rank:
                    best = k
            if best is not None:
                cut = best
                break
        if cut is None:  # one word longer than the line: fold it
            lines.append((start, start + room, indent))
            start += room
            continue
        a, b, r = gaps[cut]
        lines.append((start, a, indent))
        start, indent = b, (INDENT if r > 0 else 0)


def wrap_text(text: Text, width: int) -> list[Text]:
    """The lines of `text` (styles kept) wrapped between terms to `width` columns."""
    out: list[Text] = []
    for para in text.split("\n", allow_blank=True):
        plain = para.plain
        for a, b, indent in break_lines(plain, width):
            line = para[a:b]
            line.rstrip()
            out.append(Text(" " * indent) + line if indent else line)
    return out


class Wrapped:
    """A Text wrapped between terms (see the module docstring) to whatever width it is given."""

    def __init__(self, text: Text | str, style: str = ""):
        self.text = text if isinstance(text, Text) else Text(text, style=style)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = wrap_text(self.text, options.max_width)
        joined = Text("\n").join(lines)
        joined.no_wrap = True
        joined.overflow = "ignore"
        joined.end = ""
        yield joined
        yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        plain = self.text.plain
        longest = max((len(p) for p in plain.split("\n")), default=0)
        # the narrowest it can go without breaking inside brackets or after an operator
        pieces = []
        for para in plain.split("\n"):
            start = 0
            for a, b, r in _gaps(para):
                if r <= 3:
                    pieces.append(a - start + (INDENT if start else 0))
                    start = b
            pieces.append(len(para) - start + (INDENT if start else 0))
        return Measurement(min(max(pieces, default=0), longest), longest)


class NoTrailingSpaces:
    """Renders `inner` line by line with the spaces at the end of each line removed (table and grid padding)."""

    def __init__(self, inner):
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in console.render_lines(self.inner, options, pad=False, new_lines=False):
            while line and not line[-1].control and not line[-1].text.strip():
                line.pop()
            if line and not line[-1].control:
                last = line[-1]
                line[-1] = Segment(last.text.rstrip(" "), last.style, last.control)
            yield from line
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.inner)

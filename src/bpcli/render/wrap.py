"""Prose: a Rich renderable that wraps text to the width it is given between terms, never inside a formula;
Breakable: a value (a path, a name) wrapped at spaces, and after a '/' or '_' in a long word, never inside a word."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

from bpcli.prose import OPERATORS, line_spans, word_pieces


class Prose:
    """`text` (str or styled Text; \\n starts a new line) wrapped as bpcli.prose wraps it, indented by `indent`."""

    def __init__(self, text: str | Text, indent: int = 0, style: str = "", hang: int = 0):
        self.text = text if isinstance(text, Text) else Text(text, style=style)
        self.indent = indent
        self.hang = hang  # more indent for a line that goes on with a formula (it starts with = + - * ...)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width - self.indent, 10)
        for para in self.text.split("\n", allow_blank=True):
            for n, (a, b) in enumerate(line_spans(para.plain, max(width - self.hang, 10), width)):
                more = self.hang if n and para.plain[a:b].split(" ", 1)[0] in OPERATORS else 0
                line = Text(" " * (self.indent + more), end="\n")
                line.append_text(para[a:b])
                yield line

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest = max((len(line) for line in self.text.plain.split("\n")), default=0)
        return Measurement(min(longest, 10) + self.indent, longest + self.indent)


def break_lines(text: str, width: int, whole: int | None = None) -> list[str]:
    """`text` as lines of at most `width` characters broken at spaces, never inside a word or a number; a word
    longer than `whole` (default: width; a path, a long name) is broken after a '/' or ',', and where that is not
    enough after a '_'; a piece that still does not fit has a line of its own, longer than width."""
    whole = width if whole is None else whole
    lines: list[str] = []
    for word in text.split(" "):
        pieces = [word] if len(word) <= whole else word_pieces(word, width)
        for n, piece in enumerate(pieces):
            glue = "" if n else " "
            if lines and len(lines[-1]) + len(glue) + len(piece) <= width:
                lines[-1] += glue + piece
            else:
                lines.append(piece)
    return lines or [""]


class Breakable:
    """A one-line value (a path, a name, a list) wrapped to the width it is given by break_lines: never inside a
    word; a piece wider than the width is folded as a last resort."""

    def __init__(self, text: str, style: str = ""):
        self.text, self.style = text, style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width, 1)
        for line in break_lines(self.text, width):
            for k in range(0, max(len(line), 1), width):
                yield Text(line[k:k + width], style=self.style, end="\n")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        shortest = max(len(p) for w in self.text.split(" ") for p in word_pieces(w) or [""])
        return Measurement(min(shortest, len(self.text)), len(self.text))

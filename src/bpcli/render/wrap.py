"""Prose: a Rich renderable that wraps text to the width it is given between terms, never inside a formula."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

from bpcli.prose import OPERATORS, line_spans


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

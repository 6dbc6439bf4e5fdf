"""Fitting explain's LaTeX to the page: rows of align* broken between terms, wide tables in a smaller font or
split, and the preamble of a standalone document (`explain --format latex --standalone`).

Widths are estimates in points at 10 pt (Computer Modern), from the LaTeX source: close enough to decide where
to break; the pdflatex test (tests/explain/test_latex_doc.py) checks that nothing ends up wider than the page.
"""

from __future__ import annotations

import re

TEXT_WIDTH = 455.0  # pt: A4 with 2.5 cm margins (the standalone document's page), 16 cm
ROW_WIDTH = 400.0  # an align* row is broken beyond this (left part, relation and right part)
PREAMBLE = (r"\documentclass[10pt]{article}", r"\usepackage[a4paper,margin=2.5cm]{geometry}",
            r"\usepackage{amsmath}", r"\setlength{\parindent}{0pt}", r"\setlength{\parskip}{0.6\baselineskip}")
FONT_SIZES = (("", 1.0), (r"\small", 0.9), (r"\footnotesize", 0.8))
COL_GAP = 12.0  # pt between two columns of a tabular (2 \tabcolsep)

_WIDE = {r"\leftarrow": 16.0, r"\to": 16.0, r"\quad": 10.0, r"\qquad": 20.0, r"\sum": 14.5, r"\dots": 13.0,
         r"\cdot": 8.3, r"\times": 13.0, r"\partial": 5.7, r"\,": 1.7, r"\;": 2.8, r"\ ": 3.3, r"\!": -1.7,
         r"\left": 0.0, r"\right": 0.0, r"\mathrm": 0.0, r"\hat": 0.0, r"\sqrt": 8.3, r"\vdots": 3.0}
_BINARY = {"+": 13.3, "-": 13.3, "=": 13.3, "<": 13.3, ">": 13.3}
_NARROW = set("()[],.;:|'!/")


def _group(s: str, i: int) -> tuple[str, int]:
    """The {...} group (or single token) starting at s[i]: (its inside, the index after it)."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] != "{":
        if s[i] == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:])
            return m.group(0), i + len(m.group(0))
        return s[i], i + 1
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{" and (j == 0 or s[j - 1] != "\\"):
            depth += 1
        elif s[j] == "}" and s[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return s[i + 1:j], j + 1
    return s[i + 1:], len(s)


def tex_width(s: str, scale: float = 1.0, display: bool = True) -> float:
    """Estimated printed width in points of math-mode LaTeX `s` at 10 pt (in display style, or in text style,
    where a fraction is set smaller)."""
    w, i = 0.0, 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:], re.S)
            name = m.group(0) if m else "\\"
            i += len(name)
            if name in (r"\frac", r"\tfrac"):
                num, i = _group(s, i)
                den, i = _group(s, i)
                f = scale if display else 0.85 * scale
                w += max(tex_width(num, f, display), tex_width(den, f, display)) + (2 if display else 4) * scale
            elif name in (r"\text", r"\texttt", r"\mathrm"):
                inner, i = _group(s, i)
                w += (_text_width(re.sub(r"\\(.)", r"\1", inner)) * scale if name != r"\mathrm"
                      else tex_width(inner, scale, display))
            elif name in _WIDE:
                w += _WIDE[name] * scale
            else:
                w += 6.0 * scale  # a Greek letter or symbol
        elif c in "_^":
            inner, i = _group(s, i + 1)
            w += tex_width(inner, scale * 0.7, display)
        elif c in "{}&":
            i += 1
        elif c == " ":
            i += 1
        else:
            before = s[:i].rstrip()
            unary = c == "-" and (not before or before[-1] in "({=+,&")
            w += (7.8 if unary else _BINARY.get(c) or (3.9 if c in _NARROW else 5.0)) * scale
            i += 1
    return w


def _text_width(s: str) -> float:
    """Roman text at 10 pt: capitals are wider."""
    return sum(7.0 if ch.isupper() else 5.0 for ch in s)


def _top_level_breaks(s: str, ops: tuple[str, ...]) -> list[int]:
    """Indices in `s` where a row may break: before one of `ops` outside any group or parentheses."""
    out, depth = [], 0
    for i, c in enumerate(s):
        if c in "{(" and (i == 0 or s[i - 1] != "\\"):
            depth += 1
        elif c in "})" and (i == 0 or s[i - 1] != "\\"):
            depth -= 1
        elif depth == 0 and s.startswith(ops, i):
            out.append(i)
    return out


def _pieces(s: str, room: float) -> list[str]:
    """`s` cut before each top-level + - =, and a piece still wider than `room` also before each \\cdot."""
    out = []
    for piece in _cut(s, (" + ", " - ", " = ")):
        out += _cut(piece, (r" \cdot ",)) if tex_width(piece) > room else [piece]
    return out


def _cut(s: str, ops: tuple[str, ...]) -> list[str]:
    cuts = [0] + _top_level_breaks(s, ops) + [len(s)]
    return [s[a:b] for a, b in zip(cuts, cuts[1:]) if s[a:b].strip()]


def break_row(row: str, width: float = ROW_WIDTH) -> list[str]:
    """One align* row `lhs &= rhs[ && label]` as rows no wider than `width`: the right side is cut between
    terms and each continuation starts `&\\quad + ...` (or `&= ...` for a further equals sign)."""
    main, sep, label = row.partition(" && ")
    lhs, amp, rhs = main.partition("&")
    if not amp or tex_width(main) + (tex_width(label) + 20 if sep else 0) <= width:
        return [row]
    indent = " " * (len(row) - len(row.lstrip()))
    room = width - tex_width(lhs)
    rows, cur = [], ""
    for p in _pieces(rhs, room):
        if cur and tex_width(cur + p) > room:
            rows.append(cur)
            cur = p.lstrip()
        else:
            cur += p
    rows.append(cur)
    out = [f"{lhs.rstrip()} &{rows[0].rstrip()}" + (f" && {label}" if sep else "")]
    for r in rows[1:]:
        lead = "&" if r.startswith("=") else "&\\quad "
        out.append(f"{indent}{lead}{r.rstrip()}")
    return out


def fit_aligns(text: str, width: float = ROW_WIDTH) -> str:
    """Every align* block of `text` with its long rows broken (rows are separated by ' \\\\' line ends)."""
    def fit(m: re.Match) -> str:
        rows = m.group(2).split(" \\\\\n")
        return m.group(1) + " \\\\\n".join(r for row in rows for r in break_row(row, width)) + m.group(3)
    return re.sub(r"(\\begin\{align\*\}\n)(.*?)(\n\\end\{align\*\})", fit, text, flags=re.S)


def _cell_width(cell: str, scale: float) -> float:
    """A tabular cell: $math$ pieces measured as math, the rest as text."""
    w = 0.0
    for k, part in enumerate(re.split(r"(?<!\\)\$", cell)):  # \$ is a dollar sign, not math
        w += tex_width(part, scale, display=False) if k % 2 else _text_width(part.strip()) * scale
    return w


def tex_table(heads: list[str], rows: list[list[str] | None], foot: tuple[str, str] | None,
              width: float = 0.95 * TEXT_WIDTH) -> list[str]:
    """A right-aligned tabular that fits `width`: in the normal font, else \\small or \\footnotesize, else split
    into several tables of consecutive columns, each repeating the first (the sample number).

    rows: cells per row, None for a row of dots; foot: (label, value) for a last row under the last column.
    """
    def widths(cols: list[int], scale: float) -> float:
        cells = [[heads[c] for c in cols]] + [[r[c] for c in cols] for r in rows if r is not None]
        return sum(max(_cell_width(row[k], scale) for row in cells) + COL_GAP for k in range(len(cols)))

    everything = list(range(len(heads)))
    for size, scale in FONT_SIZES:
        if widths(everything, scale) <= width:
            return _tabular(heads, rows, foot, everything, size)
    size, scale = FONT_SIZES[-1]
    rest = everything[1:]
    for k in range(2, len(rest) + 1):  # the fewest tables of about equal column counts that fit
        parts = [[0] + rest[len(rest) * p // k:len(rest) * (p + 1) // k] for p in range(k)]
        if all(widths(cols, scale) <= width for cols in parts):
            break
    out = []
    for k, cols in enumerate(parts):
        out += _tabular(heads, rows, foot if k == len(parts) - 1 else None, cols, size)
        if k < len(parts) - 1:
            out.append(r"\par\medskip")
    return out


def _tabular(heads, rows, foot, cols: list[int], size: str) -> list[str]:
    out = ["{" + size + ("\n" if size else "") + r"\begin{tabular}{" + "r" * len(cols) + "}", r"\hline",
           " & ".join(heads[c] for c in cols) + r" \\", r"\hline"]
    for r in rows:
        if r is None:
            out.append(r"\multicolumn{" + str(len(cols)) + r"}{c}{$\vdots$} \\")
        else:
            out.append(" & ".join(r[c] for c in cols) + r" \\")
    out.append(r"\hline")
    if foot is not None:
        out += [r"\multicolumn{" + str(len(cols) - 1) + "}{r}{" + foot[0] + "} & " + foot[1] + r" \\", r"\hline"]
    out.append(r"\end{tabular}}")
    return out


def standalone(body: str) -> str:
    """A complete document around explain's LaTeX: compiles with pdflatex (packages: geometry, amsmath)."""
    return "\n".join(PREAMBLE + (r"\begin{document}", body.rstrip(), r"\end{document}")) + "\n"

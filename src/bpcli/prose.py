"""Wrapping text between terms: a formula (C = 1/m * sum_i L_i), a `code span` or a $math$ span stays whole.

Plain functions on strings, used for the text bpcli writes (worksheets, exported files' headers) and by the
renderer that wraps explanations to the terminal's width.
"""

from __future__ import annotations

import re

OPERATORS = frozenset({"=", "*", "+", "-", "/", "->", "<-", "<=", ">=", "<", ">", "==", "!=", "~", "=>", "^"})
LOOSE = (frozenset({"=", "->", "<-", "=>", "==", "!=", "~"}), frozenset({"+", "-", "<", ">", "<=", ">="}), OPERATORS)
SEPARATOR = "·"  # a list such as `2-2-1 network · loss squared_error · 9 parameters` breaks only after one
_WORD = re.compile(r"\S+")
_MATHY = re.compile(r"[=*/+^_|<>\d]|[A-Za-z]'(?![A-Za-z])|[A-Za-z]\(")


def _core(tok: str) -> str:
    return tok.strip(",.;:!?()[]{}\"")


def mathy(tok: str) -> bool:
    """A token that belongs to a formula: an operator, a symbol with digits or subscripts, a single letter."""
    if tok in OPERATORS:
        return True
    core = _core(tok)
    return bool(_MATHY.search(tok)) or (len(core) == 1 and core.isalpha())


def _ends_clause(tok: str) -> bool:
    """A token after which a formula ends: it closes with , ; : or a full stop (not an ellipsis)."""
    return tok.endswith((",", ";", ":", "?", "!")) or (tok.endswith(".") and not tok.endswith(".."))


# spans kept whole: `code`, $math$ and short parentheses such as (factor -1), (lr = 0.5) or (y - y')
_WHOLE = re.compile(r"`[^`]*`|\$[^$]*\$|\((?:[^()\s]+\s){0,2}[^()\s]*\)")


def _depths(text: str, words: list[tuple[int, int]]) -> list[int]:
    """depths[i]: how many brackets ( [ { are open at the gap after word i (a break there would split them)."""
    out, depth, pos = [], 0, 0
    for _, end in words[:-1]:
        for c in text[pos:end]:
            depth = depth + 1 if c in "([{" else max(depth - 1, 0) if c in ")]}" else depth
        pos = end
        out.append(depth)
    return out


def _glued(text: str, words: list[tuple[int, int]]) -> list[bool]:
    """glued[i]: no line break between word i and word i + 1 of `text`."""
    tokens = [text[a:b] for a, b in words]
    whole = [m.span() for m in _WHOLE.finditer(text)]
    listed = SEPARATOR in tokens
    glued = []
    for i in range(len(words) - 1):
        a, b = tokens[i], tokens[i + 1]
        gap = words[i][1]
        if listed:
            glued.append(a != SEPARATOR)
        elif words[i + 1][0] - gap > 1:  # two spaces or more: a deliberate gap between two pieces
            glued.append(False)
        elif any(s < gap < e for s, e in whole):
            glued.append(True)
        elif _ends_clause(a) and b not in OPERATORS:
            glued.append(False)
        else:
            glued.append(a in OPERATORS or b in OPERATORS or (mathy(a) and mathy(b)))
    return glued


def line_spans(text: str, width: int, first_width: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of each line of `text` (one paragraph) wrapped to `width` columns, breaking only
    between terms; a piece longer than a line is broken before an operator, at a space, or where it must."""
    narrowest = width if first_width is None else min(width, first_width)
    words = [piece for m in _WORD.finditer(text) for piece in _spans(text, m.start(), m.end(), narrowest)]
    if not words:
        return [(0, 0)]
    tokens = [text[a:b] for a, b in words]
    glued = _glued(text, words)
    # chunks: runs of glued words, each (first word, last word)
    chunks, start = [], 0
    for i in range(len(tokens)):
        if i == len(tokens) - 1 or not glued[i]:
            chunks.append((start, i))
            start = i + 1
    lines: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None  # first and last word of the line being filled
    limit = width if first_width is None else first_width

    def length(a: int, b: int) -> int:
        return words[b][1] - words[a][0]

    for a, b in chunks:
        if cur is not None and length(cur[0], b) <= limit:
            cur = (cur[0], b)
            continue
        if cur is not None:
            lines.append(cur)
            limit = width
        cur = (a, b)
        while length(*cur) > limit and cur[0] < cur[1]:  # too long for any line: break inside, as well as it can
            k = _inner_break(tokens, words, cur, limit)
            lines.append((cur[0], k))
            limit = width
            cur = (k + 1, cur[1])
    if cur is not None:
        lines.append(cur)
    return [(words[a][0], words[b][1]) for a, b in lines]


def word_pieces(word: str, width: int | None = None) -> list[str]:
    """A word too long for a line (a path, a long name) as pieces that end at a '/' or ',' (each piece keeps it), a
    piece still wider than `width` (None: every piece) also after each '_': where a line may break without cutting
    a name in two."""
    out = []
    for p in re.split(r"(?<=[/,])", word):
        out += [q for q in re.split(r"(?<=_)", p) if q] if width is None or len(p) > width else [p] if p else []
    return out


def _spans(text: str, a: int, b: int, width: int) -> list[tuple[int, int]]:
    """The word text[a:b] as one span, or as its word_pieces when it is longer than a line."""
    if b - a <= width:
        return [(a, b)]
    out = []
    for piece in word_pieces(text[a:b], width):
        out.append((a, a + len(piece)))
        a += len(piece)
    return out


def _inner_break(tokens, words, span: tuple[int, int], limit: int) -> int:
    """The last word of the first line when the words span[0]..span[1] cannot share one line: the latest break
    that fits and keeps operators at the start of the next line, else the latest that fits, else one word."""
    a, b = span
    fits = [k for k in range(a, b) if words[k][1] - words[a][0] <= limit]
    if not fits:
        return a
    joined = " ".join(tokens)  # the brackets sit in the tokens: their depth at each gap, from the line's start
    depth = _depths(joined, [(m.start(), m.end()) for m in _WORD.finditer(joined)])
    outside = [k for k in fits if not depth[k]]  # between brackets, never inside them, when the line allows
    # before an operator, the loosest first: between the sides of = or an arrow, then between terms, then factors
    ranked = [[k for k in outside if tokens[k] not in OPERATORS and tokens[k + 1] in ops] for ops in LOOSE]
    fair = [k for k in outside if tokens[k] not in OPERATORS]
    good_in = [k for k in fits if tokens[k] not in OPERATORS and tokens[k + 1] in OPERATORS]
    fair_in = [k for k in fits if tokens[k] not in OPERATORS]
    return next(c for c in (*ranked, fair, good_in, fair_in, fits) if c)[-1]


def wrap(text: str, width: int = 79, indent: str = "", subsequent_indent: str | None = None) -> list[str]:
    """`text` as lines of at most `width` characters (indent included), each paragraph (\\n) wrapped on its own."""
    later = indent if subsequent_indent is None else subsequent_indent
    out: list[str] = []
    for para in text.split("\n"):
        first = True
        for a, b in line_spans(para, max(width - len(later), 10), max(width - len(indent), 10)):
            out.append(((indent if first else later) + para[a:b]).rstrip())
            first = False
    return out

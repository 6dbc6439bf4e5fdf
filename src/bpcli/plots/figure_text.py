"""User text drawn in a figure exactly as written: no mathtext, nothing an SVG (XML) cannot hold."""

from __future__ import annotations

import re

# what XML 1.0 cannot hold (an SVG would not parse), shown as \xNN
_UNDRAWABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def plain(text: str) -> str:
    """User text (a config's name, an input's or a class's name) drawn as written: a '$' is not mathtext, and a
    control character is shown as \\xNN (an SVG holding it raw is not XML)."""
    return _UNDRAWABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text)).replace("$", r"\$")

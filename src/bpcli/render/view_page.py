"""The learning page: one self-contained HTML file (inline CSS, JavaScript and SVG) around view.py's data.

The data goes in as JSON inside <script type="application/json">, with every <, > and & escaped, so no name in a
config can close the script or open a tag; the JavaScript reads it with JSON.parse and puts text on the page with
textContent only.
"""

from __future__ import annotations

import functools
import json

from bpcli.training.results import finite_or_none


def page_json(data: dict) -> str:
    """The page's data as JSON safe inside a script element: no <, > or & survives (\\u003c ...)."""
    text = json.dumps(finite_or_none(data), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def view_html(data: dict) -> str:
    """The whole page for a ViewPage.to_dict(): view_page.html (beside this module) with the data put in."""
    return _template().replace("/*DATA*/", page_json(data), 1)


@functools.cache
def _template() -> str:
    """The page's HTML, CSS and JavaScript: a package data file, view_page.html."""
    from importlib.resources import files
    return files("bpcli.render").joinpath("view_page.html").read_text(encoding="utf-8")

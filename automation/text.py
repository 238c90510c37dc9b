"""Text normalisation shared by `fz`, `sw` and auto_tag: Prepr's fuzzy match is case- and
diacritic-insensitive, and rich-text fields carry HTML that must not match keywords."""
from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^>]*>")
_MARKS = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_SPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """Case- and diacritic-insensitive form ('Café' -> 'cafe'); ASCII takes the fast path."""
    text = text.casefold()
    if not text.isascii():
        text = _MARKS.sub("", unicodedata.normalize("NFKD", text))
    return text


def strip_html(text: str) -> str:
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def normalize(text: str) -> str:
    """HTML stripped, folded, whitespace collapsed: the form every text comparison uses."""
    return _SPACE.sub(" ", fold(strip_html(text))).strip()


def is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def normalize_query(text: str) -> str:
    """The searched-for side: folded and trimmed, but HTML is not stripped (it is what was typed)."""
    return _SPACE.sub(" ", fold(text)).strip()

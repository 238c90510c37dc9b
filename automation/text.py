"""Text normalisation shared by `fz`, `sw` and auto_tag: Prepr's fuzzy match is case- and
diacritic-insensitive, and rich-text fields carry HTML that must not match keywords. Stemming
(auto_tag `match: stem`) is the Snowball stemmer of a language, from snowballstemmer."""
from __future__ import annotations

import html
import re
import unicodedata
from typing import Callable

import snowballstemmer

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


# ISO 639-1 code -> Snowball algorithm; a locale's language picks its stemmer ('nl-BE' -> dutch)
LANGUAGES = {code: name for code, name in {
    "ar": "arabic", "ca": "catalan", "cs": "czech", "da": "danish", "de": "german", "el": "greek",
    "en": "english", "es": "spanish", "et": "estonian", "eu": "basque", "fi": "finnish", "fr": "french",
    "ga": "irish", "hi": "hindi", "hu": "hungarian", "hy": "armenian", "id": "indonesian", "it": "italian",
    "lt": "lithuanian", "nb": "norwegian", "ne": "nepali", "nl": "dutch", "nn": "norwegian",
    "no": "norwegian", "pl": "polish", "pt": "portuguese", "ro": "romanian", "ru": "russian",
    "sr": "serbian", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}.items() if name in snowballstemmer.algorithms()}
_NON_WORD = re.compile(r"\W+")


def stem_form(language: str) -> Callable[[str], str]:
    """Text -> its words' stems, HTML stripped and folded like `normalize` (stems are taken
    before diacritics go, as the Snowball algorithms expect them)."""
    stemmer = snowballstemmer.stemmer(language)

    def form(text: str) -> str:
        words = [w for w in _NON_WORD.split(strip_html(text).casefold()) if w]
        unique = list(dict.fromkeys(words))  # each distinct word stemmed once
        stems = dict(zip(unique, stemmer.stemWords(unique)))
        return fold(" ".join(map(stems.__getitem__, words)))
    return form

"""User regexes in linear time: every pattern a rule file brings (`matches`, `on:` globs) runs on RE2.

Python's `re` backtracks: `(a+)+$` against forty `a` and a `!` holds the GIL for minutes, which
stops a whole worker and the console's *Explain*. RE2 matches in time linear in the text (its
DFA, or its NFA when the DFA's memory is spent), so no pattern and no content can stall a process.
What RE2 cannot express (backreferences, lookaround, atomic groups) is refused at `validate` with
a message that says why, instead of silently meaning something else.
"""
from __future__ import annotations

import re
from typing import Any

import re2

MAX_REGEX_CHARS = 1000  # a pattern in a rule file
MAX_REPEAT = 1000  # RE2's own limit too; checked here for a clearer message
MAX_PROGRAM_BYTES = 8 << 20  # RE2's compile memory per pattern (its default): bounds DFA/NFA state
# Linear is not yet fast: when RE2's DFA cannot cache a pattern's states (`[ab]*a[ab]{999}c`) its NFA
# costs up to ~9 ns per text byte per program instruction here. 1000 instructions keep the worst
# pattern under ~1 s on a 100 KB text (measured: docs/rules.md, "Limits").
MAX_PROGRAM = 1000
_REPEAT = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr
_OPTIONS.max_mem = MAX_PROGRAM_BYTES
_OPTIONS.never_capture = True  # only "found or not" is asked; captures make the NFA far slower

_UNSUPPORTED = (  # RE2's message starts → what a rule author should read
    ("invalid escape sequence: \\1", "backreferences"),
    ("invalid perl operator: (?=", "lookahead"), ("invalid perl operator: (?!", "lookahead"),
    ("invalid perl operator: (?<=", "lookbehind"), ("invalid perl operator: (?<!", "lookbehind"),
    ("invalid perl operator: (?>", "atomic groups"),
    ("bad repetition operator: *+", "possessive quantifiers"),
    ("bad repetition operator: ++", "possessive quantifiers"),
    ("bad repetition operator: ?+", "possessive quantifiers"),
)
_BACKREF = re.compile(r"\\[1-9]|\\k<|\(\?P=")  # in the pattern, when RE2 refused it


class Matcher:
    """One compiled pattern; `search` answers whether it occurs anywhere in a text."""

    __slots__ = ("pattern", "_regexp")

    def __init__(self, pattern: str, regexp: Any) -> None:
        self.pattern = pattern
        self._regexp = regexp

    def search(self, text: str) -> bool:
        # UTF-8 bytes: a lone surrogate (valid in JSON text from the API) cannot be encoded strictly
        return self._regexp.search(text.encode("utf-8", "surrogatepass")) is not None

    def __repr__(self) -> str:
        return f"Matcher({self.pattern!r})"

    def __reduce__(self) -> tuple:
        return compile_regex, (self.pattern,)


def _message(exc: Exception, pattern: str) -> str:
    raw = exc.args[0] if exc.args else str(exc)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if _BACKREF.search(pattern):
        return f"backreferences cannot be matched in linear time (RE2 syntax): {text}"
    for start, what in _UNSUPPORTED:
        if text.startswith(start):
            return f"{what} cannot be matched in linear time (RE2 syntax): {text}"
    return text


def regex_error(pattern: Any) -> str | None:
    """Why a rule's pattern cannot be used, or None. The wording is what `validate` prints."""
    if not isinstance(pattern, str):
        return "expected a regular expression string"
    if len(pattern) > MAX_REGEX_CHARS:
        return f"regular expression longer than {MAX_REGEX_CHARS} characters"
    if any(int(n or 0) > MAX_REPEAT for m in _REPEAT.finditer(pattern) for n in m.groups()):
        return f"repetition count over {MAX_REPEAT} in regular expression"
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        return f"bad regular expression: {_message(exc, pattern)}"
    except (UnicodeError, ValueError, TypeError) as exc:
        return f"bad regular expression: {exc}"
    size = max(compiled.programsize, compiled.reverseprogramsize)
    if size > MAX_PROGRAM:
        return (f"regular expression too complex to match in bounded time ({size} RE2 instructions,"
                f" over {MAX_PROGRAM}): use smaller repetition counts or fewer alternatives")
    return None


def compile_regex(pattern: str) -> Matcher:
    """The one compiled form used by the worker, `explain` and the console (RE2, cached)."""
    return Matcher(pattern, re2.compile(pattern, _OPTIONS))


def glob_to_regex(glob: str) -> str:
    """fnmatch semantics (`*`, `?`, `[seq]`, `[!seq]`) as an anchored RE2 pattern.

    `fnmatch.translate` emits atomic groups, which RE2 lacks; this translation needs none because
    RE2 never backtracks."""
    out, i, n = [], 0, len(glob)
    while i < n:
        c = glob[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i + 1 if i < n and glob[i] == "!" else i
            j = j + 1 if j < n and glob[j] == "]" else j
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                out.append(re2.escape("["))
                continue
            body = glob[i:j]
            i = j + 1
            negate = body.startswith("!")
            body = body[1:] if negate else body
            chars = body.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
            chars = "\\" + chars if chars.startswith("^") else chars
            out.append(f"[{'^' if negate else ''}{chars}]")
        else:
            out.append(re2.escape(c))
    return "(?s)\\A" + "".join(out) + "\\z"


def compile_glob(glob: str) -> Matcher:
    return compile_regex(glob_to_regex(glob))

"""YAML parsed with positions: ruamel round-trip nodes remember the line/col of every key and value.

Validation works on plain data (what marshmallow and the compilers see) while `Source.error`
finds the position of a key path in the node tree, so every error points at its key or value.
The composer that builds the node tree bounds nesting depth, what aliases expand to and the
length of plain numbers as it goes: a malformed or hostile file is an error at its line and
column, in bounded time and memory.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from pathlib import Path as FilePath

from ruamel.yaml import YAML, events
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.nodes import MappingNode, SequenceNode
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .errors import RuleError

Path = tuple  # of str keys and int indices

MAX_FILE_BYTES = 2 * 1024 * 1024  # 10,000 rules take about 1.2 MB
MAX_DEPTH = 40  # nested mappings and lists
MAX_ALIASED = 100_000  # values that aliases add to the file once expanded
MAX_NUMBER_CHARS = 1000  # a plain scalar that YAML may read as a number


class _Limit(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.mark = mark


class _BoundedComposer(Composer):
    """ruamel's composer, stopped at MAX_DEPTH nesting, MAX_ALIASED values added by aliases (an
    alias counts as the expanded size of what it names, so a 'billion laughs' file stops at
    its first lines) and plain numbers of MAX_NUMBER_CHARS: checked as the tree is built."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader=loader)
        self.nesting, self.aliased, self.sizes = 0, 0, {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, events.AliasEvent):
            node = super().compose_node(parent, index)
            self.aliased += self._size(node)
            if self.aliased > MAX_ALIASED:
                raise _Limit(f"aliases expand to more than {MAX_ALIASED} values", event.start_mark)
            return node
        if (isinstance(event, events.ScalarEvent) and not event.style
                and len(event.value) > MAX_NUMBER_CHARS and event.value[:1] in "+-.0123456789"):
            raise _Limit(f"plain value longer than {MAX_NUMBER_CHARS} characters (quote it)", event.start_mark)
        if not isinstance(event, (events.MappingStartEvent, events.SequenceStartEvent)):
            return super().compose_node(parent, index)
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise _Limit(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.nesting -= 1

    def _size(self, node: Any) -> int:
        """Values in a node once expanded (shared nodes counted each time, worked out once)."""
        key = id(node)
        if key not in self.sizes:
            if isinstance(node, SequenceNode):
                self.sizes[key] = 1 + sum(self._size(n) for n in node.value)
            elif isinstance(node, MappingNode):
                self.sizes[key] = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
            else:
                self.sizes[key] = 1
        return self.sizes[key]


def decode(name: str, data: bytes) -> tuple[str | None, RuleError | None]:
    """UTF-8 text (a BOM is allowed), or the error at the first byte that is not."""
    if len(data) > MAX_FILE_BYTES:
        return None, RuleError(name, 1, 1, "", f"file larger than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        return None, RuleError(name, line, col, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x})")


def _position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def format_path(path: Sequence[Any]) -> str:
    """('rules', 0, 'when', 'title') -> 'rules[0].when.title'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def to_plain(node: Any) -> Any:
    """ruamel node -> plain dict/list/str/int/float/bool/None (dates become ISO strings)."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, (int, float, bool)) else k: to_plain(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, (dt.datetime, dt.date)):
        return node.isoformat()
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


class Source:
    """One parsed YAML file: its name for messages, its node tree and the errors found in it."""

    def __init__(self, name: str, root: Any) -> None:
        self.name = name
        self.root = root
        self.errors: list[RuleError] = []

    @classmethod
    def read(cls, path: FilePath) -> "Source":
        """Parse a file from disk; unreadable or non-UTF-8 files become errors too."""
        name = str(path)
        try:
            text, error = decode(name, path.read_bytes())
        except OSError as exc:
            text, error = None, RuleError(name, 1, 1, "", f"cannot read: {exc.strerror or exc}")
        if text is None:
            src = cls(name, None)
            src.errors.append(error)  # type: ignore[arg-type]
            return src
        return cls.parse(name, text)

    @classmethod
    def parse(cls, name: str, text: str) -> "Source":
        yaml = YAML(typ="rt")
        yaml.allow_duplicate_keys = False
        yaml.Composer = _BoundedComposer
        src = cls(name, None)
        try:
            src.root = yaml.load(text)
        except _Limit as exc:
            src.errors.append(RuleError(name, exc.mark.line + 1, exc.mark.column + 1, "", str(exc)))
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = (exc.problem or exc.context or "invalid YAML").strip()
            src.errors.append(RuleError(name, line, col, "", f"YAML syntax error: {problem}"))
        except YAMLError as exc:  # the reader's: a control character or other unreadable text
            line, col = _position(text, getattr(exc, "position", 0) or 0)
            src.errors.append(RuleError(name, line, col, "", f"YAML syntax error: {_reader_message(exc)}"))
        except RecursionError:
            src.errors.append(RuleError(name, 1, 1, "", "YAML nested too deeply"))
        except (ValueError, TypeError, OverflowError) as exc:  # ruamel's constructors, on odd values
            src.errors.append(RuleError(name, 1, 1, "", f"YAML value cannot be read: {exc}"))
        return src

    def position(self, path: Sequence[Any], at_key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the value (or key) at path; the closest existing ancestor if absent."""
        node, parent, last = self.root, None, None
        for part in path:
            if isinstance(node, CommentedMap) and part in node:
                parent, last, node = node, part, node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                parent, last, node = node, part, node[part]
            else:
                return self._own(node, parent, last)
        if parent is None:
            return (1, 1)
        if isinstance(parent, CommentedMap):
            line, col = parent.lc.key(last) if at_key else parent.lc.value(last)
        else:
            line, col = parent.lc.item(last)
        return line + 1, col + 1

    def _own(self, node: Any, parent: Any, last: Any) -> tuple[int, int]:
        """A missing key is reported where its mapping starts."""
        if parent is not None:
            return self.position_of(parent, last)
        return (1, 1)

    @staticmethod
    def position_of(parent: Any, last: Any) -> tuple[int, int]:
        if isinstance(parent, CommentedMap):
            line, col = parent.lc.value(last)
        else:
            line, col = parent.lc.item(last)
        return line + 1, col + 1

    def error(self, path: Sequence[Any], message: str, at_key: bool = False) -> None:
        line, col = self.position(path, at_key)
        self.errors.append(RuleError(self.name, line, col, format_path(path), message))


class Reporter:
    """Error sink handed to compilers: they report (path, message) without knowing about YAML."""

    def __init__(self, source: Source, base: Sequence[Any] = ()) -> None:
        self.source = source
        self.base = tuple(base)

    def at(self, *parts: Any) -> "Reporter":
        return Reporter(self.source, self.base + parts)

    def error(self, message: str, *parts: Any, at_key: bool = False) -> None:
        self.source.error(self.base + parts, message, at_key)

    def key_error(self, message: str, *parts: Any) -> None:
        self.source.error(self.base + parts, message, at_key=True)

    @property
    def count(self) -> int:
        return len(self.source.errors)


def _reader_message(exc: YAMLError) -> str:
    char = getattr(exc, "character", None)
    if isinstance(char, str) and char:
        return f"character {ord(char):#06x} is not allowed in YAML"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable text"

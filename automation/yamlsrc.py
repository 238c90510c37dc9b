"""YAML parsed with positions: ruamel round-trip nodes remember the line/col of every key and value.

Validation works on plain data (what marshmallow and the compilers see) while `Source.error`
finds the position of a key path in the node tree, so every error points at its key or value.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from .errors import RuleError

Path = tuple  # of str keys and int indices


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
    def parse(cls, name: str, text: str) -> "Source":
        yaml = YAML(typ="rt")
        yaml.allow_duplicate_keys = False
        try:
            root = yaml.load(text)
        except MarkedYAMLError as exc:
            src = cls(name, None)
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = (exc.problem or exc.context or "invalid YAML").strip()
            src.errors.append(RuleError(name, line, col, "", f"YAML syntax error: {problem}"))
            return src
        return cls(name, root)

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

"""auto_tag: tags whose keywords occur in the item's text.

One Aho-Corasick automaton per action, built at load over normalised keywords (case- and
diacritic-folded), so scanning costs the length of the text, not the size of the vocabulary.
Text is HTML-stripped and folded the same way; `match: word` checks word boundaries around each
hit; `match: stem` first reduces keywords and text, word by word, with the Snowball stemmer of
the locale's language (snowballstemmer), so "elections" finds "election" and "verkiezingen"
"verkiezing" (one automaton per language, built on first use). Publications are matched per locale (a tag lands in the locale whose text mentions it);
`max_tags` keeps the tags with the most occurrences.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import ahocorasick
from marshmallow import Schema, fields, validate

from ..draft import TagOp
from ..fields import texts
from ..resources import KINDS
from ..text import LANGUAGES, is_word_char, normalize, stem_form
from ..yamlsrc import Reporter, Source, to_plain
from .base import Action, BuildEnv, PlanContext, StrictInt, StringList, load_partial
from .tags import target_locales

SEPARATOR = " \x00 "  # between fields: no keyword can match across it
MAX_KEYWORD_CHARS = 200
MAX_KEYWORDS = 100_000  # per vocabulary
NOT_TEXT = frozenset({"id", "label", "status", "slug", "reference_id", "mime_type", "extension",
                      "replaceable", "locale", "format", "email", "phone"})


class AutoTagArgs(Schema):
    vocabulary = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))
    vocabulary_file = fields.String()
    fields_ = StringList(data_key="fields", load_default=None)
    locales = StringList(load_default=None)
    match = fields.String(load_default="word", validate=validate.OneOf(["word", "substring", "stem"]))
    language = fields.String(validate=validate.OneOf(sorted(set(LANGUAGES) | set(LANGUAGES.values()))))
    max_tags = StrictInt(load_default=None, validate=validate.Range(min=1))
    tag_field = fields.String(load_default="tags", validate=validate.Length(min=1))


class Vocabulary:
    """keyword automaton: normalised keyword -> (length, keyword number); tags per keyword apart,
    so a hit costs one count whatever the number of tags sharing the keyword."""

    def __init__(self, entries: dict[str, list[str]], form: Callable[[str], str] = normalize) -> None:
        self.entries, self.tags = entries, list(entries)
        by_keyword: dict[str, set[int]] = {}
        for index, (tag, keywords) in enumerate(entries.items()):
            for keyword in keywords or [tag]:
                norm = form(str(keyword))
                if norm:
                    by_keyword.setdefault(norm, set()).add(index)
        self.keyword_tags = [tuple(sorted(tags)) for tags in by_keyword.values()]
        self.automaton = ahocorasick.Automaton()
        for number, keyword in enumerate(by_keyword):
            self.automaton.add_word(keyword, (len(keyword), number))
        self.size = len(by_keyword)
        if self.size:
            self.automaton.make_automaton()

    def count(self, text: str, word: bool) -> dict[str, int]:
        """tag -> occurrences in an already normalised text."""
        if not self.size or not text:
            return {}
        hits: dict[int, int] = {}
        last = len(text) - 1
        for end, (length, number) in self.automaton.iter(text):
            if word:
                start = end - length + 1
                if (start > 0 and is_word_char(text[start - 1])) or (end < last and is_word_char(text[end + 1])):
                    continue
            hits[number] = hits.get(number, 0) + 1
        counts: dict[int, int] = {}
        for number, n in hits.items():
            for index in self.keyword_tags[number]:
                counts[index] = counts.get(index, 0) + n
        return {self.tags[i]: n for i, n in sorted(counts.items())}


def pick(counts: dict[str, int], max_tags: int | None) -> list[str]:
    """Most occurrences first; ties keep vocabulary order (dicts preserve it)."""
    ranked = sorted(counts, key=lambda tag: -counts[tag])
    return ranked[:max_tags] if max_tags else ranked


class AutoTag(Action):
    name = "auto_tag"
    kinds = KINDS
    args = AutoTagArgs

    def __init__(self, vocabulary: Vocabulary, text_fields: list[str] | None, locales: list[str] | None,
                 match: str, max_tags: int | None, tag_field: str, language: str | None = None) -> None:
        self.vocabulary, self.text_fields, self.locales = vocabulary, text_fields, locales
        self.word, self.stem, self.max_tags, self.tag_field = match != "substring", match == "stem", max_tags, tag_field
        self.language = LANGUAGES.get(language or "", language)
        self._by_language: dict[str, tuple[Vocabulary, Callable[[str], str]]] = {}

    @classmethod
    def build(cls, args: Any, report: Reporter, env: BuildEnv) -> "AutoTag | None":
        return _build(args, report, env)

    def language_of(self, locale: str | None) -> str | None:
        """The Snowball language: the action's `language`, else the locale's, else English for
        resources without locales; None (no stemming) for a locale Snowball does not know."""
        if self.language or locale is None:
            return self.language or "english"
        return LANGUAGES.get(locale.split("-")[0].lower())

    def scan(self, values: dict, locale: str | None) -> dict[str, int]:
        skip = NOT_TEXT | {self.tag_field}
        chosen = self.text_fields or [k for k in values if k not in skip and not k.endswith("_on")]
        parts = [t for key in chosen for t in texts(values.get(key), skip)]
        if not parts:
            return {}
        language = self.language_of(locale) if self.stem else None
        if language is None:
            return self.vocabulary.count(normalize(SEPARATOR.join(parts)), self.word)
        if language not in self._by_language:  # a race builds it twice, harmlessly
            form = stem_form(language)
            # stems are words joined by single spaces: keywords padded with a space on each side
            # can only match whole words, so the scan needs no boundary checks
            padded = Vocabulary(self.vocabulary.entries, lambda k: f" {stem} " if (stem := form(k)) else "")
            self._by_language[language] = (padded, form)
        vocabulary, form = self._by_language[language]
        return vocabulary.count(f" {SEPARATOR.join(form(p) for p in parts)} ", False)

    def plan(self, ctx: PlanContext) -> tuple[list, dict]:
        if ctx.resource != "publication":
            counts = self.scan(ctx.item, None)
            found = pick(counts, self.max_tags)
            ops = [TagOp(True, None, self.tag_field, tuple(found))] if found else []
            return ops, {"counts": counts, "tags": found}
        ops, rendered = [], {}
        items = ctx.item.get("items") or {}
        for locale in target_locales(ctx, self.locales):
            values = items.get(locale) if isinstance(items.get(locale), dict) else {}
            counts = self.scan(values, locale)
            found = pick(counts, self.max_tags)
            rendered.setdefault("locales", {})[locale] = {"counts": counts, "tags": found}
            if found:
                ops.append(TagOp(True, locale, self.tag_field, tuple(found)))
        return ops, rendered

    def needs(self, resource: str) -> frozenset[str]:
        if resource == "publication":
            return frozenset({"items", "locales"})
        return frozenset(self.text_fields or ("name", "body")) | {self.tag_field}


def _check_entries(data: Any, report: Reporter) -> dict[str, list[str]] | None:
    if not isinstance(data, dict) or not data:
        report.error("expected a mapping of tag: [keywords]")
        return None
    entries: dict[str, list[str]] = {}
    total = 0
    for tag, keywords in data.items():
        if keywords is None:
            keywords = []
        elif isinstance(keywords, str):
            keywords = [keywords]
        if not isinstance(keywords, list) or not all(isinstance(k, (str, int, float)) for k in keywords):
            report.error("expected a list of keywords", tag)
            continue
        words = [str(k) for k in keywords] or [str(tag)]
        long = next((w for w in words if len(w) > MAX_KEYWORD_CHARS), None)
        if long is not None:
            report.error(f"keyword longer than {MAX_KEYWORD_CHARS} characters: {long[:40]!r}...", tag)
            continue
        total += len(words)
        if total > MAX_KEYWORDS:
            report.error(f"more than {MAX_KEYWORDS} keywords in one vocabulary")
            return None
        entries[str(tag)] = [str(k) for k in keywords]
    return entries


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, or with a NUL: no such file
        return False


def _read_file(name: str, report: Reporter, env: BuildEnv) -> dict[str, list[str]] | None:
    path = next((p for p in (env.source_dir / name, Path(name)) if _is_file(p)), None)
    if path is None:
        report.error(f"vocabulary file not found: {name[:200]}")
        return None
    env.vocab_files.add(path.resolve())
    source = Source.read(path)
    if source.errors:
        report.source.errors.extend(source.errors)
        return None
    entries = _check_entries(to_plain(source.root), Reporter(source))
    report.source.errors.extend(source.errors)
    return entries


def _build(args: Any, report: Reporter, env: BuildEnv) -> AutoTag | None:
    """auto_tag's arguments: exactly one of vocabulary / vocabulary_file, read and checked here."""
    data, ok = load_partial(AutoTagArgs(), args, report)
    given = [key for key in ("vocabulary", "vocabulary_file") if isinstance(args, dict) and key in args]
    if len(given) != 1:
        if isinstance(args, dict):
            report.error("give exactly one of 'vocabulary' and 'vocabulary_file'")
        return None
    if "vocabulary" in data:
        entries = _check_entries(data["vocabulary"], report.at("vocabulary"))
    elif "vocabulary_file" in data:  # read even when other keys are wrong: it is a vocabulary, not rules
        entries = _read_file(data["vocabulary_file"], report.at("vocabulary_file"), env)
    else:
        return None
    if entries is None or not ok:
        return None
    return AutoTag(Vocabulary(entries), data["fields_"], data["locales"], data["match"],
                   data["max_tags"], data["tag_field"], data.get("language"))


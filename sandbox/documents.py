"""Persistence for the sandbox: one SQLite file under DATA_DIR, one JSON document per resource.

Every document is also held in memory (the data set is small), so lists and filters are plain
Python over dicts, while every write goes through to SQLite first: restart the sandbox and the
content is still there. One lock serialises writes; Flask serves requests on many threads.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

KINDS = ("publications", "tags", "channels", "models", "assets", "persons")


class Store:
    """Thread-safe document store: kind → id → document (insertion order kept)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS documents (kind TEXT NOT NULL, id TEXT NOT NULL, "
                        "seq INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, id))")
        self.docs: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.texts: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}  # copies come from here
        self.seq = 0
        for kind, id_, seq, doc in self.db.execute("SELECT kind, id, seq, doc FROM documents ORDER BY seq"):
            self.docs.setdefault(kind, {})[id_] = json.loads(doc)
            self.texts.setdefault(kind, {})[id_] = doc
            self.seq = max(self.seq, seq)

    def empty(self) -> bool:
        return not any(self.docs.values())

    def get(self, kind: str, id_: str) -> dict[str, Any] | None:
        """A private copy (decoding the stored JSON is several times faster than a deep copy)."""
        with self.lock:
            text = self.texts[kind].get(id_)
        return json.loads(text) if text is not None else None

    def all(self, kind: str) -> list[dict[str, Any]]:
        """A snapshot (private copies), in creation order."""
        with self.lock:
            texts = list(self.texts[kind].values())
        return [json.loads(text) for text in texts]

    def iter_raw(self, kind: str) -> Iterator[dict[str, Any]]:
        """Read-only view for lookups under the caller's `with store.lock`."""
        return iter(list(self.docs[kind].values()))

    def put(self, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            existing = self.db.execute("SELECT seq FROM documents WHERE kind=? AND id=?", (kind, doc["id"])).fetchone()
            if existing:
                seq = existing[0]
            else:
                self.seq += 1
                seq = self.seq
            text = json.dumps(doc)
            self.db.execute("INSERT OR REPLACE INTO documents (kind, id, seq, doc) VALUES (?, ?, ?, ?)",
                            (kind, doc["id"], seq, text))
            self.docs[kind][doc["id"]] = json.loads(text)
            self.texts[kind][doc["id"]] = text
            return doc

    def delete(self, kind: str, id_: str) -> bool:
        with self.lock:
            self.db.execute("DELETE FROM documents WHERE kind=? AND id=?", (kind, id_))
            self.texts[kind].pop(id_, None)
            return self.docs[kind].pop(id_, None) is not None

    def clear(self) -> None:
        with self.lock:
            self.db.execute("DELETE FROM documents")
            self.docs = {kind: {} for kind in KINDS}
            self.texts = {kind: {} for kind in KINDS}
            self.seq = 0

    def close(self) -> None:
        with self.lock:
            self.db.close()

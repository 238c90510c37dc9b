"""The history's compact form: JSON deflated against a preset dictionary, when that pays.

A trace field is a few hundred bytes of JSON (an envelope, a run's record), too short for
plain zlib to find much to repeat; most of its bytes are key names and values every event
shares (`"created_on":`, `"channel":{"id":`, `"status":200`). Deflate with a preset dictionary
of those fragments (zlib's `zdict`) starts with them already "seen", roughly halving what is
stored. A packed value is MARK + raw deflate; JSON text never starts with that byte, so stored
values of either form (and those written before this module) read back alike.

The dictionary is part of the stored format: never edit DICTIONARY_V1; add a new one with its
own mark and keep reading the old.
"""
from __future__ import annotations

import json
import zlib
from typing import Any

MARK = b"\x01"  # dictionary v1; JSON starts with one of { [ " - 0-9 t f n or whitespace
_ENVELOPE = (
    '"tags":null,"element":null,"slug":null,"author":null,"duration":null,"body":null,"status":null,'
    '"username":null,"screen_name":null,"profile_pic":null,"picture":null,"type":"site",'
    '"share_construct_url":null,"preview_construct_url":null,"share_url":null},'
    '"replaceable":true,"reference_id":"","started_on":"","ended_on":"","note":null,"custom":{"playedon":'
    '"label":"Video","label":"Audio","label":"Photo","label":"Cover","label":"Post","label":"Track",'
    '"label":"Publication","label":"Channel","label":"Timeline","label":"Show",'
    '"event":"asset.created","event":"asset.changed","event":"container.changed",'
    '"event":"content_item.changed","event":"content_item.published","event":"content_item.created",'
    '"event":"publication.created","event":"publication.published",'
    '"published_on":"","unpublish_on":null,"publish_on":{"nl-NL":"","en-GB":""},"status":"published",'
    '"artist":"","artist_text":"","channel":{"id":"","created_on":"","changed_on":null,"label":"Channel","name":"",'
    '"performed_by":{"id":"","label":"User"},"dc":"api.eu1.prepr.io",'
    '{"id":"","created_on":1700000000,"event":"publication.changed","payload":{"id":"",'
    '"created_on":"2026-01-01T00:00:00+00:00","changed_on":"2026-01-01T00:00:00+00:00","label":"TrackPlay",'
)
_RUN = (
    '"error":null,"replay_of":null,"redelivered":false,"merged":["'
    '"fetched":{"path":"/content_items/","fields":["tags","title","model"],"missing":[],"status":200},'
    '"evaluation":{"fired":[],"rules":[{"id":"","matched":true,"conditions":[{"path":"","op":"equals",'
    '"result":true,"actual":null,"expected":null}],"reason":"","actions":[]}]},'
    '"planned":[{"method":"PUT","path":"/publications/","body":{"tags":[{"body":""}]},"sent":true}],'
    '"calls":[{"method":"GET","path":"/publications/","status":200,"ms":1.0},'
    '{"method":"PUT","path":"/content_items/","status":200,"ms":1.0}],'
    '"outcome":"no change","outcome":"no rule matched","outcome":"ignored: no enabled rule listens to this event",'
    '"outcome":"done: 1 call(s) sent","outcome":"merged into run ","elapsed_ms":1.0}'
    '{"run_id":"","attempt":1,"event":"content_item.changed",'
)
DICTIONARY_V1 = (_ENVELOPE + _RUN).encode()
WBITS = -15  # raw deflate: no zlib header or checksum (the mark says what it is)


def pack(text: bytes | str) -> bytes:
    """The smaller of `text` and its deflated form (MARK + deflate against the dictionary)."""
    raw = text.encode() if isinstance(text, str) else text
    packer = zlib.compressobj(6, zlib.DEFLATED, WBITS, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_V1)
    packed = MARK + packer.compress(raw) + packer.flush()
    return packed if len(packed) < len(raw) else raw


def unpack(value: bytes) -> bytes:
    """The JSON bytes of a stored value, packed or not."""
    if value[:1] != MARK:
        return value
    unpacker = zlib.decompressobj(WBITS, DICTIONARY_V1)
    return unpacker.decompress(value[1:]) + unpacker.flush()


def dumps(data: Any) -> bytes:
    """JSON (compact separators, nothing dropped), packed when that pays."""
    return pack(json.dumps(data, separators=(",", ":"), default=str))


def loads(value: bytes) -> Any:
    return json.loads(unpack(value))

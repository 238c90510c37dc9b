"""A WSGI fast path for the one request that matters: a plain JSON POST to /webhooks/prepr.

Why: per request, Flask's context push, URL matching, session and response machinery cost
about as much as verifying, validating and building the queue message together. The common
case needs none of it, so it is answered here, by the same Receiver the Flask view uses; Flask
still serves everything else and every unusual request, unchanged:
- another method or path, a content type other than exactly application/json, no plain
  Content-Length (chunked), a body over the limit, or a Flask request hook installed: passed
  through untouched, before anything is read;
- a body shorter than its Content-Length: the bytes read are handed back to Flask, which
  answers as it always did;
- an unexpected error while answering: handed to the Flask view, which raises it inside Flask,
  so it is logged, reported to Sentry and answered 500 exactly as before.
"""
from __future__ import annotations

import io
from typing import Any, Callable, Iterable

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from .receiver import Receiver, render

PATH = "/webhooks/prepr"
DEFERRED = "webhooks.deferred_error"  # environ key: an error for the Flask view to raise
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_STATUS = {code: f"{code} {phrase.upper()}" for code, phrase in HTTP_STATUS_CODES.items()}  # as werkzeug writes them
_JSON_TYPES = ("application/json", "application/json; charset=utf-8", "application/json;charset=utf-8")


def _read(stream: Any, length: int) -> bytes:
    """Exactly `length` bytes, or fewer if the client stopped sending."""
    chunks, size = [], 0
    while size < length:
        chunk = stream.read(length - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class FastPath:
    """Wraps `app.wsgi_app`; install with `app.wsgi_app = FastPath(app, receiver, limit)`."""

    def __init__(self, app: Flask, receiver: Receiver, limit: int) -> None:
        self.app = app
        self.flask: WSGIApp = app.wsgi_app
        self.receiver = receiver
        self.limit = limit

    def _to_flask(self, environ: dict[str, Any], start_response: Callable[..., Any],
                  body: bytes | None = None) -> Iterable[bytes]:
        if body is not None:
            environ["wsgi.input"] = io.BytesIO(body)
        return self.flask(environ, start_response)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH", "")
        if (environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST"
                or environ.get("CONTENT_TYPE") not in _JSON_TYPES or "HTTP_TRANSFER_ENCODING" in environ
                or not (length.isascii() and length.isdigit()) or int(length) > self.limit
                or self.app.before_request_funcs or self.app.after_request_funcs):
            return self.flask(environ, start_response)
        body = _read(environ["wsgi.input"], int(length))
        if len(body) != int(length):
            return self._to_flask(environ, start_response, body)
        try:
            status, payload, headers = self.receiver.answer(body, environ.get("HTTP_PREPR_SIGNATURE"))
        except Exception as exc:  # noqa: BLE001 - re-raised inside Flask, see the module docstring
            environ[DEFERRED] = exc
            return self._to_flask(environ, start_response, body)
        data = render(payload)
        response_headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        if headers:
            response_headers.extend(headers.items())
        start_response(_STATUS[status], response_headers)
        return [data]

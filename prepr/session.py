"""HTTP for the client: one requests.Session, configured as the service needs it.

What requests and urllib3 give: idle connections pooled per origin and reused (keep-alive),
gzip answers decoded, HTTP_PROXY / HTTPS_PROXY / NO_PROXY from the environment (credentials
in the proxy URL, HTTPS through CONNECT), TLS verified against REQUESTS_CA_BUNDLE, separate
connect and read timeouts. What is set here: SSL_CERT_FILE is honoured too (requests reads
only REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE), urllib3 never retries (the worker's policy decides,
from the PreprError), and an answer's body is read up to MAX_BODY.
"""
from __future__ import annotations

import json as jsonlib
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None
MAX_BODY = 64 * 1024 * 1024  # a page of 100 publications is a few MB; a server streaming on is not Prepr
POOL_SIZE = 32  # idle connections kept per origin: one per worker thread is plenty


class NoAnswer(Exception):
    """No (whole) answer: `timeout` tells a timeout from a refused, broken or runaway connection."""

    def __init__(self, kind: str, timeout: bool) -> None:
        super().__init__(kind)
        self.timeout = timeout


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: CaseInsensitiveDict[str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


def make_session() -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=POOL_SIZE, max_retries=urllib3.Retry(0, read=False, redirect=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # REQUESTS_CA_BUNDLE, when set, still takes precedence (requests applies it per call).
    session.verify = os.environ.get("SSL_CERT_FILE") or True
    return session


def exchange(session: requests.Session, method: str, url: str, params: Params, json: Any,
             headers: Mapping[str, str], timeout: float | tuple[float, float]) -> Answer:
    """One call, its body read whole (at most MAX_BODY); NoAnswer for anything short of an answer."""
    try:
        with session.request(method, url, params=params, json=json, headers=headers, timeout=timeout,
                             stream=True, allow_redirects=False) as response:
            body = bytearray()
            for chunk in response.iter_content(1 << 16):
                body += chunk
                if len(body) > MAX_BODY:
                    raise NoAnswer(f"answer larger than {MAX_BODY} bytes", timeout=False)
            return Answer(response.status_code, response.reason or "", response.headers, bytes(body))
    except requests.RequestException as exc:
        cause = _cause(exc)
        # A timeout while the body streams in reaches us as a ConnectionError around ReadTimeoutError.
        timeout = isinstance(exc, requests.Timeout) or isinstance(cause, urllib3.exceptions.ReadTimeoutError)
        raise NoAnswer(f"{type(cause).__name__}: {cause}"[:200], timeout=timeout) from None


def _cause(exc: BaseException) -> BaseException:
    """The innermost reason: urllib3 wraps it in MaxRetryError even when no retry was made."""
    while True:
        inner = getattr(exc, "reason", None) or (exc.args[0] if exc.args and isinstance(exc.args[0], BaseException)
                                                 else None)
        if not isinstance(inner, BaseException) or inner is exc:
            return exc
        exc = inner

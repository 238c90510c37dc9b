"""The hands: Prepr's REST and tracking APIs — client, filter encoding, rate limit, errors.

Knows nothing of the service around it; everything is passed in.
"""
from .client import CallRecord, PreprClient
from .errors import (PreprClientError, PreprConnectionError, PreprError, PreprHTTPError, PreprNotFound,
                     PreprRateLimited, PreprServerError)
from .filters import UnsupportedFilter, encode_filter
from .ratelimit import RateLimiter

__all__ = ["PreprClient", "CallRecord", "RateLimiter", "encode_filter", "UnsupportedFilter", "PreprError",
           "PreprHTTPError", "PreprRateLimited", "PreprServerError", "PreprNotFound", "PreprClientError",
           "PreprConnectionError"]

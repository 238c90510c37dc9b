"""The two REST dialects Prepr speaks (SPEC §9), and how to tell which one an environment speaks.

`publications` is the API of the seed documents: `/publications`, partial PUTs, three bulk
endpoints, `/persons`. `content_items` is today's Mutation API: `/content_items`, a PUT that
must name `locales` and replaces each locale it names, publish/unpublish as PATCHes, no bulk
endpoints, customers on their own host. The rest of the client asks a Dialect, never a name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import PreprClientError, PreprError, PreprNotFound

if TYPE_CHECKING:
    from .client import PreprClient

AUTO = "auto"


@dataclass(frozen=True)
class Dialect:
    name: str
    items: str  # the item collection's path
    label: str  # what Prepr calls an item in its answers
    bulk: bool  # /publications/bulk/{put,delete,webhooks} exist
    full_locale_put: bool  # a PUT replaces each locale it names (send complete content)
    persons: str  # the person collection's path, on `customers_host` or the API
    customers_host: bool  # persons are customers, served from PREPR_CUSTOMERS_URL

    def __str__(self) -> str:
        return self.name


PUBLICATIONS = Dialect("publications", "/publications", "Publication", bulk=True, full_locale_put=False,
                       persons="/persons", customers_host=False)
CONTENT_ITEMS = Dialect("content_items", "/content_items", "ContentItem", bulk=False, full_locale_put=True,
                        persons="/customers", customers_host=True)
DIALECTS: dict[str, Dialect] = {d.name: d for d in (PUBLICATIONS, CONTENT_ITEMS)}
ITEM_LABELS = frozenset(d.label for d in DIALECTS.values())


class Unsupported(PreprClientError):
    """What the environment's dialect has no equivalent for (never retried)."""

    def __init__(self, what: str, dialect: Dialect) -> None:
        super().__init__(f"{what} has no equivalent in the {dialect.name} dialect of Prepr's API "
                         f"(PREPR_API={dialect.name})", status=None, retryable=False)


def detect(client: PreprClient) -> Dialect:
    """One call: `GET /content_items?limit=1&fields=id` answering 2xx is today's API, 404 the seeds'.

    401/403 (a token problem) and every other failure raise: they say nothing of the dialect."""
    try:
        client.request("GET", CONTENT_ITEMS.items, params=[("limit", 1), ("fields", "id")])
    except PreprNotFound:
        return PUBLICATIONS
    except PreprError:
        raise
    return CONTENT_ITEMS

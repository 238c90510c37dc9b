"""Demo content, deterministic (stable ids and timestamps), and the loader for `--seed FILE`.

A seed is JSON: `{"models": [...], "channels": [...], "tags": [...], "assets": [...],
"persons": [...], "publications": [...]}`. Publications use the API's write shape (model by
name, tags by body, channels by slug) plus optional `id`, `created_on`, `changed_on`,
`created_by` (a person id) and `status`. Models, channels and persons missing from a seed file
are taken from the demo set, so a seed of publications alone works; an empty list means none
(an environment without channels, as most created today are).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .content import apply, new_id, new_publication, tag_doc
from .documents import Store

BASE = datetime(2024, 3, 4, 8, 0, tzinfo=timezone.utc)


def _stamp(hours: float) -> str:
    return (BASE + timedelta(hours=hours)).isoformat()


MODELS = [{"id": new_id("model", name), "label": "Model", "body": name, "created_on": _stamp(-900)}
          for name in ("Article", "News", "Recipe")]
CHANNELS = [{"id": new_id("channel", slug), "label": "Channel", "slug": slug, "name": name, "body": name,
             "type": kind, "created_on": _stamp(-800)}
            for slug, name, kind in (("web", "Website", "site"), ("app", "Mobile app", "app"),
                                     ("newsletter", "Newsletter", "mailing"))]
PERSONS = [{"id": new_id("person", email), "label": "Person", "full_name": name, "email": email,
            "first_name": name.split()[0], "last_name": name.split()[-1], "created_on": _stamp(-700)}
           for name, email in (("Emma de Vries", "emma@example.com"), ("Liam Jansen", "liam@example.com"),
                               ("Sophie Bakker", "sophie@example.com"), ("Noah Smit", "noah@example.com"))]
TAGS = ["sport", "politics", "economy", "technology", "culture", "food", "vegetarian", "travel",
        "health", "no-automation"]
ASSETS = [{"id": new_id("asset", name), "label": "Photo", "name": name, "body": caption, "author": "Newsroom",
           "created_on": _stamp(-600), "changed_on": _stamp(-600), "status": None, "replaceable": True,
           "cdn_files": {"items": [{"id": new_id("file", name), "label": "CdnFile", "url": f"https://cdn.example/{name}.jpg"}]}}
          for name, caption in (("stadium", "A full stadium at kick-off"), ("court", "Centre court"),
                                ("kitchen", "A home kitchen"), ("parliament", "The parliament building"),
                                ("bike", "Cyclists in the rain"), ("laptop", "Laptop on a desk"))]

# (model, {locale: (title, intro, content)}, tags, channels, status, author index, cover)
ARTICLES: list[tuple[str, dict[str, tuple[str, str, str]], list[str], list[str], str, int, str | None]] = [
    ("Article", {"en-GB": ("Late winner sends City top of the league",
                           "A stoppage-time header settled a tense football derby.",
                           "<p>The Premier League leaders needed a late goal to see off their rivals in a derby "
                           "that had everything. The soccer on show was scrappy but the finish was superb.</p>")},
     [], ["web", "app"], "published", 0, "stadium"),
    ("News", {"en-GB": ("Wimbledon seeds announced", "The draw for the grass-court season is out.",
                        "<p>The tennis calendar turns to grass as Wimbledon names its top seeds.</p>"),
              "nl-NL": ("Wimbledon maakt geplaatste spelers bekend", "De loting voor het graseizoen is bekend.",
                        "<p>Het tennisseizoen gaat naar het gras nu Wimbledon de reekshoofden noemt.</p>")},
     ["sport"], ["web"], "published", 1, "court"),
    ("Article", {"nl-NL": ("Ajax wint de klassieker", "Een doelpunt in de slotfase besliste het duel.",
                           "<p>Het voetbal in de Eredivisie was zondag spannend tot de laatste minuut.</p>")},
     [], ["web", "app"], "published", 2, "stadium"),
    ("Recipe", {"en-GB": ("Mushroom risotto for a weeknight", "Creamy, quick and vegetarian.",
                          "<p>Soften an onion, toast the rice, add stock a ladle at a time and finish with parmesan.</p>")},
     ["food", "vegetarian"], ["web", "newsletter"], "published", 3, "kitchen"),
    ("News", {"en-GB": ("Parliament passes the budget", "A narrow majority backed the plan.",
                        "<p>After a long debate the budget passed by four votes.</p>")},
     ["politics", "economy"], ["web"], "published", 0, "parliament"),
    ("Article", {"en-GB": ("Tour stage ends in a bunch sprint", "Cycling's fast men had their day.",
                           "<p>The peloton caught the break with two kilometres to go.</p>")},
     ["sport"], ["app"], "published", 1, "bike"),
    ("Article", {"en-GB": ("Why the new phones are so expensive", "Chips, screens and margins.",
                           "<p>Technology analysts point to the cost of components.</p>")},
     ["technology"], ["web", "newsletter"], "draft", 2, "laptop"),
    ("News", {"nl-NL": ("Oranje klaar voor het EK", "De bondscoach maakt zijn selectie bekend.",
                        "<p>Het Nederlands elftal begint het voetbaltoernooi met een oefenduel.</p>")},
     [], ["web"], "published", 3, None),
    ("Recipe", {"nl-NL": ("Snelle erwtensoep", "Een winterklassieker in een uur.",
                          "<p>Kook de spliterwten met prei, selderij en wortel tot een dikke soep.</p>")},
     ["food"], ["newsletter"], "published", 0, "kitchen"),
    ("Article", {"en-GB": ("Young striker signs first professional contract",
                           "The academy graduate has been tipped for the first team.",
                           "<p>The club confirmed the football prodigy will stay until 2027.</p>"),
                 "nl-NL": ("Jonge spits tekent eerste profcontract", "De jeugdspeler is een groot talent.",
                           "<p>De club bevestigde dat het voetbaltalent tot 2027 blijft.</p>")},
     ["sport"], ["web", "app"], "review", 1, "stadium"),
    ("News", {"en-GB": ("Museum reopens after renovation", "Three years of work on the old wing.",
                        "<p>Culture lovers queued from dawn to see the restored galleries.</p>")},
     ["culture"], ["web"], "published", 2, None),
    ("Article", {"en-GB": ("Five quiet islands for a spring break", "Beaches without the crowds.",
                           "<p>Travel writers pick their favourite islands off the beaten track.</p>")},
     ["travel"], ["web", "newsletter"], "published", 3, None),
    ("News", {"en-GB": ("Doubles pair reach the final", "A tie-break thriller on centre court.",
                        "<p>The tennis pair saved three match points before winning the tie-break.</p>")},
     [], ["app"], "published", 0, "court"),
    ("Recipe", {"en-GB": ("Lemon drizzle cake", "The bake sale favourite.",
                          "<p>Beat butter and sugar, fold in flour and zest, drizzle while warm.</p>"),
                "nl-NL": ("Citroencake", "De favoriet van elke bakwedstrijd.",
                          "<p>Klop boter en suiker, spatel bloem en rasp erdoor.</p>")},
     ["food", "vegetarian"], ["web"], "published", 1, "kitchen"),
    ("Article", {"en-GB": ("Coach sacked after cup exit", "The board acted within hours.",
                           "<p>A shock defeat ended the manager's football tenure.</p>")},
     ["no-automation"], ["web"], "published", 2, "stadium"),
    ("News", {"nl-NL": ("Kabinet presenteert nieuwe plannen", "Meer geld voor zorg en onderwijs.",
                        "<p>De minister lichtte de plannen toe in de Tweede Kamer.</p>")},
     ["politics"], ["web"], "published", 3, "parliament"),
    ("Article", {"en-GB": ("How to start running at forty", "A gentle plan for beginners.",
                           "<p>Health experts recommend run-walk intervals three times a week.</p>")},
     ["health"], ["web", "app"], "published", 0, None),
    ("News", {"en-GB": ("Open-source project reaches version two", "A rewrite two years in the making.",
                        "<p>The technology community welcomed faster builds.</p>")},
     ["technology"], ["web"], "draft", 1, "laptop"),
    ("Article", {"nl-NL": ("Tennisster wint haar eerste grandslam", "Een historische dag in Parijs.",
                           "<p>Ze won de finale van Roland Garros in drie sets.</p>")},
     [], ["web", "app"], "published", 2, "court"),
    ("Recipe", {"en-GB": ("Spicy chickpea curry", "Ready in thirty minutes.",
                          "<p>Fry garlic, ginger and spices, add tomatoes and chickpeas, simmer.</p>")},
     ["food", "vegetarian"], ["newsletter"], "published", 3, "kitchen"),
    ("News", {"en-GB": ("Soccer fans protest ticket prices", "Supporters marched to the ground.",
                        "<p>Fans say a season ticket now costs twice what it did.</p>")},
     [], ["web"], "published", 0, "stadium"),
    ("Article", {"en-GB": ("Night trains are back", "Sleepers link five capitals again.",
                           "<p>Travel by rail across Europe is booming.</p>"),
                 "nl-NL": ("De nachttrein is terug", "Slaaptreinen verbinden weer vijf hoofdsteden.",
                           "<p>Reizen per trein door Europa is populair.</p>")},
     ["travel"], ["web", "newsletter"], "published", 1, None),
    ("News", {"en-GB": ("Central bank holds rates", "Inflation is easing, slowly.",
                        "<p>The economy grew by 0.2 percent in the last quarter.</p>")},
     ["economy"], ["web", "app"], "published", 2, None),
    ("Article", {"en-GB": ("The groundsman who keeps the pitch perfect", "Behind the scenes at the stadium.",
                           "<p>Long before kick-off, the football pitch gets a careful trim.</p>")},
     [], ["web"], "draft", 3, "stadium"),
    ("Recipe", {"nl-NL": ("Stamppot boerenkool", "Hollandse pot voor koude dagen.",
                          "<p>Stamp aardappels met boerenkool en serveer met rookworst.</p>")},
     ["food"], ["web"], "published", 0, "kitchen"),
    ("News", {"en-GB": ("Festival line-up revealed", "Headliners from four continents.",
                        "<p>Culture fans can expect three days of music and film.</p>")},
     ["culture"], ["app", "newsletter"], "published", 1, None),
    ("Article", {"en-GB": ("A rising star of women's tennis", "Seventeen and already in the top fifty.",
                           "<p>Her serve is the fastest on the tour this season.</p>")},
     ["sport"], ["web", "app"], "published", 2, "court"),
    ("News", {"nl-NL": ("Wielrenner wint etappe in de Alpen", "Een solo van veertig kilometer.",
                        "<p>Het wielrennen kende een historische dag.</p>")},
     ["sport"], ["app"], "published", 3, "bike"),
    ("Article", {"en-GB": ("Working from home, four years on", "What stuck and what did not.",
                           "<p>Offices are busier on Tuesdays and Thursdays.</p>")},
     ["economy"], ["web"], "published", 0, "laptop"),
    ("Recipe", {"en-GB": ("Classic Sunday roast", "With all the trimmings.",
                          "<p>Roast the beef, rest it, and make the gravy from the pan juices.</p>")},
     ["food"], ["web", "newsletter"], "review", 1, "kitchen"),
    ("News", {"en-GB": ("Transfer window closes with record spending", "Clubs splashed out on deadline day.",
                        "<p>Premier League clubs spent more than ever on football transfers.</p>")},
     [], ["web", "app"], "published", 2, "stadium"),
    ("Article", {"nl-NL": ("Zo blijf je fit in de winter", "Tips van een fysiotherapeut.",
                           "<p>Gezondheid begint met elke dag een half uur bewegen.</p>")},
     ["health"], ["web"], "published", 3, None),
]


def demo() -> dict[str, Any]:
    """The demo seed as a seed document (the same format `--seed FILE` reads)."""
    pubs = []
    for n, (model, locales, tags, channels, status, author, cover) in enumerate(ARTICLES):
        items = {}
        for locale, (title, intro, content) in locales.items():
            fields: dict[str, Any] = {"title": {"body": title}, "intro": {"body": intro},
                                      "content": {"body": content}, "tags": {"items": [{"body": t} for t in tags]}}
            if cover:
                fields["cover"] = {"items": [{"id": new_id("asset", cover)}]}
            items[locale] = fields
        stamp = _stamp(n * 7)
        pubs.append({"id": new_id("publication", str(n)), "model": {"body": model}, "locales": list(locales),
                     "items": items, "channels": [{"slug": c} for c in channels], "status": status,
                     "created_on": stamp, "changed_on": _stamp(n * 7 + 2),
                     "publish_on": {loc: stamp for loc in locales} if status == "published" else {},
                     "created_by": PERSONS[author]["id"]})
    return {"models": MODELS, "channels": CHANNELS, "persons": PERSONS, "assets": ASSETS,
            "tags": [tag_doc(t, new_id("tag", t), _stamp(-500)) for t in TAGS], "publications": pubs}


def load(store: Store, seed: dict[str, Any], api_user: dict[str, Any]) -> int:
    """Replace the store's content with `seed`; return the number of publications loaded."""
    defaults = demo()
    store.clear()
    for kind in ("models", "channels", "persons", "assets", "tags"):
        given = seed.get(kind)
        for doc in (given if given is not None else defaults.get(kind)) or []:
            doc = dict(doc)
            doc.setdefault("id", new_id())
            if kind == "tags" and "slug" not in doc:
                doc = tag_doc(doc["body"], doc["id"], doc.get("created_on"))
            store.put(kind, doc)
    if store.get("persons", api_user["id"]) is None:
        store.put("persons", api_user)
    count = 0
    for body in seed.get("publications") or []:
        author = store.get("persons", body.get("created_by") or api_user["id"]) or api_user
        person = {k: author[k] for k in ("id", "label", "full_name", "email") if k in author}
        doc = new_publication(person, body.get("created_on"), body.get("id"))
        write = {k: v for k, v in body.items() if k not in ("id", "created_on", "changed_on", "created_by")}
        doc = apply(store, doc, write, creating=True)
        doc["changed_on"] = body.get("changed_on") or doc["created_on"]
        store.put("publications", doc)
        count += 1
    return count


def load_file(store: Store, path: str | Path, api_user: dict[str, Any]) -> int:
    return load(store, json.loads(Path(path).read_text()), api_user)

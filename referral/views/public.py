"""Pages a patient sees: the search form with results, and a practitioner's listing."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from referral.db import get_session, read_session
from referral.errors import InvalidInput
from referral.listings import DAY_NAMES, DAYS, public_listing
from referral.models import Condition, HealthFund, Modality, Practitioner
from referral.query import YES, SearchQuery, parse_search, run_search, search_back
from referral.routing import MAX_ID
from referral.search import listed_languages

#: the views of the results a visitor may choose (``view=``); without one, a phone shows the
#: list and a wider screen the list with the map beside it (map.js decides)
VIEWS = ("list", "map")
#: yes/no filters, as their chips read
FLAG_WORDS = {
    "accepting": "Accepting new patients",
    "home_visits": "Visits me at home",
    "telehealth": "Telehealth",
}
#: what a changed filter starts again from: its first page (the view is kept)
PAGING = ("page",)


@dataclass(frozen=True)
class Chip:
    """An active filter as the results page shows it: what it is, and the same search
    without it."""

    name: str
    label: str
    href: str


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "index", index)
    bp.add_url_rule("/practitioners/<rowid:practitioner_id>", "practitioner", practitioner)
    bp.add_app_template_global(current_search, "referral_current_search")
    bp.add_app_template_global(back_to_search, "referral_back_to_search")
    bp.add_app_template_global(accepting_search, "referral_accepting_search")
    bp.add_app_template_global(opening_hours, "referral_opening_hours")


def current_search() -> str | None:
    """On the results page: the search, for its listings' ``back=`` parameter."""
    return search_back(request.query_string) or None


def back_to_search(back: bool = False) -> str | None:
    """On a listing (or its form's pages): the search it was opened from.

    ``back_to_search()`` is the URL of that search page; ``back_to_search(back=True)`` the
    ``back`` value to pass on (``None`` when there is none), e.g. in the form's action.
    """
    query = search_back(request.args.get("back"))
    if back:
        return query or None
    return url_for("referral.index") + (f"?{query}" if query else "")


def accepting_search(practitioner: Practitioner) -> str:
    """From a listing of someone not taking new patients: the search the visitor came from,
    or one near this practitioner for the same kind of care, kept to those who are."""
    came_from = search_back(request.args.get("back"))
    if came_from:
        pairs = _pairs(MultiDict(parse_qsl(came_from)))
        pairs = [(k, v) for k, v in pairs if k not in ("accepting", "page")]
    else:
        place = next((loc.postcode or loc.suburb for loc in practitioner.locations), None)
        pairs = [("postcode", place)] if place else []
        pairs += [("modality", m.slug) for m in practitioner.modalities]
    return url_for("referral.index") + "?" + urlencode([*pairs, ("accepting", "1")])


def opening_hours(hours: Mapping[str, list[list[str]]] | None) -> list[tuple[str, str]]:
    """A location's stored hours as a patient reads them, days with the same hours together:
    ``[("Monday to Friday", "9 am to 5 pm"), ("Saturday", "9 am to 12:30 pm"), ("Sunday",
    "Closed")]``. No hours stated gives ``[]`` (the page then says nothing about them)."""
    if not hours:
        return []
    each_day = [
        (day, ", ".join(f"{_clock(a)} to {_clock(b)}" for a, b in hours.get(day) or ()))
        for day in DAYS
    ]
    lines = []
    for text, group in groupby(each_day, key=lambda pair: pair[1]):
        days = [day for day, _ in group]
        lines.append((_days(days[0], days[-1]), text or "Closed"))
    return lines


def _days(first: str, last: str) -> str:
    if first == last:
        return DAY_NAMES[first]
    joiner = " and " if DAYS.index(last) - DAYS.index(first) == 1 else " to "
    return f"{DAY_NAMES[first]}{joiner}{DAY_NAMES[last]}"


def _clock(hhmm: str) -> str:
    """``"13:30"`` -> ``"1:30 pm"``, ``"09:00"`` -> ``"9 am"``, ``"24:00"`` -> midnight."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    if hour in (0, 24) and minute == 0:
        return "midnight"
    if hour == 12 and minute == 0:
        return "noon"
    shown = hour % 12 or 12
    return f"{shown}{f':{minute:02d}' if minute else ''} {'am' if hour % 24 < 12 else 'pm'}"


def index() -> tuple[str, int] | str:
    session = read_session()
    context: dict[str, Any] = {
        "modalities": session.scalars(select(Modality).order_by(Modality.name)).all(),
        "conditions": session.scalars(select(Condition).order_by(Condition.name)).all(),
        "funds": session.scalars(select(HealthFund).order_by(HealthFund.name)).all(),
        "languages": listed_languages(session),
        "args": request.args,
        "results": None,
        "error": None,
        "view": request.args.get("view") if request.args.get("view") in VIEWS else "",
    }
    names = _names(context)
    context["chips"] = active_filters(request.args, names, url_for("referral.index"))
    context["filter_count"] = sum(1 for chip in context["chips"] if chip.name != "condition")
    if not any(request.args.get(k) for k in ("postcode", "lat", "lon")):
        return render_template("referral/search.html", **context)
    try:
        query = parse_search(session, request.args, current_app.config)
    except InvalidInput as exc:
        context["error"] = exc.message
        context["suggestions"] = [
            (label, _search_for(label)) for label in getattr(exc, "suggestions", ())
        ]
        return render_template("referral/search.html", **context), exc.status
    context["query"] = query
    context["search_title"] = search_title(query, names)
    context["map_data"] = _map_data()
    if query.point.alternatives:
        # "Newtown" is in three states: ask, most likely first, before searching any
        places = [query.point.label] + [a.label for a in query.point.alternatives]
        context["choices"] = [(label, _search_for(label)) for label in places]
        context["asked"] = query.postcode.strip()
        return render_template("referral/search.html", **context)
    try:
        context["results"] = run_search(session, query, current_app.config)
    except InvalidInput as exc:  # the search ran past its time limit
        context["error"] = exc.message
        return render_template("referral/search.html", **context), exc.status
    return render_template("referral/search.html", **context)


def _names(context: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """slug (or language code) -> name, per filter, from the form's choices."""
    return {
        "modality": {m.slug: m.name for m in context["modalities"]},
        "condition": {c.slug: c.name for c in context["conditions"]},
        "fund": {f.slug: f.name for f in context["funds"]},
        "language": {lang["code"]: lang["name"] for lang in context["languages"]},
    }


def _pairs(args: Any) -> list[tuple[str, str]]:
    """The query's parameters, one pair per modality (``modality=a,b`` is two)."""
    items: Iterable[tuple[str, str]] = (
        args.items(multi=True) if hasattr(args, "getlist") else args.items()
    )
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        if name == "modality":
            pairs.extend((name, part.strip()) for part in value.split(",") if part.strip())
        elif value:
            pairs.append((name, value))
    return pairs


def active_filters(
    args: Any, names: Mapping[str, Mapping[str, str]], search_url: str
) -> list[Chip]:
    """The filters a search has, in the form's order, each with the link that removes it
    (the same search, back on its first page). Only the values the form offers make chips:
    a value it does not know is an error the page explains."""
    pairs = _pairs(args)
    chips: list[Chip] = []

    def chip(name: str, value: str, label: str) -> None:
        kept = [(k, v) for k, v in pairs if (k, v) != (name, value) and k not in PAGING]
        chips.append(Chip(name, label, f"{search_url}?{urlencode(kept)}"))

    for name, value in pairs:
        if name == "condition" and value in names["condition"]:
            chip(name, value, names["condition"][value])
    for name, value in pairs:
        if name == "radius_km" and _is_number(value):
            chip(name, value, f"Within {value.strip()} km")
    for name, value in pairs:
        if name == "modality" and value in names["modality"]:
            chip(name, value, names["modality"][value])
    for name, value in pairs:
        if name == "fund" and value in names["fund"]:
            chip(name, value, f"Rebates from {names['fund'][value]}")
        elif name == "language":
            spoken = names["language"].get(value) or next(
                (n for n in names["language"].values() if n.casefold() == value.casefold()), None
            )
            if spoken:
                chip(name, value, f"Speaks {spoken}")
    for name, value in pairs:
        if name in FLAG_WORDS and value.strip().lower() in YES:
            chip(name, value, FLAG_WORDS[name])
    return chips


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def search_title(query: SearchQuery, names: Mapping[str, Mapping[str, str]]) -> str:
    """What the search is, as the page's title says it: ``Physiotherapy near Sydney NSW
    2000``, ``Low back pain near Parramatta NSW 2150``, ``Osteopathy for sciatica near ...``."""
    filters = query.filters
    kinds = _joined([names["modality"].get(m, m) for m in filters.modalities])
    condition = names["condition"].get(filters.condition or "", filters.condition or "")
    if kinds and condition:
        subject = f"{kinds} for {condition[:1].lower()}{condition[1:]}"
    else:
        subject = kinds or condition or "Practitioners"
    return f"{subject} near {query.point.label}"


def _joined(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    rest = ", ".join(w[:1].lower() + w[1:] for w in words[1:-1])
    last = words[-1][:1].lower() + words[-1][1:]
    return f"{words[0]}{', ' + rest if rest else ''} or {last}"


def _map_data() -> dict[str, Any]:
    """What map.js needs to put every result of the search on the map, not just the page's:
    the API search with the same filters (paged at the largest page size, up to the counted
    total, ``REFERRAL_MAX_TOTAL``), and how to link a marker to its listing."""
    config = current_app.config
    searched = MultiDict(parse_qsl(search_back(request.query_string)))
    kept = [(k, v) for k, v in _pairs(searched) if k not in ("page", "per_page", "view")]
    listing = url_for(
        "referral.practitioner", practitioner_id=MAX_ID, back=current_search() or None
    )
    return {
        "api": url_for("referral.api.practitioners") + "?" + urlencode(kept),
        "per_page": int(config["REFERRAL_MAX_PER_PAGE"]),
        "most": int(config["REFERRAL_MAX_TOTAL"]),
        "listing": listing,
        "marker": str(MAX_ID),
    }


def _search_for(label: str) -> str:
    """This search again with ``label`` as the place (filters kept)."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("postcode", "page")]
    return url_for("referral.index") + "?" + urlencode([("postcode", label), *args])


def practitioner(practitioner_id: int) -> Response:
    found = public_listing(get_session(), practitioner_id)
    if found is None:
        abort(404)
    response = make_response(render_template("referral/practitioner.html", practitioner=found))
    # the page holds a one-off referral form (its idempotency key and tokens): a shared
    # cache handing it to the next visitor would make their request look like a resend
    response.headers["Cache-Control"] = "private, no-store"
    return response

"""Reading a search request (page or API) into checked values, with clear messages."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from referral.errors import InvalidInput
from referral.geo import LocationNotFound, Point
from referral.geo.geocode import GeocoderLimitReached, LocationServiceUnavailable, locate
from referral.geo.postcodes import MAX_QUERY_LENGTH
from referral.languages import code_for
from referral.models import Condition, HealthFund
from referral.search import Filters, Results, modality_ids, search

#: what a listing's "Back to search" link carries back to the search page (``?back=``):
#: the place, every filter and the page, so coming back finds the same results
SEARCH_PARAMS = (
    "postcode",
    "country",
    "lat",
    "lon",
    "radius_km",
    "modality",
    "condition",
    "fund",
    "accepting",
    "home_visits",
    "telehealth",
    "language",
    "view",
    "page",
    "per_page",
)
BACK_MAX_LENGTH = 1000

#: what each parameter is called in a message a visitor reads (never the parameter's name)
FIELD_WORDS = {
    "postcode": "postcode or suburb",
    "country": "country",
    "lat": "location",
    "lon": "location",
    "radius_km": "distance",
    "modality": "type of practitioner",
    "condition": "condition",
    "fund": "health fund",
    "accepting": "“accepting new patients”",
    "home_visits": "“visits me at home”",
    "telehealth": "“telehealth”",
    "language": "language",
    "page": "page",
    "per_page": "number of results per page",
    # the HSDS API's own parameters (referral.hsds.params)
    "minimal": "“minimal”",
    "full": "“full”",
    "full_service": "“full_service”",
    "top_only": "“top_only”",
    "proximity": "distance",
    "q": "suburb or postcode",
    "limit": "number of suggestions",
}
#: what a visitor is asked for when a number is out of range; ``{low}``/``{high}`` filled in
RANGE_WORDS = {
    "radius_km": "Choose a distance between {low} and {high} km.",
    "lat": "We could not read your location. Please try again, or type your postcode or suburb.",
    "lon": "We could not read your location. Please try again, or type your postcode or suburb.",
    "page": "Choose a results page from {low} to {high}.",
    "per_page": "Choose from {low} to {high} results per page.",
    "limit": "Ask for from {low} to {high} suggestions.",
    "proximity": "Choose a distance between {low} and {high} metres.",
}


@dataclass(frozen=True)
class SearchQuery:
    point: Point
    radius_km: float
    filters: Filters
    page: int
    per_page: int
    postcode: str = ""
    country: str = ""


def _number(args: Mapping[str, str], name: str, low: float, high: float) -> float | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidInput(f"invalid_{name}", _out_of_range(name, low, high))
    return value


def _out_of_range(name: str, low: float, high: float) -> str:
    words = RANGE_WORDS.get(
        name, f"Choose a {FIELD_WORDS.get(name, name)} from {{low}} to {{high}}."
    )
    return words.format(low=_figure(low), high=_figure(high))


def _figure(number: float) -> str:
    """A bound as a person writes it: ``1,000,000,000``, ``0.1``."""
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


def _integer(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = (args.get(name) or "").strip()
    if not raw:
        return default
    # ASCII digits only: str.isdigit() accepts "²", and int() refuses 5,000 digits
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise InvalidInput(f"invalid_{name}", _out_of_range(name, low, high))
    return int(raw)


def parse_search(
    session: Session, args: Mapping[str, Any], config: Mapping[str, Any]
) -> SearchQuery:
    """Check every parameter and resolve the location; raises :class:`InvalidInput`."""
    _refuse_control_characters(args)
    max_radius = float(config["REFERRAL_MAX_RADIUS_KM"])
    radius = _number(args, "radius_km", 0.1, max_radius)
    page = _integer(args, "page", 1, 1, 10_000)
    per_page = _integer(
        args, "per_page", int(config["REFERRAL_PER_PAGE"]), 1, int(config["REFERRAL_MAX_PER_PAGE"])
    )

    filters = parse_filters(session, args)

    country = parse_country(args, config)

    lat = _number(args, "lat", -90, 90)
    lon = _number(args, "lon", -180, 180)
    postcode = (args.get("postcode") or "").strip()
    if lat is not None and lon is not None:
        point = Point(lat, lon, "your location", "coordinates")
    elif lat is not None or lon is not None:
        raise InvalidInput("invalid_coordinates", RANGE_WORDS["lat"])
    elif postcode:
        if len(postcode) > MAX_QUERY_LENGTH:
            raise InvalidInput("invalid_postcode", "That postcode or suburb is too long.")
        try:
            point = locate(session, postcode, country, config)
        except LocationServiceUnavailable as exc:
            raise InvalidInput("geocoder_unavailable", str(exc), 503) from None
        except GeocoderLimitReached as exc:
            raise InvalidInput("geocoder_rate_limited", str(exc), 429) from None
        except LocationNotFound as exc:
            raise InvalidInput(
                "location_not_found", str(exc), 404, suggestions=exc.suggestions
            ) from None
    else:
        raise InvalidInput(
            "missing_location", "Enter a postcode or suburb, or share your location."
        )

    return SearchQuery(
        point=point,
        radius_km=radius if radius is not None else float(config["REFERRAL_DEFAULT_RADIUS_KM"]),
        filters=filters,
        page=page,
        per_page=per_page,
        postcode=postcode,
        country=country,
    )


def run_search(session: Session, query: SearchQuery, config: Mapping[str, Any]) -> Results:
    """The search a checked request asks for: one call for the page and the API alike."""
    return search(
        session,
        query.point.lat,
        query.point.lon,
        radius_km=query.radius_km,
        filters=query.filters,
        page=query.page,
        per_page=query.per_page,
        fallback=config["REFERRAL_NEAREST_FALLBACK"],
        with_total=True,  # the page and the API both show it
        max_total=int(config["REFERRAL_MAX_TOTAL"]),
        time_limit_ms=float(config["REFERRAL_SEARCH_TIMEOUT_MS"]) or None,
    )


def parse_country(args: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    country = (args.get("country") or config["REFERRAL_DEFAULT_COUNTRY"]).strip().upper()
    if len(country) != 2 or not (country.isascii() and country.isalpha()):
        raise InvalidInput(
            "invalid_country", "Choose a country by its two-letter code, such as AU."
        )
    return country


def parse_places(args: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[str, str, int]:
    """``(q, country, limit)`` for the place autocomplete; raises :class:`InvalidInput`."""
    _refuse_control_characters(args)
    q = (args.get("q") or "").strip()
    if not q or len(q) > MAX_QUERY_LENGTH:
        raise InvalidInput("invalid_q", "Type the start of a suburb or postcode.")
    most = int(config["REFERRAL_AUTOCOMPLETE_LIMIT"])
    return q, parse_country(args, config), _integer(args, "limit", most, 1, most)


def _refuse_control_characters(args: Mapping[str, Any]) -> None:
    """NUL and other control characters are never meant; PostgreSQL refuses NUL outright."""
    for name in list(args.keys()):
        for value in _getlist(args, name):
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
                field = FIELD_WORDS.get(name, "search")
                raise InvalidInput(
                    "invalid_characters",
                    f"The {field} has a character we cannot read (such as a line break):"
                    " please type it again.",
                )


#: how a yes/no parameter may be written; anything else is an error, not a silent "no"
YES = frozenset({"1", "true", "yes", "on", "y"})
NO = frozenset({"", "0", "false", "no", "off", "n"})
MAX_LANGUAGE_LENGTH = 40


def parse_filters(session: Session, args: Mapping[str, Any]) -> Filters:
    """The filters of a search request; unknown slugs are errors the visitor can fix."""
    modalities = tuple(dict.fromkeys(s for s in _getlist(args, "modality") if s))
    if modalities:
        known = modality_ids(session, modalities)
        unknown = [s for s in modalities if s not in known]
        if unknown:
            raise InvalidInput(
                "unknown_modality",
                f"We don't list a type of practitioner called “{unknown[0][:60]}”:"
                " please choose one from the list.",
            )
    condition = _slug(session, args, "condition", Condition)
    fund = _slug(session, args, "fund", HealthFund)
    language = (args.get("language") or "").strip()
    if len(language) > MAX_LANGUAGE_LENGTH:
        raise InvalidInput("invalid_language", "That language name is too long.")
    code = code_for(language) if language else None
    if language and code is None:
        raise InvalidInput(
            "unknown_language",
            f"We don't know a language called “{language[:40]}”: try its English"
            " name, such as Greek or Cantonese.",
        )
    return Filters(
        modalities=modalities,
        condition=condition,
        fund=fund,
        accepting=_flag(args, "accepting"),
        home_visits=_flag(args, "home_visits"),
        language=code,
        telehealth=_flag(args, "telehealth"),
    )


def _slug(session: Session, args: Mapping[str, Any], name: str, model: Any) -> str | None:
    slug = (args.get(name) or "").strip()
    if not slug:
        return None
    if session.scalar(select(model.id).where(model.slug == slug)) is None:
        raise InvalidInput(
            f"unknown_{name}",
            f"We don't list a {FIELD_WORDS.get(name, name)} called “{slug[:60]}”:"
            " please choose one from the list.",
        )
    return slug


def _flag(args: Mapping[str, Any], name: str) -> bool:
    raw = str(args.get(name) or "").strip().lower()
    if raw in YES:
        return True
    if raw in NO:
        return False
    raise InvalidInput(f"invalid_{name}", f"Choose yes or no for {FIELD_WORDS.get(name, name)}.")


def _getlist(args: Mapping[str, Any], name: str) -> list[str]:
    if hasattr(args, "getlist"):
        values = args.getlist(name)
    else:
        value = args.get(name)
        values = value if isinstance(value, list) else [value] if value else []
    out: list[str] = []
    for v in values:
        out.extend(part.strip() for part in str(v).split(","))
    return out


def search_back(raw: str | bytes | None) -> str:
    """The search a visitor came from, as a query string for our own search page.

    Only search parameters survive (printable, of sane length); anything else is dropped.
    The result is only ever put after the search page's own path, so a crafted ``back``
    can change which search is shown but never where the link goes.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not raw or len(raw) > BACK_MAX_LENGTH:
        return ""
    pairs = [
        (name, value)
        for name, value in parse_qsl(raw)
        if name in SEARCH_PARAMS and value and len(value) <= 200 and value.isprintable()
    ]
    return urlencode(pairs)

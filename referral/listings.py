"""A practitioner keeping their own listing: profile, and locations geocoded on save.

Changes to credentials (accreditation body, membership number) or to where the
practitioner works send a live listing back for checking (:mod:`referral.moderation`).
Every function commits its change or raises :class:`InvalidInput` having changed nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from referral import capacity, moderation
from referral.errors import InvalidInput
from referral.geo import LocationNotFound
from referral.geo.geocode import locate
from referral.geo.postcodes import normalise_postcode
from referral.models import (
    Condition,
    HealthFund,
    Location,
    Modality,
    Practitioner,
    PractitionerFund,
)

CREDENTIAL_FIELDS = ("accreditation_body", "membership_number")
#: fields of a location whose change means the listing is checked again
ADDRESS_FIELDS = ("street", "suburb", "state", "postcode", "country")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = dict(
    zip(
        DAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
#: what turns a name into a link or markup once it is in an email: a scheme (``https://``),
#: ``www.``, a host followed by a path (``evil.example/``), angle brackets
_LINK_OR_MARKUP = re.compile(r"://|\bwww\.|\b(?:[a-z0-9-]+\.)+[a-z]{2,}(?::\d+)?/|[<>]", re.I)
#: bidirectional embeddings, overrides and isolates: they make text read differently
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
NAME_REFUSED = "Please write just the name here, without a web address or the signs < and >."
_INTERVAL = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*[-\u2013]\s*(\d{1,2})(?::(\d{2}))?$")


def _clean(value: Any, limit: int) -> str | None:
    text = str(value or "").strip()
    return text[:limit] or None


def check_website(url: str | None) -> str | None:
    """The one check of a listing's website (the editor and the importer both use it).

    Returns the address to store (``https://`` added when no scheme was typed) or ``None``
    for none; anything that is not an http(s) address with a dotted host, including text
    :func:`urllib.parse.urlsplit` cannot take apart (``http://[oops.example``), raises
    :class:`InvalidInput` ``invalid_website``, never ``ValueError``.
    """
    if not url:
        return None
    if "://" not in url:
        url = "https://" + url
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed "[" or characters that are no host name
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or "." not in parts.netloc
        or " " in url
    ):
        raise InvalidInput(
            "invalid_website", "Enter a website address such as https://example.com."
        )
    return url


def check_phone(phone: str | None, country: str) -> str | None:
    if not phone:
        return None
    try:
        parsed = phonenumbers.parse(phone, country)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        raise InvalidInput("invalid_phone", "Enter a phone number such as 02 9123 4567.")
    return phone


def check_name(text: str | None, *, code: str = "invalid_name") -> str:
    """A person's or a practice's name, stripped; :class:`InvalidInput` (``code``) when it
    holds a web address, markup or control characters.

    The one check for every name that reaches an email or a page: the referral form's
    patient name, the practitioner's and the practice's names at sign-up, in the listing
    editor and in a CSV import. Names go into the site's own emails (the acknowledgement
    greets the patient by name), where a mail client would make a web address in one a
    link: refused, someone can no longer make the site send a stranger a link of their
    choosing. An empty name is returned as ``""``; whether one is required is the caller's.
    """
    name = (text or "").strip()
    if _LINK_OR_MARKUP.search(name) or any(
        unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS for ch in name
    ):
        raise InvalidInput(code, NAME_REFUSED)
    return name


def by_slugs(session: Session, model: type, slugs: list[str], what: str) -> list[Any]:
    """Taxonomy rows for ``slugs``, refusing unknown ones by name."""
    slugs = list(dict.fromkeys(s for s in slugs if s))
    rows = {r.slug: r for r in session.scalars(select(model).where(model.slug.in_(slugs)))}
    unknown = [s for s in slugs if s not in rows]
    if unknown:
        raise InvalidInput(f"unknown_{what}", f"Unknown {what}: {', '.join(unknown)[:100]}.")
    return [rows[s] for s in slugs]


def parse_languages(text: str | None) -> list[str]:
    languages = list(dict.fromkeys(p.strip() for p in (text or "").split(",") if p.strip()))
    if len(languages) > 15 or any(len(lang) > 40 for lang in languages):
        raise InvalidInput("invalid_languages", "List up to 15 languages, separated by commas.")
    return languages


def update_profile(
    session: Session, practitioner: Practitioner, data: Mapping[str, Any], country: str
) -> bool:
    """Apply the profile form; returns whether the listing went back for checking.

    ``data`` holds the form's fields, ``modalities``/``conditions`` as slug lists and
    ``funds`` as ``{fund slug: provider number or None}``; the capacity and booking page
    fields are :func:`referral.capacity.check_settings`'s.
    """
    name = _clean(check_name(data.get("name")), 200)
    if not name:
        raise InvalidInput("missing_name", "Please enter your name.")
    business = check_name(data.get("business_name"), code="invalid_business_name")
    business_name = _clean(business, 200)
    modalities = by_slugs(session, Modality, list(data.get("modalities") or []), "modality")
    conditions = by_slugs(session, Condition, list(data.get("conditions") or []), "condition")
    funds_in = dict(data.get("funds") or {})
    funds = by_slugs(session, HealthFund, list(funds_in), "fund")
    if any(len(str(v or "")) > 40 for v in funds_in.values()):
        raise InvalidInput("invalid_provider_number", "A provider number is at most 40 characters.")
    website = check_website(_clean(data.get("website"), 500))
    phone = check_phone(_clean(data.get("phone"), 40), country)
    languages = parse_languages(data.get("languages"))
    capacity_settings = capacity.check_settings(data)

    credentials = {
        f: _clean(data.get(f), 200 if f == "accreditation_body" else 80) for f in CREDENTIAL_FIELDS
    }
    credentials_changed = any(getattr(practitioner, f) != v for f, v in credentials.items())
    for field, value in credentials.items():
        setattr(practitioner, field, value)
    practitioner.name = name
    practitioner.business_name = business_name
    practitioner.bio = (data.get("bio") or "").strip()[:5000]
    practitioner.phone = phone
    practitioner.website = website
    practitioner.languages = languages
    capacity.apply_settings(session, practitioner, capacity_settings)
    practitioner.telehealth = bool(data.get("telehealth"))
    practitioner.home_visits = bool(data.get("home_visits"))
    practitioner.modalities = modalities
    practitioner.conditions = conditions
    existing = {pf.fund.slug: pf for pf in practitioner.funds}
    practitioner.funds = [
        _fund(existing.get(f.slug), f, _clean(funds_in[f.slug], 40)) for f in funds
    ]
    review = credentials_changed and moderation.back_to_review(practitioner)
    session.commit()
    if review:
        moderation.announce_submitted(practitioner)
    return review


def _fund(
    current: PractitionerFund | None, fund: HealthFund, number: str | None
) -> PractitionerFund:
    if current is None:
        return PractitionerFund(fund=fund, provider_number=number)
    current.provider_number = number
    return current


def parse_opening_hours(texts: Mapping[str, str | None]) -> dict[str, list[list[str]]] | None:
    """``{"mon": "9:00-12:30, 13:30-17"}`` -> ``{"mon": [["09:00", "12:30"], ["13:30", "17:00"]]}``.

    An empty day is closed; no hours at all gives ``None`` (not stated).
    """
    hours: dict[str, list[list[str]]] = {}
    for day in DAYS:
        text = (texts.get(day) or "").strip()
        if not text:
            continue
        intervals = []
        for part in text.split(","):
            match = _INTERVAL.match(part.strip())
            times = _times(match) if match else None
            if times is None:
                raise InvalidInput(
                    "invalid_hours",
                    f"{DAY_NAMES[day]}: write opening hours like 09:00-17:00, "
                    "or leave it empty when closed.",
                )
            intervals.append(times)
        hours[day] = intervals
    return hours or None


def _times(match: re.Match[str]) -> list[str] | None:
    h1, m1, h2, m2 = (int(g) if g else 0 for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 * 60 + m2) <= (h1 * 60 + m1):
        return None
    return [f"{h1:02d}:{m1:02d}", f"{h2:02d}:{m2:02d}"]


def format_opening_hours(hours: Mapping[str, list[list[str]]] | None) -> dict[str, str]:
    """The form's text per day, the inverse of :func:`parse_opening_hours`."""
    hours = hours or {}
    return {day: ", ".join(f"{a}-{b}" for a, b in hours.get(day, [])) for day in DAYS}


def save_location(
    session: Session,
    practitioner: Practitioner,
    location: Location | None,
    data: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Location:
    """Add (``location=None``) or change a location, geocoded from its postcode or suburb."""
    if location is not None and location.practitioner_id != practitioner.id:
        raise InvalidInput("not_found", "No such location.", 404)
    country = (_clean(data.get("country"), 10) or config["REFERRAL_DEFAULT_COUNTRY"]).upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidInput("invalid_country", "Country must be a two-letter code such as AU.")
    postcode = _clean(data.get("postcode"), 20)
    suburb = _clean(data.get("suburb"), 120)
    if not postcode and not suburb:
        raise InvalidInput("missing_location", "Please enter the postcode or suburb.")
    radius = data.get("home_visit_radius_km")
    if radius is not None and not 0 <= float(radius) <= 500:
        raise InvalidInput("invalid_radius", "Home-visit radius must be between 0 and 500 km.")
    hours = parse_opening_hours(data.get("opening_hours") or {})
    values = {
        "name": _clean(data.get("name"), 200),
        "street": _clean(data.get("street"), 200),
        "suburb": suburb,
        "state": _clean(data.get("state"), 60),
        "postcode": normalise_postcode(postcode) if postcode else None,
        "country": country,
    }
    moved = location is None or any(getattr(location, f) != values[f] for f in ADDRESS_FIELDS)
    if moved:
        point = geocode(session, values["postcode"], suburb, country, config)
        values.update(lat=point[0], lon=point[1])
    if location is None:
        location = Location(practitioner=practitioner)
        session.add(location)
    for field, value in values.items():
        setattr(location, field, value)
    location.home_visit_radius_km = float(radius) if radius is not None else None
    location.opening_hours = hours
    review = moved and moderation.back_to_review(practitioner)
    session.commit()
    if review:
        moderation.announce_submitted(practitioner)
    return location


def geocode(
    session: Session,
    postcode: str | None,
    suburb: str | None,
    country: str,
    config: Mapping[str, Any],
) -> tuple[float, float]:
    """Coordinates from the postcode, else the suburb, through the geolocation chain."""
    error: LocationNotFound | None = None
    for text in (postcode, suburb):
        if not text:
            continue
        try:
            point = locate(session, text, country, config)
            return point.lat, point.lon
        except LocationNotFound as exc:
            error = error or exc
    raise InvalidInput("location_not_found", str(error), 400)


def remove_location(session: Session, practitioner: Practitioner, location: Location) -> bool:
    """Remove one of the practitioner's locations; returns whether it went back for checking."""
    if location.practitioner_id != practitioner.id:
        raise InvalidInput("not_found", "No such location.", 404)
    practitioner.locations.remove(location)
    review = moderation.back_to_review(practitioner)
    session.commit()
    if review:
        moderation.announce_submitted(practitioner)
    return review


def own_location(session: Session, practitioner: Practitioner, location_id: int) -> Location | None:
    """The location only if it belongs to this practitioner (else ``None``: a 404)."""
    return session.scalars(
        select(Location).where(
            Location.id == location_id, Location.practitioner_id == practitioner.id
        )
    ).first()


def public_listing(session: Session, practitioner_id: int) -> Practitioner | None:
    """The practitioner the public may see (``active`` only), with what its page shows."""
    return session.scalars(
        select(Practitioner)
        .where(Practitioner.id == practitioner_id, Practitioner.status == "active")
        .options(
            selectinload(Practitioner.locations),
            selectinload(Practitioner.modalities),
            selectinload(Practitioner.conditions),
            selectinload(Practitioner.funds),
        )
    ).first()

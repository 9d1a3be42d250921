"""Postcode and suburb centroids: loading them, and looking up what a visitor typed.

Sources: the Australian gazetteer shipped in this package (``geo/data/AU.txt.gz``: every
GeoNames postal-code row for Australia, CC BY 4.0, rebuilt by
``python -m referral.geo.build_gazetteer``), GeoNames postal-code text files of any
country (tab-separated: country, postal code, place name, admin1 name, admin1 code, admin2
name, admin2 code, admin3 name, admin3 code, latitude, longitude, accuracy), and the
offline centroids of the PyPI package ``countrystatecity-postal-codes`` (ODbL; the
``postcodes`` extra) for other countries. What the rows mean is decided in
:mod:`referral.geo.gazetteer`.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from referral.geo import Alternative, LocationNotFound, Point, gazetteer
from referral.models import Postcode

OFFLINE_SOURCE = "countrystatecity-postal-codes (ODbL 1.0)"
SHIPPED_SOURCE = "GeoNames (CC BY 4.0)"
#: countries whose complete gazetteer ships inside the package
SHIPPED = {"AU": Path(__file__).parent / "data" / "AU.txt.gz"}
MAX_QUERY_LENGTH = 100
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Centroid:
    country: str
    postcode: str
    place: str
    state: str | None
    lat: float
    lon: float
    accuracy: int | None = None


def normalise_postcode(text: str) -> str:
    """Trim, collapse inner spaces and upper-case: ``" sw1a  1aa "`` -> ``"SW1A 1AA"``."""
    return _SPACES.sub(" ", text.strip()).upper()


def place_key(text: str) -> str:
    return _SPACES.sub(" ", text.strip()).lower()


def parse_geonames(stream: IO[str]) -> Iterator[Centroid]:
    """Rows of a GeoNames postal-code file; rows without coordinates are skipped."""
    for row in csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE):
        if len(row) < 11 or not row[9] or not row[10]:
            continue
        try:
            lat, lon = float(row[9]), float(row[10])
        except ValueError:
            continue
        accuracy = row[11].strip() if len(row) > 11 else ""
        code = row[4].strip()
        # "NSW" as Australians write it; a numeric admin1 code ("07") means nothing to people
        state = code if code.isalpha() and len(code) <= 3 else row[3].strip() or code
        yield Centroid(
            country=row[0].strip().upper(),
            postcode=normalise_postcode(row[1]),
            place=row[2].strip(),
            state=state or None,
            lat=lat,
            lon=lon,
            accuracy=int(accuracy) if accuracy.isdigit() else None,
        )


def shipped_centroids(country: str) -> Iterator[Centroid]:
    """The complete gazetteer shipped for ``country`` (``KeyError`` when none is)."""
    with gzip.open(SHIPPED[country.upper()], "rt", encoding="utf-8") as stream:
        yield from parse_geonames(stream)


def default_centroids(country: str) -> tuple[Iterator[Centroid], str]:
    """What ``load-postcodes`` loads with no file: the shipped gazetteer when there is one,
    else ``countrystatecity-postal-codes``; with the source to record."""
    if country.upper() in SHIPPED:
        return shipped_centroids(country), SHIPPED_SOURCE
    return offline_centroids(country), OFFLINE_SOURCE


def offline_centroids(country: str) -> Iterator[Centroid]:
    """Centroids from ``countrystatecity-postal-codes``, installed by the ``postcodes`` extra."""
    try:
        from countrystatecity_postal_codes import get_postcodes_of_country
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "Offline postcodes need the 'postcodes' extra: pip install 'referral[postcodes]', "
            "or pass a GeoNames file."
        ) from exc
    for entry in get_postcodes_of_country(country):
        if entry.latitude is None or entry.longitude is None:
            continue
        yield Centroid(
            country=entry.countryCode.upper(),
            postcode=normalise_postcode(entry.code),
            place=(entry.localityName or entry.code).title(),
            state=entry.stateCode,
            lat=entry.latitude,
            lon=entry.longitude,
        )


def load_centroids(
    session: Session,
    centroids: Iterable[Centroid],
    *,
    source: str,
    country: str | None = None,
    batch_size: int = 5000,
) -> int:
    """Replace the centroids of each country present in ``centroids``; one transaction.

    ``country`` keeps only that country's rows. Returns the number of rows stored.
    """
    rows: dict[tuple[str, str, str], dict] = {}
    for c in centroids:
        if country and c.country != country.upper():
            continue
        rows[(c.country, c.postcode, c.place)] = {
            "country": c.country,
            "postcode": c.postcode,
            "place": c.place,
            "place_key": place_key(c.place),
            "state": c.state,
            "lat": c.lat,
            "lon": c.lon,
            "accuracy": c.accuracy,
            "source": source,
        }
    countries = {key[0] for key in rows}
    try:
        if countries:
            session.execute(delete(Postcode).where(Postcode.country.in_(countries)))
        values = list(rows.values())
        for start in range(0, len(values), batch_size):
            session.execute(insert(Postcode), values[start : start + batch_size])
        session.commit()
    except Exception:
        session.rollback()
        raise
    gazetteer.changed()
    return len(rows)


def load_geonames_text(session: Session, text: str, *, source: str, country: str | None) -> int:
    return load_centroids(
        session, parse_geonames(io.StringIO(text)), source=source, country=country
    )


def checked_query(text: str) -> str:
    """The normalised query, refusing an empty or oversized one with a message for the
    person (before any look-up, local or remote)."""
    query = normalise_postcode(text)
    if not query:
        raise LocationNotFound("Please enter a postcode or suburb.")
    if len(query) > MAX_QUERY_LENGTH:
        raise LocationNotFound("That postcode or suburb is too long.")
    return query


def lookup(session: Session, query: str, country: str, *, home_region: str | None = None) -> Point:
    """Resolve a postcode or place name from the local gazetteer.

    Raises :class:`LocationNotFound` with a message for the person and "Did you mean"
    suggestions; its ``remote`` is ``False`` when no remote geocoder should be asked (a
    postcode-shaped string not in the country's list, or text with no letter or digit).
    """
    text = checked_query(query)
    shown = " ".join(query.split())
    if not gazetteer.has_letter_or_digit(text):
        raise LocationNotFound(f"We could not find the postcode or suburb “{shown}”.", remote=False)
    found = gazetteer.for_country(session, country)
    if found is None:
        raise LocationNotFound(f"We could not find the postcode or suburb “{shown}”.")
    resolved = found.resolve(text, home_region)
    if resolved is not None:
        place = resolved.place
        return Point(
            place.lat,
            place.lon,
            place.label,
            resolved.source,
            alternatives=tuple(_alternative(p) for p in resolved.alternatives),
        )
    raise LocationNotFound(
        f"We could not find the postcode or suburb “{shown}”.",
        suggestions=tuple(p.label for p in found.did_you_mean(text)),
        remote=not found.postcode_shaped(text),
    )


def _alternative(place: gazetteer.Place) -> Alternative:
    return Alternative(place.label, place.postcode, place.state, place.lat, place.lon)


def suggest(session: Session, prefix: str, country: str, limit: int = 10) -> list[gazetteer.Place]:
    """Places matching the start of any word of their name, or their postcode: the search
    box's autocomplete, served from the local gazetteer so typing never calls a remote
    service."""
    found = gazetteer.for_country(session, country)
    if found is None:
        return []
    return found.complete(prefix, limit)

"""Postcode and suburb centroids: loading them, and looking up what a visitor typed.

Two sources: GeoNames postal-code text files (tab-separated: country, postal code, place
name, admin1 name, admin1 code, admin2 name, admin2 code, admin3 name, admin3 code,
latitude, longitude, accuracy), and the offline centroids shipped by the PyPI package
``countrystatecity-postal-codes`` (ODbL; install the ``postcodes`` extra).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from referral.geo import LocationNotFound, Point
from referral.models import Postcode

OFFLINE_SOURCE = "countrystatecity-postal-codes (ODbL 1.0)"
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
        yield Centroid(
            country=row[0].strip().upper(),
            postcode=normalise_postcode(row[1]),
            place=row[2].strip(),
            state=(row[3] or row[4]).strip() or None,
            lat=lat,
            lon=lon,
        )


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


def lookup(session: Session, query: str, country: str) -> Point:
    """Resolve a postcode or suburb name from the local table.

    Several rows for one postcode (suburbs sharing it) give their mean centre.
    Raises :class:`LocationNotFound` with a message for the person.
    """
    text = checked_query(query)
    country = country.upper()
    found = session.execute(
        select(func.avg(Postcode.lat), func.avg(Postcode.lon), func.min(Postcode.place)).where(
            Postcode.country == country, Postcode.postcode == text
        )
    ).one()
    if found[0] is not None:
        return Point(found[0], found[1], f"{text} {found[2]}", "postcode")
    row = session.execute(
        select(Postcode.lat, Postcode.lon, Postcode.place, Postcode.postcode)
        .where(Postcode.country == country, Postcode.place_key == place_key(query))
        .order_by(Postcode.postcode)
        .limit(1)
    ).first()
    if row is not None:
        return Point(row.lat, row.lon, f"{row.place} {row.postcode}", "suburb")
    place, _, code = text.rpartition(" ")
    if place:  # "Surry Hills 2010", as the autocomplete offers it
        row = session.execute(
            select(Postcode.lat, Postcode.lon, Postcode.place, Postcode.postcode).where(
                Postcode.country == country,
                Postcode.postcode == code,
                Postcode.place_key == place_key(place.rstrip(",")),
            )
        ).first()
        if row is not None:
            return Point(row.lat, row.lon, f"{row.place} {row.postcode}", "suburb")
    raise LocationNotFound(f"We could not find the postcode or suburb “{query.strip()}”.")


def suggest(session: Session, prefix: str, country: str, limit: int = 10) -> list[Postcode]:
    """Places whose name or postcode starts with ``prefix``: the search box's autocomplete,
    served from our own table so typing never calls a remote service."""
    text = place_key(prefix)
    if not text:
        return []
    pattern = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return list(
        session.scalars(
            select(Postcode)
            .where(
                Postcode.country == country.upper(),
                Postcode.place_key.like(pattern, escape="\\")
                | Postcode.postcode.like(pattern.upper(), escape="\\"),
            )
            .order_by(Postcode.place_key, Postcode.postcode)
            .limit(limit)
        )
    )

"""Finding the nearest active practitioners: the one search interface.

Candidates come from a bounding box on the location index, then exact great-circle
distance decides the order, so every backend returns the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from referral.geo.distance import bounding_box, great_circle_km
from referral.models import Location, Modality, Practitioner, practitioner_modality


@dataclass(frozen=True)
class Filters:
    modalities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    practitioner: Practitioner
    location: Location
    distance_km: float


@dataclass
class Results:
    hits: list[Hit]
    total: int
    page: int
    per_page: int
    #: the nearest beyond the radius, offered when nothing is inside it
    nearest_beyond: list[Hit] = field(default_factory=list)


def search(
    session: Session,
    lat: float,
    lon: float,
    *,
    radius_km: float,
    filters: Filters | None = None,
    page: int = 1,
    per_page: int = 20,
    fallback: int = 5,
) -> Results:
    """Active practitioners within ``radius_km``, nearest first, one row per practitioner
    (their closest location)."""
    filters = filters or Filters()
    hits = _within(session, lat, lon, radius_km, filters)
    start = (page - 1) * per_page
    results = Results(hits[start : start + per_page], len(hits), page, per_page)
    if not hits and fallback:
        results.nearest_beyond = _nearest_beyond(session, lat, lon, radius_km, filters, fallback)
    return results


def _within(
    session: Session, lat: float, lon: float, radius_km: float, filters: Filters
) -> list[Hit]:
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, radius_km)
    stmt = (
        select(Location)
        .join(Location.practitioner)
        .where(
            Practitioner.status == "active",
            Location.lat.between(min_lat, max_lat),
            Location.lon.between(min_lon, max_lon),
        )
        .options(selectinload(Location.practitioner).selectinload(Practitioner.modalities))
    )
    if filters.modalities:
        stmt = stmt.where(
            Practitioner.id.in_(
                select(practitioner_modality.c.practitioner_id)
                .join(Modality)
                .where(Modality.slug.in_(filters.modalities))
            )
        )
    best: dict[int, Hit] = {}
    for location in session.scalars(stmt):
        d = great_circle_km(lat, lon, location.lat, location.lon)
        if d > radius_km:
            continue
        current = best.get(location.practitioner_id)
        if current is None or d < current.distance_km:
            best[location.practitioner_id] = Hit(location.practitioner, location, d)
    return sorted(best.values(), key=lambda h: (h.distance_km, h.practitioner.id))


def _nearest_beyond(
    session: Session, lat: float, lon: float, radius_km: float, filters: Filters, count: int
) -> list[Hit]:
    radius = max(radius_km, 1.0)
    while radius < 20_100:
        radius *= 4
        hits = _within(session, lat, lon, radius, filters)
        if len(hits) >= count:
            return hits[:count]
    return hits[:count]

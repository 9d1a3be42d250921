"""Which records an HSDS list holds: the filters (ANDed), counting, paging and streaming.

Services and organizations are active practitioners (one each), ordered by our id; a
service_at_location is a location of one, ordered by its id. Near a postcode the spatial
index answers (:func:`referral.search.search`): each service's nearest location, nearest
first, at most ``cap`` of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.orm import Session

from referral.models import Condition, Location, Modality, Practitioner
from referral.search import Filters, search

#: rows read per statement when streaming every record
BATCH = 1000


@dataclass(frozen=True)
class Criteria:
    """What a list is narrowed to; every one given must hold.

    ``words``: each must appear (any case) in the name, business name, description or a
    modality's or condition's name. ``term``: ``(kind, slug)`` of a modality or condition.
    ``taxonomy``: ``modality`` or ``condition``, the service has some term of it.
    ``organization``: our practitioner id. ``none``: a filter named an id that is none of
    ours, so nothing matches.
    """

    words: tuple[str, ...] = ()
    term: tuple[str, str] | None = None
    taxonomy: str | None = None
    organization: int | None = None
    modified_after: datetime | None = None
    none: bool = False


@dataclass(frozen=True)
class Near:
    """A point and a radius: the service_at_locations near a postcode."""

    lat: float
    lon: float
    radius_km: float
    cap: int
    time_limit_ms: float | None = None
    filters: Filters = field(default_factory=Filters)


def conditions(c: Criteria) -> list[ColumnElement[bool]]:
    """The WHERE clauses on :class:`Practitioner` for ``c`` (active listings only)."""
    where: list[ColumnElement[bool]] = [Practitioner.status == "active"]
    if c.none:
        where.append(false())
    if c.organization is not None:
        where.append(Practitioner.id == c.organization)
    if c.modified_after is not None:
        where.append(Practitioner.updated_at >= c.modified_after)
    if c.term is not None:
        kind, slug = c.term
        relation, model = _relation(kind)
        where.append(relation.any(model.slug == slug))
    if c.taxonomy is not None:
        relation, _ = _relation(c.taxonomy)
        where.append(relation.any())
    for word in c.words:
        where.append(
            or_(
                func.lower(Practitioner.name).contains(word, autoescape=True),
                func.lower(Practitioner.business_name).contains(word, autoescape=True),
                func.lower(Practitioner.bio).contains(word, autoescape=True),
                Practitioner.modalities.any(
                    func.lower(Modality.name).contains(word, autoescape=True)
                ),
                Practitioner.conditions.any(
                    func.lower(Condition.name).contains(word, autoescape=True)
                ),
            )
        )
    return where


def _relation(kind: str) -> tuple[Any, type[Modality] | type[Condition]]:
    if kind == "modality":
        return Practitioner.modalities, Modality
    return Practitioner.conditions, Condition


def count_practitioners(session: Session, c: Criteria) -> int:
    return session.scalar(select(func.count(Practitioner.id)).where(*conditions(c))) or 0


def practitioner_ids(session: Session, c: Criteria, offset: int, limit: int) -> list[int]:
    return list(
        session.scalars(
            select(Practitioner.id)
            .where(*conditions(c))
            .order_by(Practitioner.id)
            .offset(offset)
            .limit(limit)
        )
    )


def every_practitioner_id(session: Session, c: Criteria) -> Iterator[int]:
    """Every matching id in order, :data:`BATCH` per statement (keyset, not OFFSET)."""
    last = 0
    while True:
        ids = list(
            session.scalars(
                select(Practitioner.id)
                .where(*conditions(c), Practitioner.id > last)
                .order_by(Practitioner.id)
                .limit(BATCH)
            )
        )
        yield from ids
        if len(ids) < BATCH:
            return
        last = ids[-1]


Pair = tuple[int, int]  # (practitioner id, location id)


def count_locations(session: Session, c: Criteria) -> int:
    return (
        session.scalar(
            select(func.count(Location.id)).join(Location.practitioner).where(*conditions(c))
        )
        or 0
    )


def location_pairs(session: Session, c: Criteria, offset: int, limit: int) -> list[Pair]:
    rows = session.execute(
        select(Location.practitioner_id, Location.id)
        .join(Location.practitioner)
        .where(*conditions(c))
        .order_by(Location.id)
        .offset(offset)
        .limit(limit)
    )
    return [(p, loc) for p, loc in rows]


def every_location_pair(session: Session, c: Criteria) -> Iterator[Pair]:
    last = 0
    while True:
        rows = [
            (p, loc)
            for p, loc in session.execute(
                select(Location.practitioner_id, Location.id)
                .join(Location.practitioner)
                .where(*conditions(c), Location.id > last)
                .order_by(Location.id)
                .limit(BATCH)
            )
        ]
        yield from rows
        if len(rows) < BATCH:
            return
        last = rows[-1][1]


def near_pairs(session: Session, c: Criteria, near: Near) -> list[Pair]:
    """Each matching service's nearest location within the radius, nearest first: the
    spatial index ranks, then one statement keeps the hits that meet the other criteria."""
    if c.none:
        return []
    results = search(
        session,
        near.lat,
        near.lon,
        radius_km=near.radius_km,
        filters=near.filters,
        page=1,
        per_page=near.cap,
        fallback=0,
        max_total=near.cap,
        time_limit_ms=near.time_limit_ms,
    )
    hits = [(h.practitioner.id, h.location.id) for h in results.hits]
    if not hits:
        return []
    keep = set(
        session.scalars(
            select(Practitioner.id).where(Practitioner.id.in_([p for p, _ in hits]), *conditions(c))
        )
    )
    return [pair for pair in hits if pair[0] in keep]

"""Finding the nearest active practitioners: the one search interface, two index backends.

:func:`search` finds the page's ids and distances, then reads the page's cards into frozen
records (:class:`Hit`). Within 300 km (most searches) both databases answer from the
search-term grid (:mod:`~referral.search.grid`, plain B-tree rows per filter value and grid
cell), with great-circle distances in Python. Wider searches, and the nearest beyond a radius
with nothing in it, use the spatial index. SQLite: an R*Tree box that starts at 0.5 km and
grows until it holds enough matches, then exact great-circle distance in Python.
PostgreSQL: ``ORDER BY geog <-> point`` on GiST indexes (a partial one per modality), with
distances from ``ST_Distance(..., false)`` on the same sphere. Every path ranks by distance
and breaks ties by practitioner id, so they all return the same hits in the same order.

The package's modules, in the order a search meets them: :mod:`~referral.search.records`
(what goes in and comes out), :mod:`~referral.search.grid` (the search-term grid that
answers most searches), :mod:`~referral.search.planner` (nobody / filter-first / walk,
from cheap counts, for the rest), :mod:`~referral.search.backend` (the interface) with
:mod:`~referral.search.sqlite` and :mod:`~referral.search.postgis` behind it,
:mod:`~referral.search.sql` (the filters as SQL), :mod:`~referral.search.cards` (a page's
hits), :mod:`~referral.search.guard` (the time limit) and
:mod:`~referral.search.maintenance` (after bulk loads, and what the form offers).

The SQL is plain text on the DB-API connection: SQLAlchemy's statement compilation and
result machinery would cost more than the index look-up itself at directory scale. Every
value is a bound parameter except integers our code computes (modality ids read from the
database, row limits), which are written in so the planner can use them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from referral.search import grid
from referral.search.backend import _POSTGIS, _RTREE, SpatialIndex, _index_for
from referral.search.cards import _load, _page
from referral.search.guard import _time_limit
from referral.search.maintenance import listed_languages, optimize, refresh_after_bulk_load
from referral.search.planner import (
    COMMON_FOR_S,
    FILTER_FIRST_MAX,
    _anyone_matches,
    _largest_visit_km,
    _plan,
)
from referral.search.postgis import KNN_MAX_ROWS
from referral.search.records import (
    DEFAULT_MAX_TOTAL,
    Filters,
    Hit,
    LocationSummary,
    Nearest,
    PractitionerSummary,
    Ranked,
    Results,
    SearchTimeout,
    Term,
)
from referral.search.sql import (
    EARTH_HALF_KM,
    POSTGIS_SPHERE_M,
    _driver,
    _filter_sql,
    _language_codes,
    _marker,
    modality_ids,
)
from referral.search.sqlite import FIRST_BOX_KM

__all__ = [
    "COMMON_FOR_S",
    "DEFAULT_MAX_TOTAL",
    "EARTH_HALF_KM",
    "FILTER_FIRST_MAX",
    "FIRST_BOX_KM",
    "KNN_MAX_ROWS",
    "POSTGIS_SPHERE_M",
    "_POSTGIS",
    "_RTREE",
    "Filters",
    "Hit",
    "LocationSummary",
    "Nearest",
    "PractitionerSummary",
    "Ranked",
    "Results",
    "SearchTimeout",
    "SpatialIndex",
    "Term",
    "_driver",
    "_filter_sql",
    "_index_for",
    "_language_codes",
    "_marker",
    "_time_limit",
    "listed_languages",
    "modality_ids",
    "optimize",
    "refresh_after_bulk_load",
    "search",
]


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
    with_total: bool = False,
    max_total: int = DEFAULT_MAX_TOTAL,
    time_limit_ms: float | None = None,
) -> Results:
    """Active practitioners within ``radius_km`` matching ``filters``, nearest first, one
    hit per practitioner (their closest matching location). When nothing is in range,
    ``nearest_beyond`` holds up to ``fallback`` of the nearest matches at any distance.

    Within :data:`~referral.search.grid.GRID_MAX_KM` (and off the antimeridian) the
    search-term grid answers (:mod:`referral.search.grid`): the filter values' row counts
    say at once when nobody has one, else the rarest value's own locations are walked
    nearest-first, and the total is one capped count of the cells wholly inside the
    radius (a dense city) or the same walk stopped at ``max_total`` + 1. Wider
    searches plan from bounded counts of each value (:func:`_plan`): nobody, few (read
    their locations, exact distance, sort) or common (walk the R*Tree / GiST index). The
    nearest beyond the radius, when nothing is in it, always comes from the latter.
    ``Results.total`` is exact up to ``max_total``; ``with_total=True`` counts it now.
    ``time_limit_ms`` bounds the whole search: past it :class:`SearchTimeout` (a 503).
    """
    filters = filters or Filters()
    index = _index_for(session)
    start = (page - 1) * per_page
    need = start + per_page
    with _time_limit(session, time_limit_ms):
        farthest = EARTH_HALF_KM
        if filters.home_visits:  # nobody visits farther than the largest visit radius
            farthest = _largest_visit_km(session)
            radius_km = min(radius_km, farthest)
        if grid.serves(lat, lon, radius_km):
            groups = grid.terms(session, filters)
            groups = grid.rarest_first(session, groups) if groups else None
            if groups is None:  # a value nobody has, or a modality, condition, fund that is not
                return Results([], 0, page, per_page)
            walked = grid.walk(session, lat, lon, radius_km, filters, groups, need)
            assert walked is not None

            def count_on_grid() -> tuple[int, bool]:
                with _time_limit(session, time_limit_ms):
                    if grid.at_least(session, lat, lon, radius_km, filters, groups, max_total + 1):
                        return max_total, True
                    again = grid.walk(session, lat, lon, radius_km, filters, groups, max_total + 1)
                assert again is not None
                return min(len(again.ranked), max_total), len(again.ranked) > max_total

            ranked = walked.ranked
            total = capped = None
            if walked.reach_km >= radius_km:  # the walk saw every match
                total, capped = min(len(ranked), max_total), len(ranked) > max_total
            elif with_total:
                total, capped = count_on_grid()
            results = Results(
                _load(session, ranked[start:need]),
                total,
                page,
                per_page,
                count=count_on_grid,
                total_capped=bool(capped),
            )
            if fallback and not ranked and radius_km < farthest:  # else none is beyond
                every = grid.everywhere(session, lat, lon, filters, groups, farthest)
                if every is not None:  # a rare driver: all its rows, read at once
                    results.nearest_beyond = _load(session, every[:fallback])
                else:
                    results.nearest_beyond = _nearest_beyond(
                        session, lat, lon, filters, _plan(session, filters), farthest, fallback
                    )
            return results
        plan = _plan(session, filters)
        if plan == "nobody":
            return Results([], 0, page, per_page)
        every = index.filter_first(session, lat, lon, filters, plan) if plan else None
        if every is not None:  # every match anywhere, ranked
            inside = [row for row in every if row[0] <= radius_km]
            total, capped = min(len(inside), max_total), len(inside) > max_total
            results = Results(
                _load(session, inside[start:need]), total, page, per_page, total_capped=capped
            )
            if fallback and not inside:
                results.nearest_beyond = _load(session, every[:fallback])
            return results
        ranked, exhausted, cards, _ = index.nearest(session, lat, lon, radius_km, filters, need)

        def count() -> tuple[int, bool]:
            with _time_limit(session, time_limit_ms):
                n = index.count_upto(session, lat, lon, radius_km, filters, max_total + 1)
            return min(n, max_total), n > max_total

        total = capped = None
        if exhausted:
            total, capped = min(len(ranked), max_total), len(ranked) > max_total
        elif with_total:
            n = index.count_upto(session, lat, lon, radius_km, filters, max_total + 1)
            total, capped = min(n, max_total), n > max_total
        results = Results(
            _page(session, ranked[start:], cards),
            total,
            page,
            per_page,
            count=count,
            total_capped=bool(capped),
        )
        if fallback and not ranked:
            results.nearest_beyond = _nearest_beyond(
                session, lat, lon, filters, plan, farthest, fallback
            )
    return results


def _nearest_beyond(
    session: Session,
    lat: float,
    lon: float,
    filters: Filters,
    plan: str | tuple[str, Any] | None,
    farthest: float,
    fallback: int,
) -> list[Hit]:
    """Up to ``fallback`` of the nearest matches at any distance (within ``farthest``),
    for a search with none in its radius: from the plan's few practitioners when it has
    them, else by the spatial index, once :func:`_anyone_matches` says there is anyone."""
    index = _index_for(session)
    if isinstance(plan, tuple):
        every = index.filter_first(session, lat, lon, filters, plan)
        if every is not None:
            return _load(session, every[:fallback])
    if not _anyone_matches(session, filters):
        return []
    beyond, _, cards, _ = index.nearest(session, lat, lon, farthest, filters, fallback)
    return _page(session, beyond, cards)

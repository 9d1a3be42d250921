"""How to run a search, from cheap bounded counts of each filter value: nobody has it,
few have it (start from their locations), or it is common (walk the spatial index)."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from referral.geo.distance import great_circle_km
from referral.search.cards import _first_per_practitioner
from referral.search.records import Filters, Ranked
from referral.search.sql import (
    POSTGIS_POINT,
    _driver,
    _filter_sql,
    _language_codes,
    _marker,
    postgis_params,
)

#: the planner starts from a filter's practitioners when at most this many have it
FILTER_FIRST_MAX = 1500
#: how long a filter value found common is remembered as common (seconds)
COMMON_FOR_S = 60.0


#: (engine, kind, value) -> until when that filter value is known to be common
_COMMON: weakref.WeakKeyDictionary[Any, dict[tuple[str, Any], float]] = weakref.WeakKeyDictionary()


def _plan(session: Session, filters: Filters) -> str | tuple[str, Any] | None:
    """How to run a search: ``"nobody"`` (a filter value no active or inactive listing
    has), ``(kind, value)`` to start from the rarest selective filter's practitioners,
    or None to walk the spatial index.

    Each selective filter (condition, fund, language) is counted in its own index up to
    :data:`FILTER_FIRST_MAX` + 1 entries, so a count costs at most that many index
    entries; a value found common is remembered for :data:`COMMON_FOR_S` seconds. Rare
    values are counted every time: they are cheap to count, and a new listing with one
    is found at once. The plan decides only the cost: every plan gives the same answers.
    """
    wanted = [
        (kind, value)
        for kind, value in (
            ("condition", filters.condition),
            ("fund", filters.fund),
            ("language", _language_codes(filters.language) if filters.language else None),
        )
        if value
    ]
    if not wanted:
        return None
    bind = session.get_bind()
    common = _COMMON.setdefault(getattr(bind, "engine", bind), {})
    now = time.monotonic()
    best: tuple[int, tuple[str, Any]] | None = None
    for key in wanted:
        if common.get(key, 0.0) > now:
            continue
        n = _count_value(session, *key, FILTER_FIRST_MAX + 1)
        if n == 0:
            return "nobody"
        if n > FILTER_FIRST_MAX:
            common[key] = now + COMMON_FOR_S
        elif best is None or n < best[0]:
            best = (n, key)
    return best[1] if best else None


#: kind -> (table, column, how a value becomes the column's)
_DRIVERS = {
    "condition": (
        "referral_practitioner_condition",
        "condition_id",
        "(SELECT c.id FROM referral_condition c WHERE c.slug = {0})",
    ),
    "fund": (
        "referral_practitioner_fund",
        "fund_id",
        "(SELECT f.id FROM referral_health_fund f WHERE f.slug = {0})",
    ),
}


def _driver_where(kind: str, value: Any, params: dict[str, Any], mark: Callable) -> str:
    """``d``'s rows for one filter value: ``d`` is the filter's link table."""
    if kind == "language":
        marks = []
        for n, code in enumerate(value):
            params[f"plan_language{n}"] = code
            marks.append(mark(f"plan_language{n}"))
        return f"d.code IN ({', '.join(marks)})"
    _, column, value_sql = _DRIVERS[kind]
    params["plan_value"] = value
    return f"d.{column} = {value_sql.format(mark('plan_value'))}"


def _driver_table(kind: str) -> str:
    return "referral_practitioner_language" if kind == "language" else _DRIVERS[kind][0]


def _count_value(session: Session, kind: str, value: Any, most: int) -> int:
    """How many listings have this filter value, counted up to ``most``."""
    dialect = session.get_bind().dialect.name
    params: dict[str, Any] = {}
    where = _driver_where(kind, value, params, _marker(dialect))
    sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM {_driver_table(kind)} AS d"
        f" WHERE {where} LIMIT {int(most):d}) AS x"
    )
    return _driver(session).execute(sql, params).fetchone()[0]


def _filter_first_sql(
    filters: Filters, plan: tuple[str, Any], params: dict[str, Any], dialect: str, rows: int
) -> str:
    """Every location of the practitioners with the plan's filter value that passes all
    the filters, at most ``rows``: SQLite gives lat/lon, PostGIS the distance."""
    kind, value = plan
    mark = _marker(dialect)
    where = _filter_sql(filters, params, dialect, "p.id")
    join = "CROSS JOIN" if dialect == "sqlite" else "JOIN"  # CROSS: SQLite keeps the order
    if dialect == "postgresql":
        first = f"ST_Distance(l.geog, {POSTGIS_POINT}, false) / 1000"
    else:
        first = "l.lat, l.lon"
    return (
        f"SELECT {first}, l.practitioner_id, l.id, l.home_visit_radius_km"
        f" FROM (SELECT DISTINCT d.practitioner_id FROM {_driver_table(kind)} AS d"
        f" WHERE {_driver_where(kind, value, params, mark)}) AS x"
        f" {join} referral_practitioner AS p ON p.id = x.practitioner_id"
        f" {join} referral_location AS l ON l.practitioner_id = p.id"
        f" WHERE {' AND '.join(where)} LIMIT {int(rows):d}"
    )


def _filter_first(
    session: Session, lat: float, lon: float, filters: Filters, plan: tuple[str, Any]
) -> Ranked | None:
    """Every match anywhere, ranked, read from the plan's few practitioners; None when
    they turn out to be more than the plan expected (the caller walks the index then)."""
    dialect = session.get_bind().dialect.name
    params: dict[str, Any] = {}
    if dialect == "postgresql":
        params.update(postgis_params(lat, lon, 0.0))
    most = FILTER_FIRST_MAX * 4
    rows = (
        _driver(session)
        .execute(_filter_first_sql(filters, plan, params, dialect, most + 1), params)
        .fetchall()
    )
    if len(rows) > most:
        return None
    found = []
    home_visits = filters.home_visits
    for row in rows:
        if dialect == "postgresql":
            distance, practitioner_id, location_id, visit_km = row
        else:
            plat, plon, practitioner_id, location_id, visit_km = row
            distance = great_circle_km(lat, lon, plat, plon)
        if home_visits and distance > visit_km:
            continue
        found.append((distance, practitioner_id, location_id))
    return _first_per_practitioner(found)


def _anyone_matches(session: Session, filters: Filters) -> bool:
    """Whether any listing anywhere passes the filters: without this check, looking for
    the nearest beyond the radius would widen its search to the whole earth for nothing."""
    params: dict[str, Any] = {}
    dialect = session.get_bind().dialect.name
    where = _filter_sql(filters, params, dialect, "p.id")
    sql = (
        "SELECT 1 FROM referral_practitioner AS p"
        " JOIN referral_location AS l ON l.practitioner_id = p.id"
        f" WHERE {' AND '.join(where)} LIMIT 1"
    )
    return _driver(session).execute(sql, params).fetchone() is not None


def _largest_visit_km(session: Session) -> float:
    """The largest home-visit radius of any location (an index look-up): no home-visit
    match is farther from the visitor than that."""
    row = (
        _driver(session)
        .execute("SELECT max(home_visit_radius_km) FROM referral_location")
        .fetchone()
    )
    return float(row[0]) if row and row[0] is not None else 0.0

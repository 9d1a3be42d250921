"""The search-term grid (migration 0008): every filter value's locations, by grid cell.

``referral_search_term`` has one row per (term, location) of every active practitioner,
keyed by (term, cell, location). A term is one filter value: ``*`` (every location),
``m:<id>`` a modality, ``c:<id>`` a condition, ``f:<id>`` a fund, ``l:<code>`` a language,
``h`` home visits. Cells are 0.01 degree squares numbered row by row, so the cells of a box
are one B-tree range per row of cells. The same plain B-tree on SQLite and PostgreSQL:

- **nearest first** (:func:`walk`): read the rarest wanted term's rows in a box that grows
  until the circle it encloses holds enough matches; each round reads only the new cells.
  The other filters are a probe of the same key per row (``EXISTS``) or a flag column, so a
  rare value reads its own few rows and nobody else's, and a common one reads a small box.
- **the total**: the same walk, asked for the cap plus one; it stops as soon as that many
  are certain, so a dense city costs about the cap's rows, not the radius's.

Distances are :func:`~referral.geo.distance.great_circle_km` in Python on both databases,
so SQLite and PostGIS give the same hits, the same order and the same kilometres.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass
from typing import Any

from geopy.distance import EARTH_RADIUS
from sqlalchemy.orm import Session

from referral.geo.distance import great_circle_km
from referral.search.cards import _first_per_practitioner
from referral.search.records import Filters, Ranked
from referral.search.sql import _driver, _language_codes, _marker, modality_ids

#: cells per degree, and the grid's size (rows of latitude, columns of longitude)
PER_DEGREE = 100
ROWS, COLUMNS = 180 * PER_DEGREE, 360 * PER_DEGREE
#: the grid serves radii up to this; beyond, a box has too many rows of cells to read
GRID_MAX_KM = 300.0
#: the first box's half-size (km) for ten of a common term; wider for rarer terms
FIRST_KM = 0.5
#: a term's rows are counted up to this many to choose the rarest (then remembered)
COUNT_UPTO = 50_000
#: how long a term's row count is remembered (seconds): it decides only the cost
COUNT_FOR_S = 60.0


def cell_row(lat: float) -> int:
    """The row of cells a latitude is in (as migration 0008 computes it in SQL)."""
    return min(int((lat + 90.0) * PER_DEGREE), ROWS - 1)


def cell_column(lon: float) -> int:
    """The column of cells a longitude is in (as migration 0008 computes it in SQL)."""
    return min(int((lon + 180.0) * PER_DEGREE), COLUMNS - 1)


def enclosing_box(lat: float, lon: float, km: float) -> tuple[int, int, int, int] | None:
    """(first row, last row, first column, last column) of the cells enclosing the circle
    of ``km`` around the point, or None when it crosses the antimeridian (the grid is not
    used then). Longitude's reach is the spherical cap's exact ``asin(sin r / cos lat)``."""
    angle = km / EARTH_RADIUS
    dlat = math.degrees(angle)
    low, high = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    coslat = math.cos(math.radians(lat))
    if low <= -90.0 or high >= 90.0 or math.sin(angle) >= coslat:  # holds a pole
        return cell_row(low), cell_row(high), 0, COLUMNS - 1
    dlon = math.degrees(math.asin(math.sin(angle) / coslat)) * (1 + 1e-9) + 1e-9
    if lon - dlon < -180.0 or lon + dlon > 180.0:
        return None
    return cell_row(low), cell_row(high), cell_column(lon - dlon), cell_column(lon + dlon)


def _new_ranges(
    box: tuple[int, int, int, int], done: tuple[int, int, int, int] | None
) -> list[tuple[int, int]]:
    """The cell ranges of ``box`` outside ``done`` (a box inside it): one range per new row,
    up to two per row already read."""
    r0, r1, c0, c1 = box
    ranges = []
    for row in range(r0, r1 + 1):
        base = row * COLUMNS
        if done is None or not done[0] <= row <= done[1]:
            ranges.append((base + c0, base + c1))
            continue
        if c0 < done[2]:
            ranges.append((base + c0, base + done[2] - 1))
        if done[3] < c1:
            ranges.append((base + done[3] + 1, base + c1))
    return ranges


@dataclass(frozen=True)
class Walk:
    """What :func:`walk` found: ``ranked`` holds every match within ``reach_km`` (each
    practitioner's nearest location), nearest first."""

    ranked: Ranked
    reach_km: float


def terms(session: Session, filters: Filters) -> list[tuple[str, ...]] | None:
    """The filters as groups of terms: a location matches when it has a term of every group
    (AND of ORs). None when a wanted modality, condition or fund does not exist."""
    groups: list[tuple[str, ...]] = []
    if filters.modalities:
        ids = modality_ids(session, filters.modalities)
        if not ids:
            return None
        groups.append(tuple(f"m:{i}" for i in sorted(ids.values())))
    for kind, table, slug in (
        ("c", "referral_condition", filters.condition),
        ("f", "referral_health_fund", filters.fund),
    ):
        if slug:
            found = _taxonomy_id(session, table, slug)
            if found is None:
                return None
            groups.append((f"{kind}:{found}",))
    if filters.language:
        groups.append(tuple(f"l:{code}" for code in _language_codes(filters.language)))
    if filters.home_visits:
        groups.append(("h",))
    return groups or [("*",)]


def serves(lat: float, lon: float, radius_km: float) -> bool:
    """Whether the grid answers this search: a radius up to :data:`GRID_MAX_KM` whose
    circle does not cross the antimeridian."""
    return radius_km <= GRID_MAX_KM and enclosing_box(lat, lon, radius_km) is not None


def rarest_first(session: Session, groups: list[tuple[str, ...]]) -> list[tuple[str, ...]] | None:
    """The groups ordered by how many rows they have, fewest first; None when one has none
    (nobody matches anywhere: known from the counts, with no walk and no fallback)."""
    counts = [sum(_term_rows(session, term) for term in group) for group in groups]
    if 0 in counts:
        return None
    return [group for _, group in sorted(zip(counts, groups, strict=True), key=lambda x: x[0])]


def walk(
    session: Session,
    lat: float,
    lon: float,
    radius_km: float,
    filters: Filters,
    groups: list[tuple[str, ...]],
    want: int,
) -> Walk | None:
    """The nearest matches within ``radius_km``, at least ``want`` of them when there are
    (fewer only when the walk reached the radius), or None when the grid cannot serve this
    search (a radius beyond :data:`GRID_MAX_KM`, a circle across the antimeridian).

    ``groups`` come rarest first (:func:`rarest_first`): the first drives, its rows read
    box by box; the other groups are probed by key and the flags read from the row. A box
    encloses its circle, so every match within the circle has been seen: the walk ends once
    that circle holds ``want`` practitioners or is the radius.
    """
    if not serves(lat, lon, radius_km):
        return None
    driver, others = groups[0], groups[1:]
    connection = _driver(session)
    sql, params = _round_sql(session.get_bind().dialect.name, driver, others, filters)
    home_visits = filters.home_visits
    rows: list[tuple[float, int, int]] = []
    done = None
    # the first box: about ``want`` of the driver's rows in a city (fewer rounds, each a
    # statement): wider for a rarer driver and for a larger want
    rows_of_driver = max(1, sum(_term_rows(session, term) for term in driver))
    km = FIRST_KM * math.sqrt(max(want, 10) / 10 * COUNT_UPTO / min(rows_of_driver, COUNT_UPTO))
    km = min(km, radius_km)
    while True:
        box = enclosing_box(lat, lon, km)
        assert box is not None  # inside the radius's box, which does not cross
        ranges = _new_ranges(box, done)
        if ranges:
            if session.get_bind().dialect.name == "postgresql":
                params["lo"] = [lo for lo, _ in ranges]
                params["hi"] = [hi for _, hi in ranges]
            else:
                params["ranges"] = "[" + ",".join(f"[{lo},{hi}]" for lo, hi in ranges) + "]"
            for location_id, practitioner_id, plat, plon, visit_km in connection.execute(
                sql, params
            ):
                distance = great_circle_km(lat, lon, plat, plon)
                if distance <= radius_km and not (home_visits and distance > visit_km):
                    rows.append((distance, practitioner_id, location_id))
        done = box
        ranked = _first_per_practitioner(row for row in rows if row[0] <= km)
        if km >= radius_km or len(ranked) >= want:
            return Walk(ranked, km)
        growth = math.sqrt(want / len(ranked)) * 1.2 if ranked else 4.0
        km = min(km * min(max(growth, 2.0), 8.0), radius_km)


def _inner_ranges(lat: float, lon: float, km: float) -> list[tuple[int, int]]:
    """The cell ranges whose cells lie wholly within ``km`` of the point (every corner
    within it: on a sphere a small cell's farthest point from outside is a corner), one
    range per row of cells; rows whose cells all reach past it are left out."""
    box = enclosing_box(lat, lon, km)
    if box is None or box[2:] == (0, COLUMNS - 1):
        return []
    phi, angle = math.radians(lat), km / EARTH_RADIUS
    ranges = []
    for row in range(box[0], box[1] + 1):
        reach = math.pi
        for edge in (row / PER_DEGREE - 90.0, (row + 1) / PER_DEGREE - 90.0):
            pe = math.radians(edge)
            cos_d = (math.cos(angle) - math.sin(phi) * math.sin(pe)) / (
                math.cos(phi) * math.cos(pe)
            )
            if cos_d > 1.0:  # this edge's latitude is out of reach
                reach = -1.0
                break
            reach = min(reach, math.acos(max(-1.0, cos_d)))
        if reach <= 0:
            continue
        dlon = math.degrees(reach) * (1 - 1e-9) - 1e-9
        first = math.ceil((lon - dlon + 180.0) * PER_DEGREE)  # a cell's west edge inside
        last = math.floor((lon + dlon + 180.0) * PER_DEGREE) - 1  # its east edge inside
        if first <= last:
            ranges.append((row * COLUMNS + first, row * COLUMNS + last))
    return ranges


def at_least(
    session: Session,
    lat: float,
    lon: float,
    radius_km: float,
    filters: Filters,
    groups: list[tuple[str, ...]],
    most: int,
) -> bool:
    """Whether ``most`` practitioners match in the cells wholly inside the radius: one
    statement that the database stops at twice ``most`` rows, no distance computed. It settles a
    capped total in a dense city; False (not proven) leaves it to :func:`walk`. Home visits
    need each row's distance, so they are never proven here."""
    if filters.home_visits:
        return False
    ranges = _inner_ranges(lat, lon, radius_km)
    if not ranges:
        return False
    dialect = session.get_bind().dialect.name
    sql, params = _round_sql(dialect, groups[0], groups[1:], filters)
    if dialect == "postgresql":
        params.update(lo=[lo for lo, _ in ranges], hi=[hi for _, hi in ranges])
    else:
        params["ranges"] = "[" + ",".join(f"[{lo},{hi}]" for lo, hi in ranges) + "]"
    # the rows under a LIMIT, told apart here: a DISTINCT in SQL would read every row in
    # the cells first on PostgreSQL (its hash aggregate does not stop at a LIMIT)
    rows = _driver(session).execute(
        f"SELECT x.practitioner_id FROM ({sql}) AS x LIMIT {2 * int(most):d}", params
    )
    return len({row[0] for row in rows}) >= most


def everywhere(
    session: Session,
    lat: float,
    lon: float,
    filters: Filters,
    groups: list[tuple[str, ...]],
    farthest_km: float,
) -> Ranked | None:
    """Every match within ``farthest_km`` at any place, nearest first, when the driving
    group is rare (fewer than :data:`COUNT_UPTO` rows: all of them are read, with no
    cells); None when it is common (the caller walks the spatial index then)."""
    driver = groups[0]
    if sum(_term_rows(session, term) for term in driver) >= COUNT_UPTO:
        return None
    dialect = session.get_bind().dialect.name
    sql, params = _round_sql(dialect, driver, groups[1:], filters)
    if dialect == "postgresql":
        params.update(lo=[0], hi=[ROWS * COLUMNS])
    else:
        params["ranges"] = f"[[0,{ROWS * COLUMNS}]]"
    found = []
    for location_id, practitioner_id, plat, plon, visit_km in _driver(session).execute(sql, params):
        distance = great_circle_km(lat, lon, plat, plon)
        if distance <= farthest_km and not (filters.home_visits and distance > visit_km):
            found.append((distance, practitioner_id, location_id))
    return _first_per_practitioner(found)


def _round_sql(
    dialect: str, driver: tuple[str, ...], others: list[tuple[str, ...]], filters: Filters
) -> tuple[str, dict[str, Any]]:
    """One round's statement (the cell ranges are its ``ranges``, or ``lo``/``hi`` arrays on
    PostgreSQL) and its parameters, but for the ranges."""
    mark = _marker(dialect)
    params: dict[str, Any] = {}

    def term_list(prefix: str, group: tuple[str, ...]) -> str:
        for n, term in enumerate(group):
            params[f"{prefix}{n}"] = term
        return ", ".join(mark(f"{prefix}{n}") for n in range(len(group)))

    keys = [f"t.term IN ({term_list('t', driver)})", "t.cell BETWEEN r.lo AND r.hi"]
    where = []
    for flag, wanted in (("accepting", filters.accepting), ("telehealth", filters.telehealth)):
        if wanted:
            params[flag] = True
            where.append(f"t.{flag} = {mark(flag)}")
    if filters.home_visits:
        where.append("t.visit_km IS NOT NULL")
    for n, group in enumerate(others):
        where.append(
            "EXISTS (SELECT 1 FROM referral_search_term AS g"
            f" WHERE g.term IN ({term_list(f'g{n}_', group)})"
            " AND g.cell = t.cell AND g.location_id = t.location_id)"
        )
    columns = "t.location_id, t.practitioner_id, t.lat, t.lon, t.visit_km"
    conditions = " AND ".join(keys + where)
    if dialect == "postgresql":
        # LATERAL ... OFFSET 0: each range its own index range scan (without the OFFSET
        # the planner flattens it and may scan all of a term's rows once per range)
        sql = (
            f"SELECT t.* FROM unnest(%(lo)s::integer[], %(hi)s::integer[]) AS r(lo, hi)"
            f" CROSS JOIN LATERAL (SELECT {columns} FROM referral_search_term AS t"
            f" WHERE {conditions} OFFSET 0) AS t"
        )
    else:  # CROSS JOIN: SQLite keeps the order, so the ranges drive
        sql = (
            f"SELECT {columns} FROM (SELECT json_extract(value, '$[0]') AS lo,"
            " json_extract(value, '$[1]') AS hi FROM json_each(:ranges)) AS r"
            f" CROSS JOIN referral_search_term AS t ON {conditions}"
        )
    return sql, params


#: engine -> term -> (rows counted up to COUNT_UPTO, until when that count is used)
_ROWS: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, float]]] = weakref.WeakKeyDictionary()


def _term_rows(session: Session, term: str) -> int:
    """How many rows a term has, counted up to :data:`COUNT_UPTO`; a count above zero is
    remembered for :data:`COUNT_FOR_S` seconds (it only chooses which group drives)."""
    bind = session.get_bind()
    known = _ROWS.setdefault(getattr(bind, "engine", bind), {})
    now = time.monotonic()
    cached = known.get(term)
    if cached is not None and cached[1] > now:
        return cached[0]
    mark = _marker(bind.dialect.name)
    (n,) = (
        _driver(session)
        .execute(
            "SELECT count(*) FROM (SELECT 1 FROM referral_search_term"
            f" WHERE term = {mark('term')} LIMIT {COUNT_UPTO:d}) AS x",
            {"term": term},
        )
        .fetchone()
    )
    if n:  # none is asked again each time, so a value's first listing is found at once
        known[term] = (n, now + COUNT_FOR_S)
    return n


#: engine -> (table, slug) -> id; conditions and funds, like modalities, are never re-keyed
_IDS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], int]] = weakref.WeakKeyDictionary()


def _taxonomy_id(session: Session, table: str, slug: str) -> int | None:
    """The id of the condition or fund with this slug (remembered once found)."""
    bind = session.get_bind()
    known = _IDS.setdefault(getattr(bind, "engine", bind), {})
    if (table, slug) not in known:
        mark = _marker(bind.dialect.name)
        row = (
            _driver(session)
            .execute(f"SELECT id FROM {table} WHERE slug = {mark('slug')}", {"slug": slug})
            .fetchone()
        )
        if row is None:
            return None
        known[(table, slug)] = int(row[0])
    return known[(table, slug)]


def rebuild(session: Session) -> None:
    """Rewrite every row from the tables (for a bulk load that wrote around the triggers).
    Does not commit."""
    from importlib import import_module

    fill = import_module("referral.migrations.versions.0008_search_terms").fill_sql
    connection = _driver(session)
    connection.execute("DELETE FROM referral_search_term")
    connection.execute(fill(session.get_bind().dialect.name))

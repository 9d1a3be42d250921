"""Finding the nearest active practitioners: the one search interface, two index backends.

:func:`search` asks the database's spatial index for the ids and distances of the page,
then loads that page's objects (two ORM queries). SQLite: an R*Tree box that starts at
0.5 km and grows until it holds enough matches, then exact great-circle distance in
Python. PostgreSQL: ``ORDER BY geog <-> point`` on GiST indexes (a partial one per
modality), distances from ``ST_Distance(..., false)`` on the same sphere. Both rank by
that distance and break ties by practitioner id, so they return the same hits in the same
order.

The id query is plain SQL on the DB-API connection: SQLAlchemy's statement compilation and
result machinery would cost more than the index look-up itself at directory scale. Every
value is a bound parameter except modality ids, integers read from the database.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from geopy.distance import EARTH_RADIUS
from sqlalchemy import Integer, any_, bindparam, inspect, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from referral.geo.distance import bounding_box, great_circle_km
from referral.models import Location, Modality, Practitioner, practitioner_modality

#: half the earth's circumference: no two points are farther apart
EARTH_HALF_KM = math.pi * EARTH_RADIUS
#: first R*Tree box half-size; small, because the first box decides the cost in a city
FIRST_BOX_KM = 0.5
#: PostGIS: past this many nearest-first rows, filtering the whole radius once is cheaper
KNN_MAX_ROWS = 4096


@dataclass(frozen=True)
class Filters:
    """What a visitor narrows the search by; every filter given must hold (AND).

    ``modalities`` match any of the slugs (OR). ``condition``, ``fund`` are slugs;
    ``language`` matches case-insensitively. ``home_visits`` keeps practitioners who visit
    and whose location's home-visit radius reaches the visitor.
    """

    modalities: tuple[str, ...] = ()
    condition: str | None = None
    fund: str | None = None
    accepting: bool = False
    home_visits: bool = False
    language: str | None = None


@dataclass(frozen=True)
class Hit:
    practitioner: Practitioner
    location: Location
    distance_km: float


class Results:
    """One page of hits. ``total`` (practitioners within the radius) is counted on first
    read unless the page already showed it, so a caller that needs only the nearest few
    never pays for counting a dense city."""

    def __init__(
        self,
        hits: list[Hit],
        total: int | None,
        page: int,
        per_page: int,
        nearest_beyond: list[Hit] | None = None,
        *,
        count: Callable[[], int] | None = None,
    ) -> None:
        if total is None and count is None:
            raise ValueError("Results needs a total or a way to count it.")
        self.hits = hits
        self.page = page
        self.per_page = per_page
        #: the nearest beyond the radius, offered when nothing is inside it
        self.nearest_beyond = nearest_beyond or []
        self._total = total
        self._count = count

    @property
    def total(self) -> int:
        if self._total is None:
            assert self._count is not None
            self._total = self._count()
        return self._total

    def __repr__(self) -> str:
        return f"<Results page={self.page} per_page={self.per_page} hits={len(self.hits)}>"


#: (distance_km, practitioner_id, location_id), nearest first
Ranked = list[tuple[float, int, int]]


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
    """Active practitioners within ``radius_km`` matching ``filters``, nearest first, one
    hit per practitioner (their closest matching location). When nothing is in range,
    ``nearest_beyond`` holds up to ``fallback`` of the nearest matches at any distance."""
    filters = filters or Filters()
    index = _index_for(session)
    start = (page - 1) * per_page
    ranked, exhausted = index.nearest(session, lat, lon, radius_km, filters, start + per_page)
    page_rows = ranked[start:]
    total = len(ranked) if exhausted else None

    def count() -> int:
        return index.count(session, lat, lon, radius_km, filters)

    results = Results(_load(session, page_rows), total, page, per_page, count=count)
    if fallback and not ranked and _anyone_matches(session, filters):
        beyond, _ = index.nearest(session, lat, lon, EARTH_HALF_KM, filters, fallback)
        results.nearest_beyond = _load(session, beyond)
    return results


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


def _by_ids(column: Any, dialect: str) -> Any:
    """``column IN :ids`` as a parameter: on PostgreSQL ``= ANY(array)``, one statement for
    any page size, so psycopg prepares it once."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=ARRAY(Integer)))
    return column.in_(bindparam("ids", expanding=True))


def _page_statements(dialect: str) -> tuple[Any, Any]:
    """The two loading statements, built once per dialect: building them per search
    cost a tenth of a millisecond each."""
    if dialect not in _PAGE_STATEMENTS:
        link = practitioner_modality.c.practitioner_id
        _PAGE_STATEMENTS[dialect] = (
            select(Location)
            .where(_by_ids(Location.id, dialect))
            .options(joinedload(Location.practitioner)),
            select(link, Modality)
            .join(Modality, Modality.id == practitioner_modality.c.modality_id)
            .where(_by_ids(link, dialect))
            .order_by(Modality.name),
        )
    return _PAGE_STATEMENTS[dialect]


_PAGE_STATEMENTS: dict[str, tuple[Any, Any]] = {}


def _load(session: Session, ranked: Ranked) -> list[Hit]:
    """The ORM objects of a page: locations with their practitioners in one query, and
    their modalities (which every result card shows) in a second. An ORM
    ``selectinload`` would cost as much as the whole index look-up."""
    if not ranked:
        return []
    locations, modalities = _page_statements(session.get_bind().dialect.name)
    ids = [location_id for _, _, location_id in ranked]
    by_id = {location.id: location for location in session.scalars(locations, {"ids": ids})}
    # modalities for practitioners whose collection is not loaded yet, in one query
    todo = {
        loc.practitioner.id: loc.practitioner
        for loc in by_id.values()
        if "modalities" not in inspect(loc.practitioner).dict
    }
    if todo:
        chosen: dict[int, list[Modality]] = {pid: [] for pid in todo}
        for practitioner_id, modality in session.execute(modalities, {"ids": list(todo)}):
            chosen[practitioner_id].append(modality)
        for practitioner_id, found in chosen.items():
            set_committed_value(todo[practitioner_id], "modalities", found)
    return [
        Hit(by_id[location_id].practitioner, by_id[location_id], distance)
        for distance, _, location_id in ranked
        if location_id in by_id  # deleted between the two queries
    ]


def _index_for(session: Session) -> _SpatialIndex:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _POSTGIS
    if dialect == "sqlite":
        return _RTREE
    raise NotImplementedError(f"No spatial search for the {dialect} database.")


def _filter_sql(
    filters: Filters, params: dict[str, Any], dialect: str, practitioner_id: str
) -> list[str]:
    """WHERE conditions on ``p`` (practitioner) and ``l`` (location) for the filters,
    the cheapest-to-refuse first; ``practitioner_id`` is the column to correlate on.

    Only these fixed fragments go into the SQL text; every value is a parameter.
    """
    mark = _marker(dialect)
    where = []
    if filters.modalities:
        names = []
        for n, slug in enumerate(filters.modalities):
            params[f"modality{n}"] = slug
            names.append(mark(f"modality{n}"))
        where.append(
            "EXISTS (SELECT 1 FROM referral_practitioner_modality pm"
            f" WHERE pm.practitioner_id = {practitioner_id} AND pm.modality_id IN"
            f" (SELECT m.id FROM referral_modality m WHERE m.slug IN ({', '.join(names)})))"
        )
    if filters.condition:
        params["condition"] = filters.condition
        where.append(
            "EXISTS (SELECT 1 FROM referral_practitioner_condition pc"
            " JOIN referral_condition c ON c.id = pc.condition_id"
            f" WHERE pc.practitioner_id = {practitioner_id} AND c.slug = {mark('condition')})"
        )
    if filters.fund:
        params["fund"] = filters.fund
        where.append(
            "EXISTS (SELECT 1 FROM referral_practitioner_fund pf"
            " JOIN referral_health_fund f ON f.id = pf.fund_id"
            f" WHERE pf.practitioner_id = {practitioner_id} AND f.slug = {mark('fund')})"
        )
    where.append(f"p.status = {mark('status')}")
    params["status"] = "active"
    if filters.accepting:
        params["accepting"] = True
        where.append(f"p.accepting_new_patients = {mark('accepting')}")
    if filters.home_visits:
        params["home_visits"] = True
        where.append(
            f"p.home_visits = {mark('home_visits')} AND l.home_visit_radius_km IS NOT NULL"
        )
    if filters.language:
        params["language"] = filters.language.strip().lower()
        languages = (
            "json_array_elements_text(p.languages) AS lang(value)"
            if dialect == "postgresql"
            else "json_each(p.languages) AS lang"
        )
        where.append(
            f"EXISTS (SELECT 1 FROM {languages} WHERE lower(lang.value) = {mark('language')})"
        )
    return where


def _marker(dialect: str) -> Callable[[str], str]:
    """A named placeholder in the driver's own style (sqlite3 ``:x``, psycopg ``%(x)s``)."""
    if dialect == "postgresql":
        return lambda name: f"%({name})s"
    return lambda name: f":{name}"


def _driver(session: Session) -> Any:
    """The DB-API connection of the session's transaction: the id query skips
    SQLAlchemy's result machinery, which would cost as much as the query."""
    return session.connection().connection.driver_connection


def _first_per_practitioner(rows: Any, need: int | None = None) -> Ranked:
    """Keep each practitioner's nearest row, ranked by (distance, practitioner, location)."""
    best: dict[int, tuple[float, int, int]] = {}
    for distance, practitioner_id, location_id in rows:
        key = (distance, practitioner_id, location_id)
        current = best.get(practitioner_id)
        if current is None or key < current:
            best[practitioner_id] = key
    ranked = sorted(best.values())
    return ranked if need is None else ranked[:need]


class _RTreeIndex:
    """SQLite: the R*Tree drives the join (CROSS JOIN fixes SQLite's join order); a box
    that starts at 1 km and doubles until it holds enough matches, then exact distance.

    A match within the box's inscribed circle is ranked for sure: anything outside the
    box is farther. So each round keeps only matches within the circle."""

    def _within(
        self, session: Session, lat: float, lon: float, box_km: float, filters: Filters
    ) -> Ranked:
        params: dict[str, Any] = {}
        where = _filter_sql(filters, params, "sqlite", "r.practitioner_id")
        min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, box_km)
        params.update(min_lat=min_lat, max_lat=max_lat, min_lon=min_lon, max_lon=max_lon)
        sql = (
            "SELECT l.id, l.practitioner_id, l.lat, l.lon, l.home_visit_radius_km"
            " FROM referral_location_rtree AS r"
            " CROSS JOIN referral_practitioner AS p ON p.id = r.practitioner_id"
            " CROSS JOIN referral_location AS l ON l.id = r.id"
            " WHERE r.max_lat >= :min_lat AND r.min_lat <= :max_lat"
            " AND r.max_lon >= :min_lon AND r.min_lon <= :max_lon"
            " AND " + " AND ".join(where)
        )
        rows = _driver(session).execute(sql, params)
        home_visits = filters.home_visits
        found = []
        for location_id, practitioner_id, plat, plon, visit_km in rows:
            distance = great_circle_km(lat, lon, plat, plon)
            if distance > box_km or (home_visits and distance > visit_km):
                continue
            found.append((distance, practitioner_id, location_id))
        return _first_per_practitioner(found)

    def nearest(
        self,
        session: Session,
        lat: float,
        lon: float,
        radius_km: float,
        filters: Filters,
        need: int,
    ) -> tuple[Ranked, bool]:
        """Up to ``need`` nearest matches, and whether those are all there are."""
        radius_km = min(radius_km, EARTH_HALF_KM)
        box_km = min(FIRST_BOX_KM, radius_km)
        while True:
            ranked = self._within(session, lat, lon, box_km, filters)
            if box_km >= radius_km:
                return ranked[:need], len(ranked) <= need
            if len(ranked) >= need:
                return ranked[:need], False
            # grow by the area that should hold enough at the density seen, at least 2x
            growth = math.sqrt(need / len(ranked)) * 1.2 if ranked else 4.0
            box_km = min(box_km * min(max(growth, 2.0), 8.0), radius_km)

    def count(
        self, session: Session, lat: float, lon: float, radius_km: float, filters: Filters
    ) -> int:
        """How many practitioners match within ``radius_km``."""
        return len(self._within(session, lat, lon, min(radius_km, EARTH_HALF_KM), filters))


class _PostGISIndex:
    """PostgreSQL: a GiST index drives. A MATERIALIZED CTE takes the k locations nearest
    the point (``ORDER BY geog <-> point LIMIT k``: per wanted modality on
    ``referral_search_point``'s partial indexes, else on ``referral_location``); only
    those are joined and filtered, and k grows until enough match or the k-th is beyond
    the radius. The count uses ``ST_DWithin`` on the location index.

    Left to itself the planner misjudges ``ST_DWithin``'s selectivity and starts from the
    filter tables; and a second sort key or a WHERE beside the KNN order makes it sort
    the whole table. Hence the CTE of plain KNN subqueries."""

    POINT = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography"

    def _near(self) -> str:
        return (
            "WITH near AS MATERIALIZED (SELECT l.id, l.practitioner_id, l.geog,"
            " l.home_visit_radius_km FROM referral_location AS l"
            f" WHERE ST_DWithin(l.geog, {self.POINT}, %(radius_m)s, false))"
        )

    def _conditions(self, filters: Filters, params: dict[str, Any]) -> str:
        where = _filter_sql(filters, params, "postgresql", "l.practitioner_id")
        if filters.home_visits:
            where.append(f"ST_DWithin(l.geog, {self.POINT}, l.home_visit_radius_km * 1000, false)")
        return " AND ".join(where)

    def _branches(self, session: Session, filters: Filters) -> list[str] | None:
        """One nearest-first subquery per wanted modality (each walks that modality's
        partial index; the ids are integers from the database, written into the SQL so
        the planner can match the index), or one over every location. None: a modality
        that does not exist, so nothing can match."""
        if not filters.modalities:
            return [
                "(SELECT l.id, l.practitioner_id, l.geog, l.home_visit_radius_km, 0 AS branch"
                f" FROM referral_location AS l ORDER BY l.geog <-> {self.POINT}"
                " LIMIT %(limit)s)"
            ]
        ids = self._modality_ids(session, filters)
        if not ids:
            return None
        return [
            f"(SELECT s.location_id AS id, s.practitioner_id, s.geog,"
            f" {self._visit_radius(filters)} AS home_visit_radius_km, {m:d} AS branch"
            f" FROM referral_search_point AS s"
            f" WHERE s.modality_id = {m:d} ORDER BY s.geog <-> {self.POINT} LIMIT %(limit)s)"
            for m in ids
        ]

    @staticmethod
    def _modality_ids(session: Session, filters: Filters) -> list[int]:
        return [
            int(row[0])
            for row in _driver(session).execute(
                "SELECT id FROM referral_modality WHERE slug = ANY(%s) ORDER BY id",
                [list(filters.modalities)],
            )
        ]

    @staticmethod
    def _visit_radius(filters: Filters) -> str:
        """The home-visit radius of a search point's location, fetched only when needed."""
        if filters.home_visits:
            return (
                "(SELECT x.home_visit_radius_km FROM referral_location x"
                " WHERE x.id = s.location_id)"
            )
        return "NULL::double precision"

    def nearest(
        self,
        session: Session,
        lat: float,
        lon: float,
        radius_km: float,
        filters: Filters,
        need: int,
    ) -> tuple[Ranked, bool]:
        """Up to ``need`` nearest matches, and whether those are all there are."""
        branches = self._branches(session, filters)
        if branches is None:
            return [], True
        params: dict[str, Any] = {"lat": lat, "lon": lon, "radius_m": radius_km * 1000}
        rest = replace(filters, modalities=())  # the branches did the modality filter
        sql = (
            f"WITH near AS MATERIALIZED ({' UNION ALL '.join(branches)})"
            f" SELECT ST_Distance(l.geog, {self.POINT}, false) / 1000, l.practitioner_id,"
            f" l.id, {self._conditions(rest, params)}, l.branch FROM near AS l"
            " JOIN referral_practitioner AS p ON p.id = l.practitioner_id"
        )
        limit = need * 5 + 10  # one branch: enough when one location in five matches
        if filters.modalities:
            limit = need + 4  # a branch holds only its modality; spare rows for duplicates
        connection = _driver(session)
        while True:
            rows = connection.execute(sql, {**params, "limit": limit}).fetchall()
            per_branch: dict[int, list[float]] = {}
            for row in rows:
                per_branch.setdefault(row[4], []).append(row[0])
            # every match nearer than the farthest row of a full branch has been seen
            edges = [max(ds) for ds in per_branch.values() if len(ds) >= limit]
            bound = min(edges, default=math.inf)
            seen_all = bound > radius_km
            ranked = _first_per_practitioner(
                row[:3]
                for row in rows
                if row[3] and (row[0] <= radius_km if seen_all else row[0] < bound)
            )
            if seen_all:
                return ranked[:need], len(ranked) <= need
            if len(ranked) >= need:
                return ranked[:need], False
            growth = need / len(ranked) * 1.3 if ranked else 8.0
            limit = int(limit * min(max(growth, 2.0), 8.0))
            if limit > KNN_MAX_ROWS:  # rare matches: filter everything in the radius once
                rows = connection.execute(self._within_sql(filters, params), params).fetchall()
                ranked = _first_per_practitioner(rows)
                return ranked[:need], len(ranked) <= need

    def _within_sql(self, filters: Filters, params: dict[str, Any]) -> str:
        """Every match within the radius, with distances: the plan for rare filters."""
        return (
            self._near() + f" SELECT ST_Distance(l.geog, {self.POINT}, false) / 1000 AS d,"
            " l.practitioner_id, l.id FROM near AS l"
            " JOIN referral_practitioner AS p ON p.id = l.practitioner_id"
            f" WHERE {self._conditions(filters, params)}"
        )

    def count(
        self, session: Session, lat: float, lon: float, radius_km: float, filters: Filters
    ) -> int:
        """How many practitioners match within ``radius_km``.

        With a modality filter the radius is searched in that modality's partial index
        (``referral_search_point``), not among every location: at 100,000 listings a
        50 km count in a city drops from tens of milliseconds to a few.
        """
        params: dict[str, Any] = {"lat": lat, "lon": lon, "radius_m": radius_km * 1000}
        near, rest = self._near(), filters
        if filters.modalities:
            ids = self._modality_ids(session, filters)
            if not ids:
                return 0
            near = (
                "WITH near AS MATERIALIZED ("
                + " UNION ALL ".join(
                    f"(SELECT s.location_id AS id, s.practitioner_id, s.geog,"
                    f" {self._visit_radius(filters)} AS home_visit_radius_km"
                    f" FROM referral_search_point AS s WHERE s.modality_id = {m:d}"
                    f" AND ST_DWithin(s.geog, {self.POINT}, %(radius_m)s, false))"
                    for m in ids
                )
                + ")"
            )
            rest = replace(filters, modalities=())  # the partial indexes did that filter
        if filters.modalities and rest == Filters():
            # search points hold active practitioners only: nothing left to check
            sql = near + " SELECT count(DISTINCT l.practitioner_id) FROM near AS l"
        else:
            sql = (
                near + " SELECT count(DISTINCT l.practitioner_id) FROM near AS l"
                " JOIN referral_practitioner AS p ON p.id = l.practitioner_id"
                f" WHERE {self._conditions(rest, params)}"
            )
        connection = _driver(session)
        connection.execute("SET LOCAL jit = off")  # compiling costs more than the count
        return connection.execute(sql, params).fetchone()[0]


_RTREE = _RTreeIndex()
_POSTGIS = _PostGISIndex()
_SpatialIndex = _RTreeIndex | _PostGISIndex

"""Finding the nearest active practitioners: the one search interface, two index backends.

:func:`search` asks the database's spatial index for the ids and distances of the page and
reads the page's cards into frozen records (:class:`Hit`). SQLite: an R*Tree box that starts
at 0.5 km and grows until it holds enough matches, then exact great-circle distance in
Python, and one more statement for the cards. PostgreSQL: ``ORDER BY geog <-> point`` on
GiST indexes (a partial one per modality), distances from ``ST_Distance(..., false)`` on the
same sphere; the walk's first round also brings the cards and, when asked, the count, so a
typical search is one prepared statement. Both rank by that distance and break ties by
practitioner id, so they return the same hits in the same order.

The SQL is plain text on the DB-API connection: SQLAlchemy's statement compilation and
result machinery would cost more than the index look-up itself at directory scale. Every
value is a bound parameter except integers our code computes (modality ids read from the
database, row limits), which are written in so the planner can use them.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from geopy.distance import EARTH_RADIUS
from sqlalchemy.orm import Session

from referral.errors import InvalidInput
from referral.geo.distance import bounding_box, great_circle_km
from referral.languages import code_for, codes_of, display_name, matching_codes

#: half the earth's circumference: no two points are farther apart
EARTH_HALF_KM = math.pi * EARTH_RADIUS
#: first R*Tree box half-size; small, because the first box decides the cost in a city
FIRST_BOX_KM = 0.5
#: PostGIS: past this many nearest-first rows, filtering the whole radius once is cheaper
KNN_MAX_ROWS = 4096
#: the sphere PostGIS measures geography on when told not to use the spheroid (WGS84's
#: mean radius, (2a + b) / 3), so a unit-vector test agrees with ``ST_DWithin(..., false)``
POSTGIS_SPHERE_M = 6371008.7714
#: the planner starts from a filter's practitioners when at most this many have it
FILTER_FIRST_MAX = 1500
#: how long a filter value found common is remembered as common (seconds)
COMMON_FOR_S = 60.0
#: the total a search counts to when the caller gives no cap
DEFAULT_MAX_TOTAL = 500


@dataclass(frozen=True)
class Filters:
    """What a visitor narrows the search by; every filter given must hold (AND).

    ``modalities`` match any of the slugs (OR). ``condition``, ``fund`` are slugs;
    ``language`` is an ISO 639 code or a name (a macrolanguage matches its members:
    "Chinese" finds Mandarin and Cantonese speakers). ``home_visits`` keeps practitioners who visit
    and whose location's home-visit radius reaches the visitor.
    """

    modalities: tuple[str, ...] = ()
    condition: str | None = None
    fund: str | None = None
    accepting: bool = False
    home_visits: bool = False
    language: str | None = None
    telehealth: bool = False


@dataclass(frozen=True, slots=True)
class Term:
    """A modality or condition as a result card names it."""

    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class PractitionerSummary:
    """What a result card and the API's search results show of a practitioner (the
    listing page loads the full :class:`~referral.models.Practitioner`)."""

    id: int
    name: str
    accepting_new_patients: bool
    home_visits: bool
    modalities: tuple[Term, ...]
    conditions: tuple[Term, ...]
    telehealth: bool = False
    #: what the listing says of new patients (see :func:`referral.capacity.of`)
    capacity_status: str = "accepting"
    waitlist_weeks: int | None = None
    capacity_confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LocationSummary:
    """The location a hit was measured to; the same attribute names as
    :class:`~referral.models.Location`, so a template or serialiser takes either."""

    id: int
    name: str | None
    suburb: str | None
    state: str | None
    postcode: str | None
    country: str
    lat: float
    lon: float
    home_visit_radius_km: float | None


@dataclass(frozen=True, slots=True)
class Hit:
    """One result: read-only records built from one query, not ORM objects, which would
    cost as much as the index look-up and are never changed by a search."""

    practitioner: PractitionerSummary
    location: LocationSummary
    distance_km: float


class SearchTimeout(InvalidInput):
    """A search ran past its time limit: a 503 the visitor can act on."""

    def __init__(self) -> None:
        super().__init__(
            "search_timeout",
            "This search is taking longer than it should. Please try again in a moment,"
            " or search a smaller distance.",
            503,
        )


class Results:
    """One page of hits. ``total`` (practitioners within the radius) is exact up to the
    search's ``max_total``; beyond it ``total`` is that cap and ``total_capped`` is true
    ("500+"). It is counted on first read unless the search already knew it, so a caller
    that needs only the nearest few never pays for counting a dense city."""

    def __init__(
        self,
        hits: list[Hit],
        total: int | None,
        page: int,
        per_page: int,
        nearest_beyond: list[Hit] | None = None,
        *,
        count: Callable[[], tuple[int, bool]] | None = None,
        total_capped: bool = False,
    ) -> None:
        if total is None and count is None:
            raise ValueError("Results needs a total or a way to count it.")
        self.hits = hits
        self.page = page
        self.per_page = per_page
        #: the nearest beyond the radius, offered when nothing is inside it
        self.nearest_beyond = nearest_beyond or []
        self._total = total
        self._capped = total_capped
        self._count = count

    @property
    def total(self) -> int:
        if self._total is None:
            assert self._count is not None
            self._total, self._capped = self._count()
        return self._total

    @property
    def total_capped(self) -> bool:
        """Whether more match than ``total`` says (it stopped at the cap)."""
        self.total  # noqa: B018 - counted on first read
        return self._capped

    def __repr__(self) -> str:
        return f"<Results page={self.page} per_page={self.per_page} hits={len(self.hits)}>"


#: (distance_km, practitioner_id, location_id), nearest first
Ranked = list[tuple[float, int, int]]


class Nearest(NamedTuple):
    """What a spatial index's ``nearest`` found."""

    ranked: Ranked
    #: whether ``ranked`` holds every match in the radius
    exhausted: bool
    #: card rows of the locations seen, when the look-up brought them
    cards: Cards | None
    #: the matches in the radius, when asked for and the look-up counted them
    total: int | None


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

    The plan comes from cheap, bounded counts of each filter value (:func:`_plan`):
    nobody has it (an empty answer at once, no fallback to look for), few have it (read
    their locations, exact distance, sort: the total and the nearest beyond come free),
    or it is common (walk the spatial index nearest-first). ``Results.total`` is exact up
    to ``max_total``; ``with_total=True`` counts it now, inside the time limit.
    ``time_limit_ms`` bounds the whole search: past it :class:`SearchTimeout` (a 503).
    """
    filters = filters or Filters()
    index = _index_for(session)
    start = (page - 1) * per_page
    need = start + per_page
    with _time_limit(session, time_limit_ms):
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
        farthest = EARTH_HALF_KM
        if filters.home_visits:  # nobody visits farther than the largest visit radius
            farthest = _largest_visit_km(session)
            radius_km = min(radius_km, farthest)
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
        if fallback and not ranked and _anyone_matches(session, filters):
            beyond, _, cards, _ = index.nearest(session, lat, lon, farthest, filters, fallback)
            results.nearest_beyond = _page(session, beyond, cards)
    return results


def _largest_visit_km(session: Session) -> float:
    """The largest home-visit radius of any location (an index look-up): no home-visit
    match is farther from the visitor than that."""
    row = (
        _driver(session)
        .execute("SELECT max(home_visit_radius_km) FROM referral_location")
        .fetchone()
    )
    return float(row[0]) if row and row[0] is not None else 0.0


@contextmanager
def _time_limit(session: Session, ms: float | None) -> Iterator[None]:
    """Run the statements inside under a time limit; past it, :class:`SearchTimeout`.

    PostgreSQL: ``statement_timeout`` set transaction-locally. A view's read session is in
    autocommit mode (each statement its own transaction, where ``SET LOCAL`` would not
    last), so there the search becomes one short transaction: ``BEGIN``, the setting, the
    search, ``COMMIT``. Inside a caller's transaction the setting is put back after.
    SQLite: a progress handler that interrupts the statement once the time is up.
    """
    if not ms:
        yield
        return
    connection = _driver(session)
    if session.get_bind().dialect.name == "postgresql":
        import psycopg

        try:
            if connection.autocommit:
                with connection.transaction():
                    connection.execute(
                        "SELECT set_config('statement_timeout', %s, true)", (f"{int(ms)}ms",)
                    )
                    yield
            else:
                (old,) = connection.execute(
                    "SELECT current_setting('statement_timeout'),"
                    " set_config('statement_timeout', %s, true)",
                    (f"{int(ms)}ms",),
                ).fetchone()[:1]
                yield
                connection.execute("SELECT set_config('statement_timeout', %s, true)", (old,))
        except psycopg.errors.QueryCanceled:
            raise SearchTimeout() from None
        return
    deadline = time.monotonic() + ms / 1000
    connection.set_progress_handler(lambda: time.monotonic() > deadline, 20_000)
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise SearchTimeout() from None
        raise
    finally:
        connection.set_progress_handler(None, 0)


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


def _language_codes(language: str) -> tuple[str, ...]:
    """The codes a language filter matches (an unknown name matches only itself)."""
    code = code_for(language)
    return matching_codes(code) if code else (language.strip().lower(),)


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
        first = f"ST_Distance(l.geog, {_PostGISIndex.POINT}, false) / 1000"
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
        params.update(_PostGISIndex._params(lat, lon, 0.0))
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


def optimize(session: Session) -> None:
    """Lay the index out for reading and refresh the planner's statistics; commits.

    PostgreSQL: ``referral_search_point`` is rewritten in modality, then geohash order,
    so the matches around a point share a few pages instead of one page each (the 25 km
    count at 100,000 listings: 1.8 -> 1.0 ms). Rows written later go at the end: run it
    after a bulk import. The rewrite locks the table, so searches wait for it (a second
    or two per 100,000 listings). SQLite: ``PRAGMA optimize``.
    """
    connection = _driver(session)
    if session.get_bind().dialect.name == "postgresql":
        connection.execute("LOCK TABLE referral_search_point IN ACCESS EXCLUSIVE MODE")
        connection.execute(
            "CREATE TEMP TABLE referral_search_sorted ON COMMIT DROP AS"
            " SELECT * FROM referral_search_point"
            " ORDER BY modality_id, ST_GeoHash(geog::geometry, 12), location_id"
        )
        connection.execute("TRUNCATE referral_search_point")
        columns = "location_id, modality_id, practitioner_id, geog"  # the rest are generated
        connection.execute(
            f"INSERT INTO referral_search_point ({columns})"
            f" SELECT {columns} FROM referral_search_sorted"
        )
        connection.execute("ANALYZE referral_search_point")
    else:
        connection.execute("PRAGMA optimize")
    session.commit()


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


def listed_languages(session: Session) -> list[dict[str, str]]:
    """The languages practitioners with an active listing speak, as ``{"code", "name"}``
    sorted by name: what the search form offers."""
    rows = _driver(session).execute(
        "SELECT DISTINCT pl.code FROM referral_practitioner_language AS pl"
        " JOIN referral_practitioner AS p ON p.id = pl.practitioner_id"
        " WHERE p.status = 'active'"
    )
    languages = [{"code": code, "name": display_name(code)} for (code,) in rows]
    return sorted(languages, key=lambda language: (language["name"].casefold(), language["code"]))


def refresh_after_bulk_load(session: Session) -> None:
    """Rebuild the language codes from every practitioner's language names: for a bulk
    load that wrote ``referral_practitioner`` without the ORM (which keeps them on every
    flush). Commits."""
    connection = _driver(session)
    rows = connection.execute("SELECT id, languages FROM referral_practitioner").fetchall()
    mark = _marker(session.get_bind().dialect.name)
    links = []
    for practitioner_id, languages in rows:
        if isinstance(languages, str):
            languages = json.loads(languages)
        links += [(practitioner_id, code) for code in codes_of(languages or [])]
    connection.execute("DELETE FROM referral_practitioner_language")
    cursor = connection.cursor()
    params = [{"p": p, "c": c} for p, c in links]
    cursor.executemany(
        "INSERT INTO referral_practitioner_language (practitioner_id, code)"
        f" VALUES ({mark('p')}, {mark('c')})",
        params,
    )
    session.commit()


def modality_ids(session: Session, slugs: tuple[str, ...]) -> dict[str, int]:
    """The ids of the modalities with these slugs (unknown slugs are left out).

    Modalities are only ever added (:func:`referral.migrate.sync_taxonomy` inserts or
    renames, never deletes or re-keys), so a slug's id, once found, holds for the life of
    the process: it is remembered per engine, and a search by modality asks the database
    only about slugs it has not seen. Unknown slugs are asked every time, so a modality
    added later is found at once.
    """
    bind = session.get_bind()
    known = _MODALITY_IDS.setdefault(getattr(bind, "engine", bind), {})
    missing = [slug for slug in slugs if slug not in known]
    if missing:
        mark = _marker(bind.dialect.name)
        params = {f"slug{n}": slug for n, slug in enumerate(missing)}
        marks = ", ".join(mark(name) for name in params)
        rows = _driver(session).execute(
            f"SELECT slug, id FROM referral_modality WHERE slug IN ({marks})", params
        )
        known.update({slug: int(id_) for slug, id_ in rows})
    return {slug: known[slug] for slug in slugs if slug in known}


_MODALITY_IDS: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()


def _page(session: Session, ranked: Ranked, cards: Cards | None) -> list[Hit]:
    """The hits of ``ranked``: from the cards the index brought, else loaded now."""
    return _hits(ranked, cards) if cards is not None else _load(session, ranked)


def _load(session: Session, ranked: Ranked) -> list[Hit]:
    """A page's hits from one statement (when the index did not bring the cards)."""
    if not ranked:
        return []
    dialect = session.get_bind().dialect.name
    params: dict[str, Any] = {}
    if dialect == "postgresql":
        params["ids"] = [location_id for _, _, location_id in ranked]
        where = "l.id = ANY(%(ids)s)"
    else:
        for n, (_, _, location_id) in enumerate(ranked):
            params[f"id{n}"] = location_id
        where = f"l.id IN ({', '.join(f':id{n}' for n in range(len(ranked)))})"
    sql = (
        f"SELECT {_card_columns(dialect, 'l')} FROM referral_location AS l"
        f" JOIN referral_practitioner AS p ON p.id = l.practitioner_id WHERE {where}"
    )
    return _hits(ranked, {row[0]: row for row in _driver(session).execute(sql, params)})


@cache  # the same few strings every search
def _card_columns(dialect: str, location: str) -> str:
    """What a hit shows: the location (alias ``location``), its practitioner (``p``), and
    the practitioner's modalities and conditions as ``[slug, name]`` pairs: a 2-D text
    array on PostgreSQL (psycopg reads it in C; JSON took a tenth of a search's Python),
    a JSON array on SQLite."""
    if dialect == "postgresql":
        terms = "array_agg(ARRAY[t.slug, t.name])"
    else:
        terms = "json_group_array(json_array(t.slug, t.name))"
    loc = location
    return (
        f"{loc}.id, {loc}.name, {loc}.suburb, {loc}.state, {loc}.postcode, {loc}.country,"
        f" {loc}.lat, {loc}.lon, {loc}.home_visit_radius_km,"
        " p.id, p.name, p.accepting_new_patients, p.home_visits, p.telehealth,"
        f" (SELECT {terms} FROM referral_practitioner_modality AS pm"
        "  JOIN referral_modality AS t ON t.id = pm.modality_id"
        "  WHERE pm.practitioner_id = p.id),"
        f" (SELECT {terms} FROM referral_practitioner_condition AS pc"
        "  JOIN referral_condition AS t ON t.id = pc.condition_id"
        "  WHERE pc.practitioner_id = p.id),"
        " p.capacity_status, p.waitlist_weeks, p.capacity_confirmed_at"
    )


#: location id -> a row of :func:`_card_columns`
Cards = dict[int, Sequence[Any]]


def _hits(ranked: Ranked, cards: Cards) -> list[Hit]:
    """Hits in ``ranked`` order from rows of :func:`_card_columns`."""
    hits = []
    for distance, _, location_id in ranked:
        row = cards.get(location_id)
        if row is None:  # deleted between the index look-up and the page's statement
            continue
        location = LocationSummary(*row[:6], float(row[6]), float(row[7]), row[8])
        practitioner = PractitionerSummary(
            row[9],
            row[10],
            bool(row[11]),
            bool(row[12]),
            _terms(row[14]),
            _terms(row[15]),
            bool(row[13]),
            *row[16:19],
        )
        hits.append(Hit(practitioner, location, distance))
    return hits


def _terms(aggregated: str | list[list[str]] | None) -> tuple[Term, ...]:
    """Terms from ``[slug, name]`` pairs (JSON text from SQLite, lists from psycopg),
    sorted by name here, not by the database: collations differ."""
    if isinstance(aggregated, str):
        aggregated = json.loads(aggregated)
    terms = (Term(slug, name) for slug, name in aggregated or ())
    return tuple(sorted(terms, key=lambda t: (t.name.casefold(), t.slug)))


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
    if filters.telehealth:
        params["telehealth"] = True
        where.append(f"p.telehealth = {mark('telehealth')}")
    if filters.language:
        marks = []
        for n, code in enumerate(_language_codes(filters.language)):
            params[f"language{n}"] = code
            marks.append(mark(f"language{n}"))
        where.append(
            "EXISTS (SELECT 1 FROM referral_practitioner_language pl"
            f" WHERE pl.practitioner_id = {practitioner_id} AND pl.code IN ({', '.join(marks)}))"
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

    filter_first = staticmethod(_filter_first)

    def _within(
        self, session: Session, lat: float, lon: float, box_km: float, filters: Filters
    ) -> Ranked:
        home_visits = filters.home_visits
        found = []
        for location_id, practitioner_id, plat, plon, visit_km in self._rows(
            session, lat, lon, box_km, filters
        ):
            distance = great_circle_km(lat, lon, plat, plon)
            if distance > box_km or (home_visits and distance > visit_km):
                continue
            found.append((distance, practitioner_id, location_id))
        return _first_per_practitioner(found)

    def _rows(
        self, session: Session, lat: float, lon: float, box_km: float, filters: Filters
    ) -> Any:
        """A cursor over the matches in the box around the circle of ``box_km``."""
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
        return _driver(session).execute(sql, params)

    def nearest(
        self,
        session: Session,
        lat: float,
        lon: float,
        radius_km: float,
        filters: Filters,
        need: int,
        *,
        with_total: bool = False,
    ) -> Nearest:
        """Up to ``need`` nearest matches and whether those are all there are; no cards
        (SQLite reads the page's in-process, as cheaply as a join here) and no total
        (a count in a dense city costs more than the look-up: it waits to be read)."""
        radius_km = min(radius_km, EARTH_HALF_KM)
        box_km = min(FIRST_BOX_KM, radius_km)
        while True:
            ranked = self._within(session, lat, lon, box_km, filters)
            if box_km >= radius_km:
                return Nearest(ranked[:need], len(ranked) <= need, None, None)
            if len(ranked) >= need:
                return Nearest(ranked[:need], False, None, None)
            # grow by the area that should hold enough at the density seen, at least 2x
            growth = math.sqrt(need / len(ranked)) * 1.2 if ranked else 4.0
            box_km = min(box_km * min(max(growth, 2.0), 8.0), radius_km)

    def count(
        self, session: Session, lat: float, lon: float, radius_km: float, filters: Filters
    ) -> int:
        """How many practitioners match within ``radius_km``."""
        return len(self._within(session, lat, lon, min(radius_km, EARTH_HALF_KM), filters))

    def _inner_count(
        self,
        session: Session,
        lat: float,
        lon: float,
        radius_km: float,
        filters: Filters,
        most: int,
    ) -> bool:
        """Whether at least ``most`` practitioners match inside a box drawn within the
        circle (so all of them are within the radius): one statement that SQLite stops
        at ``most``, with no distance to compute. In a dense city that settles a capped
        total; elsewhere (False) the caller counts exactly."""
        if radius_km > 1000 or abs(lat) > 70:
            return False
        half_km = radius_km / math.sqrt(2) * 0.98  # the inscribed square, with a margin
        dlat = math.degrees(half_km / EARTH_RADIUS)
        widest = math.cos(math.radians(max(0.0, abs(lat) - dlat)))  # lon km largest there
        dlon = math.degrees(half_km / (EARTH_RADIUS * widest))
        if lon - dlon < -180 or lon + dlon > 180:
            return False
        params: dict[str, Any] = {
            "a": lat - dlat,
            "b": lat + dlat,
            "c": lon - dlon,
            "d": lon + dlon,
        }
        where = _filter_sql(filters, params, "sqlite", "r.practitioner_id")
        sql = (
            "SELECT count(*) FROM (SELECT DISTINCT r.practitioner_id"
            " FROM referral_location_rtree AS r"
            " CROSS JOIN referral_practitioner AS p ON p.id = r.practitioner_id"
            " WHERE r.min_lat >= :a AND r.max_lat <= :b AND r.min_lon >= :c"
            f" AND r.max_lon <= :d AND {' AND '.join(where)} LIMIT {int(most):d})"
        )
        return _driver(session).execute(sql, params).fetchone()[0] >= most

    def count_upto(
        self,
        session: Session,
        lat: float,
        lon: float,
        radius_km: float,
        filters: Filters,
        most: int,
    ) -> int:
        """How many practitioners match within ``radius_km``, counting stops at ``most``:
        the R*Tree yields rows as it finds them, so a dense city reads ``most`` of them,
        not the whole radius."""
        radius_km = min(radius_km, EARTH_HALF_KM)
        home_visits = filters.home_visits
        if not home_visits and self._inner_count(session, lat, lon, radius_km, filters, most):
            return most
        seen: set[int] = set()
        for _, practitioner_id, plat, plon, visit_km in self._rows(
            session, lat, lon, radius_km, filters
        ):
            if practitioner_id in seen:
                continue
            distance = great_circle_km(lat, lon, plat, plon)
            if distance > radius_km or (home_visits and distance > visit_km):
                continue
            seen.add(practitioner_id)
            if len(seen) >= most:
                break
        return len(seen)


class _PostGISIndex:
    """PostgreSQL: a GiST index drives. A MATERIALIZED CTE takes the k locations nearest
    the point (``ORDER BY geog <-> point LIMIT k``: per wanted modality on
    ``referral_search_point``'s partial indexes, else on ``referral_location``); only
    those are joined and filtered, and k grows until enough match or the k-th is beyond
    the radius. The count tests the radius with unit vectors (:meth:`_within`).

    Left to itself the planner misjudges ``ST_DWithin``'s selectivity and starts from the
    filter tables; and a second sort key or a WHERE beside the KNN order makes it sort
    the whole table. Hence the CTE of plain KNN subqueries."""

    POINT = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography"

    filter_first = staticmethod(_filter_first)

    def count_upto(
        self,
        session: Session,
        lat: float,
        lon: float,
        radius_km: float,
        filters: Filters,
        most: int,
    ) -> int:
        """How many practitioners match within ``radius_km``, counting stops at ``most``.

        The matching locations in the radius are read in index order under a ``LIMIT``,
        which stops the scan early; practitioners are told apart in Python. When the
        rows hit the limit but hold fewer than ``most`` practitioners (several locations
        each), the limit doubles.
        """
        ids = self._modality_ids(session, filters)
        if ids == []:
            return 0
        params = self._params(lat, lon, radius_km)
        if ids is None:
            source = "referral_location AS l"
        else:
            source = (
                "("
                + " UNION ALL ".join(
                    f"(SELECT s.location_id AS id, s.practitioner_id, s.geog,"
                    f" {self._visit_radius(filters)} AS home_visit_radius_km"
                    f" FROM referral_search_point AS s WHERE s.modality_id = {m:d}"
                    f" AND {self._within('s')})"
                    for m in ids
                )
                + ") AS l"
            )
        rest = replace(filters, modalities=()) if ids is not None else filters
        within = f"{self._within('l')} AND " if ids is None else ""
        limit = most
        connection = _driver(session)
        while True:
            sql = (
                f"SELECT l.practitioner_id FROM {source}"
                " JOIN referral_practitioner AS p ON p.id = l.practitioner_id"
                f" WHERE {within}{self._conditions(rest, params)} LIMIT {limit:d}"
            )
            rows = connection.execute(sql, params).fetchall()
            distinct = len({row[0] for row in rows})
            if len(rows) < limit or distinct >= most:
                return min(distinct, most)
            limit *= 2

    @staticmethod
    def _params(lat: float, lon: float, radius_km: float) -> dict[str, Any]:
        """The point and radius, and for :meth:`_within` the point's unit vector and the
        cosine of the radius's angle at the earth's centre."""
        phi, lam = math.radians(lat), math.radians(lon)
        angle = min(radius_km * 1000 / POSTGIS_SPHERE_M, math.pi)
        return {
            "lat": lat,
            "lon": lon,
            "radius_m": radius_km * 1000,
            "ux": math.cos(phi) * math.cos(lam),
            "uy": math.cos(phi) * math.sin(lam),
            "uz": math.sin(phi),
            "cos_r": math.cos(angle),
        }

    def _within(self, alias: str) -> str:
        """``alias`` within the radius, exactly as ``ST_DWithin(geog, point, r, false)``
        decides it but 2-3x faster: the GiST index finds the candidates in the radius's
        box (``_ST_Expand`` is the box ``ST_DWithin`` itself gives the index), then a dot
        product of unit vectors (columns from migration 0003) keeps those within it."""
        return (
            f"{alias}.geog && _ST_Expand({self.POINT}, %(radius_m)s)"
            f" AND {alias}.geog_x * %(ux)s + {alias}.geog_y * %(uy)s"
            f" + {alias}.geog_z * %(uz)s >= %(cos_r)s"
        )

    def _near(self) -> str:
        return (
            "WITH near AS MATERIALIZED (SELECT l.id, l.practitioner_id, l.geog,"
            " l.home_visit_radius_km FROM referral_location AS l"
            f" WHERE {self._within('l')})"
        )

    def _conditions(self, filters: Filters, params: dict[str, Any]) -> str:
        where = _filter_sql(filters, params, "postgresql", "l.practitioner_id")
        if filters.home_visits:
            where.append(f"ST_DWithin(l.geog, {self.POINT}, l.home_visit_radius_km * 1000, false)")
        return " AND ".join(where)

    def _branches(self, ids: list[int] | None, filters: Filters, limit: int) -> list[str]:
        """One nearest-first subquery per wanted modality id (each walks that modality's
        partial index), or with no modality filter (``ids`` None) one over every location.

        The modality ids (integers from the database) and ``limit`` are written into
        the SQL: the planner then matches the partial index, and PostgreSQL can keep
        one plan for the prepared statement instead of planning every search (with
        ``LIMIT $1`` the generic plan expects a tenth of the table and joins by hash).
        """
        if ids is None:
            return [
                "(SELECT l.id, l.practitioner_id, l.geog, l.home_visit_radius_km, 0 AS branch"
                f" FROM referral_location AS l ORDER BY l.geog <-> {self.POINT}"
                f" LIMIT {limit:d})"
            ]
        return [
            f"(SELECT s.location_id AS id, s.practitioner_id, s.geog,"
            f" {self._visit_radius(filters)} AS home_visit_radius_km, {m:d} AS branch"
            f" FROM referral_search_point AS s"
            f" WHERE s.modality_id = {m:d} ORDER BY s.geog <-> {self.POINT} LIMIT {limit:d})"
            for m in ids
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
        *,
        with_total: bool = False,
    ) -> Nearest:
        """Up to ``need`` nearest matches, whether those are all there are, the cards of
        the rows seen and, ``with_total``, the count: the first round's statement brings
        both, so a typical search is one statement and one round trip."""
        ids = self._modality_ids(session, filters)
        if ids == []:  # no such modality: nothing can match
            return Nearest([], True, {}, 0)
        limit = need * 5 + 10  # one branch: enough when one location in five matches
        if ids is not None:
            limit = need + 4  # a branch holds only its modality; spare rows for duplicates
        params = self._params(lat, lon, radius_km)
        rest = replace(filters, modalities=())  # the branches did the modality filter
        conditions = self._conditions(rest, params)
        join = " FROM near AS l JOIN referral_practitioner AS p ON p.id = l.practitioner_id"
        # an uncorrelated subquery: PostgreSQL counts once, whatever the number of rows
        total = f"({self._count_sql(ids, filters, params)})" if with_total else "NULL"
        connection = _driver(session)
        counted = None
        first = True
        while True:
            branches = " UNION ALL ".join(self._branches(ids, filters, limit))
            select = (
                f"WITH near AS MATERIALIZED ({branches})"
                f" SELECT ST_Distance(l.geog, {self.POINT}, false) / 1000, l.practitioner_id,"
                f" l.id, {conditions}, l.branch"
            )
            sql = select + join
            if first:  # later rounds, for rarer matches, would bring more cards than used
                sql = (
                    f"{select}, {total}, {_card_columns('postgresql', 'loc')}{join}"
                    " JOIN referral_location AS loc ON loc.id = l.id"
                )
            rows = connection.execute(sql, params).fetchall()
            # a later round brings no cards: the page's are loaded afterwards
            cards = {row[2]: row[6:] for row in rows} if first else None
            if first and with_total:
                # no rows: no point of the wanted modalities anywhere, so none in the radius
                counted = rows[0][5] if rows else 0
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
                return Nearest(ranked[:need], len(ranked) <= need, cards, counted)
            if len(ranked) >= need:
                return Nearest(ranked[:need], False, cards, counted)
            growth = need / len(ranked) * 1.3 if ranked else 8.0
            limit = int(limit * min(max(growth, 2.0), 8.0))
            first = False
            if limit > KNN_MAX_ROWS:  # rare matches: filter everything in the radius once
                rows = connection.execute(self._within_sql(filters, params), params).fetchall()
                ranked = _first_per_practitioner(rows)
                return Nearest(ranked[:need], len(ranked) <= need, None, counted)

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
        """How many practitioners match within ``radius_km``."""
        ids = self._modality_ids(session, filters)
        if ids == []:  # no such modality: nothing can match
            return 0
        params = self._params(lat, lon, radius_km)
        sql = self._count_sql(ids, filters, params)
        return _driver(session).execute(sql, params).fetchone()[0]

    @staticmethod
    def _modality_ids(session: Session, filters: Filters) -> list[int] | None:
        """The wanted modalities' ids, sorted (empty: none exists), or None when the
        search is not by modality."""
        if not filters.modalities:
            return None
        return sorted(modality_ids(session, filters.modalities).values())

    def _count_sql(self, ids: list[int] | None, filters: Filters, params: dict[str, Any]) -> str:
        """A statement counting the practitioners that match within the radius, for the
        wanted modality ``ids`` (None: any modality).

        With a modality filter the radius is searched in that modality's partial index
        (``referral_search_point``), not among every location: at 100,000 listings a
        50 km count in a city drops from tens of milliseconds to a few.
        """
        count = "SELECT count(DISTINCT l.practitioner_id)"
        if ids is None:
            return (
                f"{self._near()} {count} FROM near AS l"
                " JOIN referral_practitioner AS p ON p.id = l.practitioner_id"
                f" WHERE {self._conditions(filters, params)}"
            )
        rest = replace(filters, modalities=())  # the partial indexes do that filter
        if rest == Filters():
            # search points hold active practitioners only: nothing left to check, so
            # no join for the planner to misorder and no CTE to materialise (0.2 ms)
            points = " UNION ALL ".join(
                f"(SELECT s.practitioner_id FROM referral_search_point AS s"
                f" WHERE s.modality_id = {m:d} AND {self._within('s')})"
                for m in ids
            )
            return f"{count} FROM ({points}) AS l"
        points = " UNION ALL ".join(
            f"(SELECT s.location_id AS id, s.practitioner_id, s.geog,"
            f" {self._visit_radius(filters)} AS home_visit_radius_km"
            f" FROM referral_search_point AS s WHERE s.modality_id = {m:d}"
            f" AND {self._within('s')})"
            for m in ids
        )
        return (
            f"WITH near AS MATERIALIZED ({points}) {count} FROM near AS l"
            " JOIN referral_practitioner AS p ON p.id = l.practitioner_id"
            f" WHERE {self._conditions(rest, params)}"
        )


_RTREE = _RTreeIndex()
_POSTGIS = _PostGISIndex()
_SpatialIndex = _RTreeIndex | _PostGISIndex

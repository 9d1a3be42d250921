"""PostgreSQL's spatial index: GiST nearest-first walks on PostGIS geography."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from referral.search.cards import _card_columns, _first_per_practitioner
from referral.search.planner import _filter_first
from referral.search.records import Filters, Nearest
from referral.search.sql import POSTGIS_POINT, _driver, _filter_sql, modality_ids, postgis_params

#: past this many nearest-first rows, filtering the whole radius once is cheaper
KNN_MAX_ROWS = 4096


class _PostGISIndex:
    """PostgreSQL: a GiST index drives. A MATERIALIZED CTE takes the k locations nearest
    the point (``ORDER BY geog <-> point LIMIT k``: per wanted modality on
    ``referral_search_point``'s partial indexes, else on ``referral_location``); only
    those are joined and filtered, and k grows until enough match or the k-th is beyond
    the radius. The count tests the radius with unit vectors (:meth:`_within`).

    Left to itself the planner misjudges ``ST_DWithin``'s selectivity and starts from the
    filter tables; and a second sort key or a WHERE beside the KNN order makes it sort
    the whole table. Hence the CTE of plain KNN subqueries."""

    POINT = POSTGIS_POINT

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

    _params = staticmethod(postgis_params)

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

"""SQLite's spatial index: the R*Tree (``referral_location_rtree``) drives the search."""

from __future__ import annotations

import math
from typing import Any

from geopy.distance import EARTH_RADIUS
from sqlalchemy.orm import Session

from referral.geo.distance import bounding_box, great_circle_km
from referral.search.cards import _first_per_practitioner
from referral.search.planner import _filter_first
from referral.search.records import Filters, Nearest, Ranked
from referral.search.sql import EARTH_HALF_KM, _driver, _filter_sql

#: first R*Tree box half-size; small, because the first box decides the cost in a city
FIRST_BOX_KM = 0.5


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

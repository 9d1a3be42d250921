"""The one small interface both spatial indexes implement, and which one a session uses."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session

from referral.search.postgis import _PostGISIndex
from referral.search.records import Filters, Nearest, Ranked
from referral.search.sqlite import _RTreeIndex


class SpatialIndex(Protocol):
    """What :func:`referral.search.search` asks of a database's spatial index."""

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
        """Up to ``need`` nearest matches within ``radius_km`` and whether those are all."""
        ...

    def count_upto(
        self,
        session: Session,
        lat: float,
        lon: float,
        radius_km: float,
        filters: Filters,
        most: int,
    ) -> int:
        """How many practitioners match within ``radius_km``, counting stops at ``most``."""
        ...

    def count(
        self, session: Session, lat: float, lon: float, radius_km: float, filters: Filters
    ) -> int:
        """How many practitioners match within ``radius_km`` (exact, uncapped)."""
        ...

    def filter_first(
        self, session: Session, lat: float, lon: float, filters: Filters, plan: tuple[str, Any]
    ) -> Ranked | None:
        """Every match anywhere, ranked, read from the plan's few practitioners; None when
        they are more than the plan expected."""
        ...


_RTREE = _RTreeIndex()
_POSTGIS = _PostGISIndex()


def _index_for(session: Session) -> SpatialIndex:
    """The spatial index of the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _POSTGIS
    if dialect == "sqlite":
        return _RTREE
    raise NotImplementedError(f"No spatial search for the {dialect} database.")

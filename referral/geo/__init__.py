"""Where things are: postcode centroids, geocoding and distances."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """A place resolved from what the visitor typed, with how it was found."""

    lat: float
    lon: float
    label: str = ""
    source: str = ""


class LocationNotFound(LookupError):
    """Nothing matched what the visitor typed; the message is for the person."""

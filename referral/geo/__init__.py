"""Where things are: postcode centroids, geocoding and distances."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Alternative:
    """Another place the visitor's text could mean ("Newtown VIC 3220")."""

    label: str
    postcode: str
    state: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Point:
    """A place resolved from what the visitor typed, with how it was found.

    ``alternatives``: other places the text could mean (it was ambiguous); ``attribution``:
    the credit the data's licence asks for wherever this point is shown (a geocoder's).
    """

    lat: float
    lon: float
    label: str = ""
    source: str = ""
    alternatives: tuple[Alternative, ...] = ()
    attribution: str = ""


class LocationNotFound(LookupError):
    """Nothing matched what the visitor typed; the message is for the person.

    ``suggestions``: labels of places the person may have meant. ``remote``: whether a
    remote geocoder may still be asked (``False``: the text cannot be a place there).
    """

    def __init__(
        self, message: str, *, suggestions: tuple[str, ...] = (), remote: bool = True
    ) -> None:
        super().__init__(message)
        self.suggestions = suggestions
        self.remote = remote

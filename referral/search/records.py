"""The search's records: what a visitor asks for (:class:`Filters`), what a search answers
(:class:`Results` of :class:`Hit`), and what a spatial index hands back (:class:`Nearest`).

Frozen dataclasses built from one query's rows, not ORM objects: those would cost as much
as the index look-up, and a search never changes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from referral.errors import InvalidInput

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
    business_name: str | None = None
    #: the language names as the listing gives them
    languages: tuple[str, ...] = ()
    #: the health funds the practitioner is registered with
    funds: tuple[Term, ...] = ()
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


#: location id -> a row of :func:`referral.search.cards._card_columns`
Cards = dict[int, Sequence[Any]]

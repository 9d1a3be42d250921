from __future__ import annotations

import pytest
from geopy.distance import geodesic, great_circle

from referral.geo.distance import bounding_box, great_circle_km
from referral.search import Filters, search

SYDNEY = (-33.8688, 151.2093)
# Known places and their order by distance from Sydney's GPO
PLACES = {
    "Surry Hills": (-33.8840, 151.2120),  # ~1.7 km
    "North Sydney": (-33.8390, 151.2070),  # ~3.3 km
    "Parramatta": (-33.8150, 151.0010),  # ~20 km
    "Newcastle": (-32.9270, 151.7760),  # ~117 km
    "Melbourne": (-37.8140, 144.9633),  # ~714 km
}


@pytest.fixture
def directory(add_practitioner):
    return {name: add_practitioner(name, point) for name, point in PLACES.items()}


def test_great_circle_matches_geopy():
    for point in PLACES.values():
        assert great_circle_km(*SYDNEY, *point) == pytest.approx(
            great_circle(SYDNEY, point).km, rel=1e-9
        )


def test_results_in_known_order_with_distances_within_half_a_percent(session, directory):
    results = search(session, *SYDNEY, radius_km=1000)
    names = [hit.practitioner.name for hit in results.hits]
    assert names == ["Surry Hills", "North Sydney", "Parramatta", "Newcastle", "Melbourne"]
    for hit in results.hits:
        true_km = geodesic(SYDNEY, PLACES[hit.practitioner.name]).km
        assert hit.distance_km == pytest.approx(true_km, rel=0.005)
    assert results.total == 5


def test_radius_excludes_farther_practitioners(session, directory):
    results = search(session, *SYDNEY, radius_km=25)
    assert [h.practitioner.name for h in results.hits] == [
        "Surry Hills",
        "North Sydney",
        "Parramatta",
    ]
    assert results.nearest_beyond == []


def test_nothing_in_range_offers_nearest_beyond(session, directory):
    results = search(session, -31.95, 115.86, radius_km=10, fallback=2)  # Perth
    assert results.total == 0
    assert results.hits == []
    assert [h.practitioner.name for h in results.nearest_beyond] == ["Melbourne", "Parramatta"]


def test_only_active_listings_are_found(session, add_practitioner):
    add_practitioner("Pending", SYDNEY, status="pending")
    add_practitioner("Suspended", SYDNEY, status="suspended")
    add_practitioner("Active", SYDNEY)
    assert [h.practitioner.name for h in search(session, *SYDNEY, radius_km=5).hits] == ["Active"]


def test_modality_filter_combines_with_or(session, add_practitioner):
    add_practitioner("Massage", SYDNEY, modalities=("remedial-massage",))
    add_practitioner("Physio", PLACES["Surry Hills"], modalities=("physiotherapy",))
    add_practitioner("Yoga", PLACES["North Sydney"], modalities=("yoga",))
    found = search(session, *SYDNEY, radius_km=10, filters=Filters(("physiotherapy", "yoga")))
    assert [h.practitioner.name for h in found.hits] == ["Physio", "Yoga"]


def test_practitioner_with_two_locations_appears_once_at_the_nearest(session, add_practitioner):
    add_practitioner("Two clinics", PLACES["Parramatta"], PLACES["Surry Hills"])
    results = search(session, *SYDNEY, radius_km=50)
    assert results.total == 1
    assert results.hits[0].location.lat == pytest.approx(PLACES["Surry Hills"][0])


def test_paging(session, directory):
    first = search(session, *SYDNEY, radius_km=1000, per_page=2, page=1)
    third = search(session, *SYDNEY, radius_km=1000, per_page=2, page=3)
    assert [h.practitioner.name for h in first.hits] == ["Surry Hills", "North Sydney"]
    assert [h.practitioner.name for h in third.hits] == ["Melbourne"]
    assert first.total == third.total == 5


def test_bounding_box_contains_the_circle():
    min_lat, max_lat, min_lon, max_lon = bounding_box(*SYDNEY, 100)
    assert great_circle_km(min_lat, SYDNEY[1], *SYDNEY) == pytest.approx(100, rel=1e-6)
    assert great_circle_km(max_lat, SYDNEY[1], *SYDNEY) == pytest.approx(100, rel=1e-6)
    assert min_lon < SYDNEY[1] - 1.0 and max_lon > SYDNEY[1] + 1.0
    # across the antimeridian the box widens to every longitude
    assert bounding_box(-17.0, 179.9, 50)[2:] == (-180.0, 180.0)

from __future__ import annotations

import random

import pytest
from geopy.distance import geodesic, great_circle
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from referral import migrate
from referral import search as search_module
from referral.db import make_engine
from referral.geo.distance import bounding_box, great_circle_km
from referral.languages import codes_of
from referral.models import (
    Base,
    Condition,
    HealthFund,
    Location,
    Modality,
    Practitioner,
    PractitionerFund,
)
from referral.search import Filters, Term, _language_codes, grid, search
from tests.conftest import PG_URL, TAXONOMY

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


# --- filters, on real rows --------------------------------------------------------------


@pytest.fixture
def clinic(add_practitioner, session):
    """Six practitioners around Sydney, each differing in one filterable way."""
    funds = {f.slug: f for f in session.scalars(select(HealthFund))}
    people = {
        "Massage": add_practitioner(
            "Massage", SYDNEY, conditions=("low-back-pain",), languages=["English"]
        ),
        "Physio": add_practitioner(
            "Physio",
            PLACES["Surry Hills"],
            modalities=("physiotherapy",),
            conditions=("low-back-pain", "neck-pain"),
            languages=["English", "Greek"],
            accepting_new_patients=False,
        ),
        "Osteo": add_practitioner(
            "Osteo",
            PLACES["North Sydney"],
            modalities=("osteopathy",),
            conditions=("low-back-pain",),
            home_visits=True,
        ),
        "Yoga": add_practitioner(
            "Yoga", PLACES["Parramatta"], modalities=("yoga",), conditions=("low-back-pain",)
        ),
        "Myo": add_practitioner(
            "Myo", PLACES["Newcastle"], modalities=("myotherapy",), conditions=("sciatica",)
        ),
        "Visiting": add_practitioner(
            "Visiting", PLACES["Parramatta"], home_visits=True, languages=["greek"]
        ),
    }
    people["Massage"].funds = [PractitionerFund(fund=funds["bupa"], provider_number="B1")]
    people["Yoga"].funds = [
        PractitionerFund(fund=funds["bupa"]),
        PractitionerFund(fund=funds["hcf"]),
    ]
    people["Osteo"].locations[0].home_visit_radius_km = 5.0  # ~3.3 km away: reaches Sydney GPO
    people["Visiting"].locations[0].home_visit_radius_km = 10.0  # ~20 km away: does not
    session.commit()
    return people


def _names(results):
    return [h.practitioner.name for h in results.hits]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(), ["Massage", "Physio", "Osteo", "Yoga", "Visiting", "Myo"]),
        # a condition finds every modality that treats it, nearest first
        (Filters(condition="low-back-pain"), ["Massage", "Physio", "Osteo", "Yoga"]),
        (Filters(condition="sciatica"), ["Myo"]),
        (Filters(condition="headache"), []),
        (Filters(fund="bupa"), ["Massage", "Yoga"]),
        (Filters(fund="hcf"), ["Yoga"]),
        (Filters(accepting=True), ["Massage", "Osteo", "Yoga", "Visiting", "Myo"]),
        (Filters(home_visits=True), ["Osteo"]),
        (Filters(language="GREEK"), ["Physio", "Visiting"]),
        (Filters(modalities=("yoga", "osteopathy")), ["Osteo", "Yoga"]),
        (Filters(modalities=("physiotherapy",), condition="low-back-pain"), ["Physio"]),
        (Filters(condition="low-back-pain", accepting=True, fund="bupa"), ["Massage", "Yoga"]),
        (Filters(language="greek", accepting=True), ["Visiting"]),
    ],
)
def test_filters_on_real_rows(session, clinic, filters, expected):
    results = search(session, *SYDNEY, radius_km=200, filters=filters, fallback=0)
    assert _names(results) == expected
    assert results.total == len(expected)


def test_home_visits_need_the_visitor_inside_the_visit_radius(session, clinic):
    parramatta = PLACES["Parramatta"]
    results = search(session, *parramatta, radius_km=50, filters=Filters(home_visits=True))
    assert _names(results) == ["Visiting"]  # Osteo's 5 km no longer reaches
    assert results.hits[0].distance_km == pytest.approx(0.0, abs=1e-9)


def test_nearest_beyond_respects_the_filters(session, clinic):
    results = search(
        session, -31.95, 115.86, radius_km=10, filters=Filters(fund="bupa"), fallback=5
    )
    assert results.total == 0 and results.hits == []
    assert [h.practitioner.name for h in results.nearest_beyond] == ["Yoga", "Massage"]
    assert results.nearest_beyond[0].distance_km > 3000


def test_no_match_anywhere_gives_no_nearest_beyond(session, clinic):
    results = search(session, *SYDNEY, radius_km=10, filters=Filters(condition="pregnancy"))
    assert results.total == 0 and results.nearest_beyond == []


def test_boundary_radius(session, add_practitioner):
    # due north of the GPO at 9.99 km and 10.01 km
    inside = (SYDNEY[0] + 9.99 / 111.195, SYDNEY[1])
    outside = (SYDNEY[0] + 10.01 / 111.195, SYDNEY[1])
    add_practitioner("Inside", inside)
    add_practitioner("Outside", outside)
    results = search(session, *SYDNEY, radius_km=10)
    assert _names(results) == ["Inside"]
    assert results.hits[0].distance_km == pytest.approx(9.99, abs=0.01)
    assert results.total == 1


def test_paging_beyond_the_end_is_empty_but_counts(session, directory):
    results = search(session, *SYDNEY, radius_km=1000, per_page=2, page=9)
    assert results.hits == []
    assert results.total == 5
    assert results.nearest_beyond == []  # there are matches, just not on this page


def test_total_is_counted_when_the_page_does_not_show_it(session, directory):
    first = search(session, *SYDNEY, radius_km=50, per_page=1)
    assert _names(first) == ["Surry Hills"]
    assert first.total == 3


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(), 3),
        (Filters(modalities=("remedial-massage",)), 3),
        (Filters(modalities=("yoga", "remedial-massage"), accepting=True), 3),
        (Filters(modalities=("yoga",)), 0),
    ],
)
def test_total_sent_with_the_search_is_the_total_counted_later(
    session, directory, filters, expected
):
    """``with_total`` brings the count in the look-up's own statement on PostgreSQL."""
    for per_page in (1, 50):  # a page smaller than the matches, then one holding all
        eager = search(
            session, *SYDNEY, radius_km=50, filters=filters, per_page=per_page, with_total=True
        )
        lazy = search(session, *SYDNEY, radius_km=50, filters=filters, per_page=per_page)
        assert eager.total == lazy.total == expected
        assert [h.practitioner.id for h in eager.hits] == [h.practitioner.id for h in lazy.hits]


def test_several_locations_page_and_count_once(session, add_practitioner):
    for n in range(6):
        # every practitioner has a near and a far location
        add_practitioner(
            f"P{n}",
            (SYDNEY[0] - 0.01 * (n + 1), SYDNEY[1]),
            (SYDNEY[0] + 0.02 * (n + 1), SYDNEY[1]),
        )
    pages = [search(session, *SYDNEY, radius_km=100, per_page=2, page=p) for p in (1, 2, 3)]
    assert [_names(p) for p in pages] == [["P0", "P1"], ["P2", "P3"], ["P4", "P5"]]
    assert all(p.total == 6 for p in pages)
    assert all(h.location.lat < SYDNEY[0] for p in pages for h in p.hits)


def test_same_clinic_ties_break_by_practitioner_id(session, add_practitioner):
    ids = [add_practitioner(f"Same {n}", PLACES["Surry Hills"]).id for n in range(4)]
    results = search(session, *SYDNEY, radius_km=5, per_page=3)
    assert [h.practitioner.id for h in results.hits] == ids[:3]
    assert results.total == 4


def test_across_the_antimeridian(session, add_practitioner):
    add_practitioner("West of the line", (-17.0, 179.95))
    add_practitioner("East of the line", (-17.0, -179.9))
    add_practitioner("Far west", (-17.0, 178.0))
    results = search(session, -17.0, 179.99, radius_km=50)
    assert _names(results) == ["West of the line", "East of the line"]
    assert results.hits[1].distance_km == pytest.approx(
        great_circle_km(-17.0, 179.99, -17.0, -179.9), rel=1e-6
    )


def test_near_the_south_pole(session, add_practitioner):
    add_practitioner("Pole station", (-89.99, 139.27))
    add_practitioner("Other side", (-89.9, -40.0))
    add_practitioner("Coast", (-77.85, 166.67))
    results = search(session, -90.0, 0.0, radius_km=100)
    assert _names(results) == ["Pole station", "Other side"]
    assert results.hits[1].distance_km == pytest.approx(11.12, abs=0.01)


# --- the same answers as a brute-force scan, and across the two backends -----------------

SLUGS = ["remedial-massage", "physiotherapy", "myotherapy", "osteopathy", "yoga"]
CONDITIONS = ["low-back-pain", "sciatica", "neck-pain"]
FUNDS = ["bupa", "hcf", "nib"]
LANGUAGES = ["English", "Greek", "Vietnamese", "Cantonese", "Mandarin"]
CENTRES = [SYDNEY, PLACES["Melbourne"], (-17.0, 179.9), (-27.47, 153.03)]
QUERIES = [
    (SYDNEY, 30.0, Filters()),
    (SYDNEY, 30.0, Filters(modalities=("yoga", "physiotherapy"))),
    (PLACES["Melbourne"], 20.0, Filters(condition="low-back-pain", accepting=True)),
    ((-33.80, 151.10), 50.0, Filters(fund="bupa", language="greek")),
    ((-17.0, -179.95), 80.0, Filters()),
    ((-27.5, 153.0), 40.0, Filters(home_visits=True)),
    ((-27.5, 153.0), 3000.0, Filters(modalities=("osteopathy",))),
    (SYDNEY, 60.0, Filters(telehealth=True, accepting=True)),
    (SYDNEY, 60.0, Filters(language="Chinese")),
    (PLACES["Melbourne"], 60.0, Filters(language="yue", modalities=("yoga", "physiotherapy"))),
]
#: shapes the planner answers from the filter's few practitioners, and "nobody" ones
PLANNED = [
    (SYDNEY, 40.0, Filters(fund="nib", language="vietnamese", accepting=True)),
    ((-33.80, 151.10), 15.0, Filters(condition="sciatica", home_visits=True)),
    (SYDNEY, 40.0, Filters(language="Welsh")),
    (
        SYDNEY,
        40.0,
        Filters(fund="hcf", language="Mandarin", condition="neck-pain", telehealth=True),
    ),
    ((-31.95, 115.86), 10.0, Filters(language="Greek", fund="bupa")),  # Perth: only beyond
]

#: every shape of bench/filters.py's matrix (its radii, its kinds of filter)
BENCH_SHAPES = [
    (point, radius_km, filters)
    for point in (SYDNEY, (-37.9, 145.0))
    for radius_km, filters in (
        (50.0, Filters(modalities=("yoga",))),
        (25.0, Filters(modalities=("physiotherapy",))),
        (50.0, Filters()),
        (50.0, Filters(condition="low-back-pain")),
        (50.0, Filters(condition="sciatica")),
        (50.0, Filters(fund="hcf")),
        (50.0, Filters(language="Greek")),
        (50.0, Filters(language="Cantonese")),
        (50.0, Filters(language="Welsh")),
        (50.0, Filters(home_visits=True)),
        (50.0, Filters(telehealth=True)),
        (50.0, Filters(modalities=("yoga",), accepting=True, condition="low-back-pain")),
        (
            50.0,
            Filters(fund="hcf", language="Cantonese", condition="sciatica", home_visits=True),
        ),
    )
]


def load_random_directory(session: Session, seed: int = 3, count: int = 300) -> None:
    """A few hundred practitioners, one to three locations each, random filter values."""
    rng = random.Random(seed)
    modalities = {m.slug: m for m in session.scalars(select(Modality))}
    conditions = {c.slug: c for c in session.scalars(select(Condition))}
    funds = {f.slug: f for f in session.scalars(select(HealthFund))}
    for n in range(count):
        centre = rng.choice(CENTRES)
        locations = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            lat = centre[0] + rng.gauss(0, 0.15)
            lon = (centre[1] + rng.gauss(0, 0.15) + 180) % 360 - 180
            radius = rng.choice([None, 5.0, 15.0, 40.0])
            locations.append(Location(lat=lat, lon=lon, home_visit_radius_km=radius))
        session.add(
            Practitioner(
                name=f"Random {n}",
                status=rng.choice(["active"] * 9 + ["pending"]),
                modalities=[modalities[s] for s in rng.sample(SLUGS, rng.choice([1, 1, 2]))],
                conditions=[conditions[s] for s in rng.sample(CONDITIONS, rng.randint(0, 2))],
                funds=[
                    PractitionerFund(fund=funds[s]) for s in rng.sample(FUNDS, rng.randint(0, 2))
                ],
                languages=rng.sample(LANGUAGES, rng.randint(1, 2)),
                accepting_new_patients=rng.random() < 0.7,
                home_visits=rng.random() < 0.3,
                telehealth=rng.random() < 0.2,
                locations=locations,
            )
        )
    session.commit()


def brute_force(session: Session, lat: float, lon: float, radius_km: float, filters: Filters):
    """Every practitioner checked in Python: the reference the index must equal."""
    found = []
    for p in session.scalars(select(Practitioner).where(Practitioner.status == "active")):
        if filters.modalities and not {m.slug for m in p.modalities} & set(filters.modalities):
            continue
        if filters.condition and filters.condition not in {c.slug for c in p.conditions}:
            continue
        if filters.fund and filters.fund not in {f.fund.slug for f in p.funds}:
            continue
        if filters.accepting and not p.accepting_new_patients:
            continue
        if filters.language and not set(_language_codes(filters.language)) & set(
            codes_of(p.languages)
        ):
            continue
        if filters.telehealth and not p.telehealth:
            continue
        best = None
        for loc in p.locations:
            d = great_circle_km(lat, lon, loc.lat, loc.lon)
            if d > radius_km:
                continue
            if filters.home_visits and not (
                p.home_visits and loc.home_visit_radius_km and d <= loc.home_visit_radius_km
            ):
                continue
            if best is None or (d, loc.id) < best:
                best = (d, loc.id)
        if best is not None:
            found.append((best[0], p.id, best[1]))
    return sorted(found)


def _ranking(session: Session, point, radius_km: float, filters: Filters, per_page=100):
    results = search(session, *point, radius_km=radius_km, filters=filters, per_page=per_page)
    return [(h.distance_km, h.practitioner.id, h.location.id) for h in results.hits], results


def _beyond(results):
    return [(h.distance_km, h.practitioner.id, h.location.id) for h in results.nearest_beyond]


def _assert_same(got, expected):
    assert [row[1:] for row in got] == [row[1:] for row in expected]
    for (a, _, _), (b, _, _) in zip(got, expected, strict=True):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(("point", "radius_km", "filters"), QUERIES)
def test_index_equals_brute_force_on_random_data(session, point, radius_km, filters):
    load_random_directory(session)
    expected = brute_force(session, *point, radius_km, filters)
    got, results = _ranking(session, point, radius_km, filters)
    assert len(expected) > 0 or filters.home_visits
    _assert_same(got, expected[:100])
    assert results.total == len(expected)
    # and page by page
    paged = []
    for page in range(1, len(expected) // 7 + 2):
        paged += search(
            session, *point, radius_km=radius_km, filters=filters, page=page, per_page=7
        ).hits
    assert [(h.practitioner.id, h.location.id) for h in paged] == [e[1:] for e in expected]


RARE = [
    (SYDNEY, 100.0, Filters(fund="nib", language="vietnamese", accepting=True)),
    (SYDNEY, 100.0, Filters(modalities=("yoga",), language="greek", fund="hcf")),
    (PLACES["Melbourne"], 60.0, Filters(condition="sciatica", home_visits=True)),
]


@pytest.mark.parametrize(("point", "radius_km", "filters"), RARE)
def test_rare_matches_plan_gives_the_same_answers(session, monkeypatch, point, radius_km, filters):
    """PostGIS switches from nearest-first to filtering the whole radius past a row
    budget; with a tiny budget every query takes that path and must not change."""
    monkeypatch.setattr(search_module.postgis, "KNN_MAX_ROWS", 8)
    load_random_directory(session)
    expected = brute_force(session, *point, radius_km, filters)
    got, results = _ranking(session, point, radius_km, filters, per_page=5)
    _assert_same(got, expected[:5])
    assert results.total == len(expected)


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (REFERRAL_TEST_DATABASE_URL)")
def test_sqlite_and_postgis_give_the_same_answers(session, tmp_path):
    """One dataset in a SQLite file and in PostGIS: same hits, same order, same km."""
    assert session.get_bind().dialect.name == "postgresql"
    load_random_directory(session, seed=11, count=400)
    engine = make_engine(f"sqlite:///{tmp_path}/same.sqlite")
    migrate.upgrade(engine)
    with Session(engine) as lite:
        migrate.sync_taxonomy(lite, TAXONOMY)
        for table in (
            "referral_practitioner",
            "referral_location",
            "referral_practitioner_modality",
            "referral_practitioner_condition",
            "referral_practitioner_fund",
            "referral_practitioner_language",
        ):
            model_table = Base.metadata.tables[table]
            rows = [dict(r._mapping) for r in session.execute(select(model_table))]
            lite.execute(insert(model_table), rows)
        lite.commit()
        queries = (
            QUERIES
            + RARE
            + PLANNED
            + BENCH_SHAPES
            + [((-33.9 + i * 0.01, 151.0 + i * 0.02), 25.0 + i, Filters()) for i in range(10)]
        )
        for point, radius_km, filters in queries:
            on_pg, pg_results = _ranking(session, point, radius_km, filters)
            on_lite, lite_results = _ranking(lite, point, radius_km, filters)
            _assert_same(on_lite, on_pg)
            assert lite_results.total == pg_results.total
            assert lite_results.total_capped == pg_results.total_capped
            _assert_same(_beyond(lite_results), _beyond(pg_results))
    engine.dispose()


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (REFERRAL_TEST_DATABASE_URL)")
def test_postgis_count_decides_the_radius_as_st_dwithin_does(session, add_practitioner):
    """The count's unit-vector test (migration 0003) against ST_DWithin on the sphere,
    over a random directory and for two practitioners half a metre either side of it."""
    load_random_directory(session, seed=5, count=300)
    sphere = great_circle(radius=search_module.POSTGIS_SPHERE_M / 1000)
    for bearing, offset_m, name in ((30, -0.5, "Inside"), (210, 0.5, "Outside")):
        edge = sphere.destination(SYDNEY, bearing, 25 + offset_m / 1000)
        add_practitioner(name, (edge.latitude, edge.longitude), modalities=("yoga",))
    index = search_module._POSTGIS
    plain = (
        "SELECT count(DISTINCT practitioner_id) FROM {table} AS t{join}"
        " WHERE ST_DWithin(t.geog, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,"
        " :radius_m, false){where}"
    )
    by_modality = plain.format(
        table="referral_search_point", join="", where=" AND t.modality_id = :modality"
    )
    everyone = plain.format(
        table="referral_location",
        join=" JOIN referral_practitioner AS p ON p.id = t.practitioner_id",
        where=" AND p.status = 'active'",
    )
    yoga_id = session.scalar(select(Modality.id).where(Modality.slug == "yoga"))
    counted = []
    for (lat, lon), radius_km in [(SYDNEY, 25.0), (SYDNEY, 12.5), ((-37.81, 144.96), 30.0)]:
        params = {"lat": lat, "lon": lon, "radius_m": radius_km * 1000, "modality": yoga_id}
        yoga = index.count(session, lat, lon, radius_km, Filters(modalities=("yoga",)))
        assert yoga == session.scalar(text(by_modality), params)
        anyone = index.count(session, lat, lon, radius_km, Filters())
        assert anyone == session.scalar(text(everyone), params)
        counted.append((yoga, anyone))
    assert all(yoga > 5 for yoga, _ in counted)  # enough to compare
    edge_case = by_modality + " AND t.practitioner_id IN (SELECT id FROM referral_practitioner"
    edge_case += " WHERE name = :name)"
    params = {"lat": SYDNEY[0], "lon": SYDNEY[1], "radius_m": 25000, "modality": yoga_id}
    assert session.scalar(text(edge_case), {**params, "name": "Inside"}) == 1
    assert session.scalar(text(edge_case), {**params, "name": "Outside"}) == 0
    hits = search(session, *SYDNEY, radius_km=25, filters=Filters(modalities=("yoga",)))
    names = [h.practitioner.name for h in hits.hits]
    assert "Outside" not in names and ("Inside" in names or hits.total > len(hits.hits))


def test_index_follows_every_change_to_a_location(session, add_practitioner):
    """The R*Tree (triggers) and the generated geography column track writes."""
    mover = add_practitioner("Mover", PLACES["Melbourne"])
    gone = add_practitioner("Gone", PLACES["Surry Hills"])
    assert _names(search(session, *SYDNEY, radius_km=10)) == ["Gone"]

    mover.locations[0].lat, mover.locations[0].lon = PLACES["North Sydney"]
    session.commit()
    assert _names(search(session, *SYDNEY, radius_km=10)) == ["Gone", "Mover"]

    session.delete(gone)  # cascades to its location
    session.commit()
    assert _names(search(session, *SYDNEY, radius_km=10)) == ["Mover"]

    mover.locations.append(Location(lat=SYDNEY[0], lon=SYDNEY[1]))
    session.commit()
    results = search(session, *SYDNEY, radius_km=10)
    assert _names(results) == ["Mover"] and results.hits[0].distance_km < 0.001

    session.execute(text("DELETE FROM referral_location"))  # plain SQL, no ORM events
    session.commit()
    assert search(session, *SYDNEY, radius_km=10).total == 0


def test_result_cards_know_their_modalities(session, add_practitioner):
    add_practitioner("Both", SYDNEY, modalities=("yoga", "physiotherapy"))
    add_practitioner("None", SYDNEY, modalities=())
    session.expunge_all()  # as in a fresh request
    both, none = search(session, *SYDNEY, radius_km=1).hits
    # sorted by name, with the names the cards show
    assert both.practitioner.modalities == (
        Term("physiotherapy", "Physiotherapy"),
        Term("yoga", "Yoga"),
    )
    assert none.practitioner.modalities == () and none.practitioner.conditions == ()
    assert both.location.lat == pytest.approx(SYDNEY[0])


def test_hits_are_records_not_session_objects(session, add_practitioner):
    """A page of results loads nothing into the session: nothing to flush or expire."""
    add_practitioner("Only", SYDNEY)
    session.expunge_all()
    (hit,) = search(session, *SYDNEY, radius_km=1).hits
    assert len(session.identity_map) == 0
    with pytest.raises(AttributeError):
        hit.practitioner.name = "Changed"  # frozen: a search result is read-only


def test_rare_matches_beyond_the_first_round_still_show_their_cards(session, add_practitioner):
    """PostGIS brings the cards with its first round of nearest rows; when the matches
    are rarer than that round holds, the page is loaded after the walk."""
    for n in range(30):
        add_practitioner(f"Yogi {n}", (SYDNEY[0] - 0.001 * n, SYDNEY[1]), modalities=("yoga",))
    for n in (40, 41):
        add_practitioner(
            f"Rare {n}",
            (SYDNEY[0] - 0.001 * n, SYDNEY[1]),
            modalities=("yoga",),
            conditions=("low-back-pain",),
        )
    rare = Filters(modalities=("yoga",), condition="low-back-pain")
    found = search(session, *SYDNEY, radius_km=20, filters=rare, per_page=2, with_total=True)
    assert [h.practitioner.name for h in found.hits] == ["Rare 40", "Rare 41"]
    assert found.total == 2
    assert [t.slug for t in found.hits[0].practitioner.conditions] == ["low-back-pain"]
    assert found.hits[0].location.lat == pytest.approx(SYDNEY[0] - 0.04)


def test_modality_ids_are_remembered_and_new_modalities_found(session):
    yoga = session.scalar(select(Modality.id).where(Modality.slug == "yoga"))
    assert search_module.modality_ids(session, ("yoga", "tai-chi")) == {"yoga": yoga}
    session.add(Modality(slug="tai-chi", name="Tai chi"))
    session.commit()
    tai_chi = session.scalar(select(Modality.id).where(Modality.slug == "tai-chi"))
    # an unknown slug is asked again, so a modality added since is found at once
    assert search_module.modality_ids(session, ("tai-chi", "yoga")) == {
        "tai-chi": tai_chi,
        "yoga": yoga,
    }
    # a known slug is not asked again: slugs are never re-keyed (sync_taxonomy only adds)
    session.execute(text("UPDATE referral_modality SET slug = 'renamed' WHERE slug = 'yoga'"))
    session.commit()
    assert search_module.modality_ids(session, ("yoga",)) == {"yoga": yoga}


def test_optimize_keeps_every_answer_and_lays_the_index_out(session, add_practitioner, runner):
    rng = random.Random(5)
    kinds = [("yoga",), ("physiotherapy",), ("yoga", "remedial-massage"), ()]
    for n in range(60):
        point = (SYDNEY[0] + rng.uniform(-0.3, 0.3), SYDNEY[1] + rng.uniform(-0.3, 0.3))
        add_practitioner(f"P{n}", point, modalities=kinds[n % len(kinds)])
    questions = [
        (Filters(modalities=("yoga",)), 25),
        (Filters(modalities=("physiotherapy", "remedial-massage")), 40),
        (Filters(), 5),
    ]

    def answers():
        return [
            (
                [(h.practitioner.id, h.location.id) for h in found.hits],
                found.total,
            )
            for filters, radius in questions
            for found in [search(session, *SYDNEY, radius_km=radius, filters=filters, per_page=7)]
        ]

    before = answers()
    assert all(total > 7 for _, total in before[:2])  # pages smaller than the matches
    result = runner.invoke(args=["referral", "optimize"])
    assert result.exit_code == 0, result.output
    assert "laid out" in result.output
    assert answers() == before
    if session.get_bind().dialect.name == "postgresql":
        stored = session.execute(
            text("SELECT modality_id FROM referral_search_point ORDER BY ctid")
        ).scalars()
        laid_out = list(stored)
        assert laid_out == sorted(laid_out) and len(laid_out) == 60  # 1 + 1 + 2 + 0 per 4


def test_modality_search_follows_status_and_modality_changes(session, add_practitioner):
    """PostgreSQL keeps a per-modality table by triggers: every change must reach it."""
    yoga = Filters(modalities=("yoga",))
    person = add_practitioner("Changes", PLACES["Surry Hills"], modalities=("yoga",))
    assert _names(search(session, *SYDNEY, radius_km=5, filters=yoga)) == ["Changes"]

    person.status = "suspended"
    session.commit()
    assert search(session, *SYDNEY, radius_km=5, filters=yoga).hits == []
    person.status = "active"
    session.commit()
    assert _names(search(session, *SYDNEY, radius_km=5, filters=yoga)) == ["Changes"]

    person.modalities = list(
        session.scalars(select(Modality).where(Modality.slug == "physiotherapy"))
    )
    session.commit()
    assert search(session, *SYDNEY, radius_km=5, filters=yoga).hits == []
    physio = search(session, *SYDNEY, radius_km=5, filters=Filters(("physiotherapy",)))
    assert _names(physio) == ["Changes"]

    person.locations[0].lat, person.locations[0].lon = PLACES["Melbourne"]
    session.commit()
    assert search(session, *SYDNEY, radius_km=5, filters=Filters(("physiotherapy",))).hits == []


def test_a_modality_added_later_is_searchable(session, add_practitioner):
    session.add(Modality(slug="reflexology", name="Reflexology"))
    session.commit()
    add_practitioner("New kind", SYDNEY, modalities=("reflexology",))
    found = search(session, *SYDNEY, radius_km=5, filters=Filters(("reflexology",)))
    assert _names(found) == ["New kind"]
    assert search(session, *SYDNEY, radius_km=5, filters=Filters(("no-such",))).hits == []


def test_total_beyond_the_page_counts_active_matches_only(session, add_practitioner):
    """A page smaller than the matches makes the index count them (not just the page)."""
    yoga = Filters(modalities=("yoga",))
    people = [
        add_practitioner(f"Yogi {n}", (SYDNEY[0] + n * 0.001, SYDNEY[1]), modalities=("yoga",))
        for n in range(5)
    ]
    add_practitioner("Phil Physio", SYDNEY, modalities=("physiotherapy",))
    assert search(session, *SYDNEY, radius_km=5, filters=yoga, per_page=2).total == 5

    people[3].status = "suspended"
    session.commit()
    assert search(session, *SYDNEY, radius_km=5, filters=yoga, per_page=2).total == 4
    both = Filters(modalities=("yoga", "physiotherapy"))
    assert search(session, *SYDNEY, radius_km=5, filters=both, per_page=2).total == 5

    people[0].accepting_new_patients = False
    session.commit()
    accepting = Filters(modalities=("yoga",), accepting=True)
    assert search(session, *SYDNEY, radius_km=5, filters=accepting, per_page=2).total == 3


# --- the plan, the capped total, the time limit ------------------------------------------


@pytest.mark.parametrize(("point", "radius_km", "filters"), QUERIES + RARE + PLANNED)
def test_every_plan_gives_the_same_answers(session, monkeypatch, point, radius_km, filters):
    """Filter-first (the default for this small directory) and spatial-first (forced)."""
    load_random_directory(session)
    planned = search(session, *point, radius_km=radius_km, filters=filters, per_page=100)
    monkeypatch.setattr(search_module.planner, "FILTER_FIRST_MAX", 0)
    walked = search(session, *point, radius_km=radius_km, filters=filters, per_page=100)
    as_rows = lambda hits: [(h.distance_km, h.practitioner.id, h.location.id) for h in hits]  # noqa: E731
    _assert_same(as_rows(planned.hits), as_rows(walked.hits))
    _assert_same(as_rows(planned.nearest_beyond), as_rows(walked.nearest_beyond))
    assert (planned.total, planned.total_capped) == (walked.total, walked.total_capped)
    expected = brute_force(session, *point, radius_km, filters)
    assert planned.total == len(expected)


def test_a_value_nobody_has_is_known_before_any_walk(session, clinic, monkeypatch):
    def no_walk(*_args, **_kwargs):
        raise AssertionError("walked the index for a value nobody has")

    monkeypatch.setattr(search_module._RTREE, "nearest", no_walk)
    monkeypatch.setattr(search_module._POSTGIS, "nearest", no_walk)
    results = search(session, *SYDNEY, radius_km=50, filters=Filters(language="Welsh"))
    assert (results.hits, results.nearest_beyond, results.total) == ([], [], 0)


@pytest.mark.parametrize("force_walk", [False, True])
def test_total_is_exact_up_to_the_cap_then_capped(session, monkeypatch, force_walk):
    if force_walk:
        monkeypatch.setattr(search_module.planner, "FILTER_FIRST_MAX", 0)
    load_random_directory(session)
    for filters in (Filters(), Filters(language="Greek"), Filters(condition="sciatica")):
        expected = len(brute_force(session, *SYDNEY, 100, filters))
        assert expected > 2
        for cap, with_total in ((expected, False), (expected - 1, False), (expected - 1, True)):
            results = search(
                session,
                *SYDNEY,
                radius_km=100,
                filters=filters,
                per_page=1,
                max_total=cap,
                with_total=with_total,
            )
            assert (results.total, results.total_capped) == (cap, cap < expected)


def test_a_long_statement_is_stopped_by_the_time_limit(session):
    from referral.search import SearchTimeout, _driver, _time_limit

    if session.get_bind().dialect.name == "postgresql":
        slow = "SELECT pg_sleep(5)"
    else:
        slow = (
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000000)"
            " SELECT count(*) FROM n"
        )
    with pytest.raises(SearchTimeout) as caught, _time_limit(session, 50):
        _driver(session).execute(slow).fetchall()
    assert caught.value.status == 503
    session.rollback()
    # the limit ends with the search: the next statement runs unhindered
    assert _driver(session).execute("SELECT 1").fetchone()[0] == 1


# --- the search-term grid (migration 0008) ------------------------------------------------


def _grid_rows(session: Session) -> set[tuple]:
    rows = session.execute(
        text(
            "SELECT term, cell, location_id, practitioner_id, lat, lon, visit_km,"
            " accepting, telehealth FROM referral_search_term"
        )
    )
    return {(*row[:7], bool(row[7]), bool(row[8])) for row in rows}


def _assert_grid_in_step(session: Session) -> None:
    """The rows the triggers keep equal the rows a full rebuild writes."""
    kept = _grid_rows(session)
    grid.rebuild(session)
    assert kept == _grid_rows(session)
    session.rollback()


def test_the_grid_follows_every_write(session, add_practitioner):
    load_random_directory(session, seed=9, count=40)
    _assert_grid_in_step(session)
    people = session.scalars(select(Practitioner).order_by(Practitioner.id)).all()
    yoga = session.scalar(select(Modality).where(Modality.slug == "yoga"))
    sciatica = session.scalar(select(Condition).where(Condition.slug == "sciatica"))
    writes = [
        lambda: people[0].locations.append(Location(lat=-33.7, lon=151.1)),
        lambda: setattr(people[1].locations[0], "lat", -34.2),
        lambda: setattr(people[2], "status", "suspended"),
        lambda: setattr(people[3], "accepting_new_patients", not people[3].accepting_new_patients),
        lambda: setattr(people[4], "home_visits", not people[4].home_visits),
        lambda: setattr(people[5], "telehealth", not people[5].telehealth),
        lambda: setattr(people[6], "modalities", [yoga]),
        lambda: people[7].conditions.append(sciatica),
        lambda: setattr(people[8], "languages", ["Welsh", "Cantonese"]),
        lambda: people[9].funds.clear(),
        lambda: setattr(people[10].locations[0], "home_visit_radius_km", 12.5),
        lambda: session.delete(people[11]),
        lambda: people[12].locations.pop(),
    ]
    for write in writes:
        write()
        session.commit()
        _assert_grid_in_step(session)
    assert not any(row[3] == people[11].id for row in _grid_rows(session))
    assert not any(row[3] == people[2].id for row in _grid_rows(session))


def test_a_box_of_cells_encloses_its_circle():
    rng = random.Random(4)
    sphere = great_circle()
    for _ in range(300):
        lat, lon = rng.uniform(-85, 85), rng.uniform(-170, 170)
        km = rng.choice([0.3, 2.0, 25.0, 150.0])
        box = grid.enclosing_box(lat, lon, km)
        if box is None:
            continue
        for bearing in range(0, 360, 15):
            edge = sphere.destination((lat, lon), bearing, km * 0.999999)
            assert box[0] <= grid.cell_row(edge.latitude) <= box[1]
            assert box[2] <= grid.cell_column(edge.longitude) <= box[3]
    assert grid.enclosing_box(-17.0, -179.95, 80.0) is None  # across the antimeridian
    assert grid.enclosing_box(89.9, 10.0, 30.0)[2:] == (0, grid.COLUMNS - 1)  # a pole


def test_the_cells_of_a_growing_box_are_each_read_once():
    small = grid.enclosing_box(-33.87, 151.21, 2.0)
    large = grid.enclosing_box(-33.87, 151.21, 9.0)
    cells = [c for lo, hi in grid._new_ranges(small, None) for c in range(lo, hi + 1)]
    cells += [c for lo, hi in grid._new_ranges(large, small) for c in range(lo, hi + 1)]
    r0, r1, c0, c1 = large
    assert sorted(cells) == [
        row * grid.COLUMNS + col for row in range(r0, r1 + 1) for col in range(c0, c1 + 1)
    ]


@pytest.mark.parametrize(("point", "radius_km", "filters"), QUERIES + RARE + PLANNED)
def test_the_grid_and_the_spatial_index_give_the_same_answers(
    session, monkeypatch, point, radius_km, filters
):
    load_random_directory(session)
    on_grid = search(session, *point, radius_km=radius_km, filters=filters, per_page=100)
    monkeypatch.setattr(grid, "GRID_MAX_KM", -1.0)  # every search walks the R*Tree / GiST
    walked = search(session, *point, radius_km=radius_km, filters=filters, per_page=100)
    as_rows = lambda hits: [(h.distance_km, h.practitioner.id, h.location.id) for h in hits]  # noqa: E731
    _assert_same(as_rows(on_grid.hits), as_rows(walked.hits))
    _assert_same(as_rows(on_grid.nearest_beyond), as_rows(walked.nearest_beyond))
    assert (on_grid.total, on_grid.total_capped) == (walked.total, walked.total_capped)


def test_the_inner_cells_lie_wholly_inside_the_circle():
    rng = random.Random(6)
    for _ in range(60):
        lat, lon = rng.uniform(-70, 70), rng.uniform(-170, 170)
        km = rng.choice([3.0, 25.0, 100.0])
        inner = grid._inner_ranges(lat, lon, km)
        assert inner  # a circle this size holds whole cells
        for lo, hi in inner:
            for cell in range(lo, hi + 1):
                row, column = divmod(cell, grid.COLUMNS)
                for corner_row in (row, row + 1):
                    for corner_column in (column, column + 1):
                        corner = (corner_row / 100 - 90, corner_column / 100 - 180)
                        assert great_circle_km(lat, lon, *corner) <= km


@pytest.mark.parametrize("with_total", [False, True])
def test_a_capped_total_from_the_inner_cells_agrees_with_counting(session, with_total):
    load_random_directory(session)
    for filters in (Filters(), Filters(modalities=("yoga",)), Filters(accepting=True)):
        expected = len(brute_force(session, *SYDNEY, 40, filters))
        for cap in (5, expected - 1, expected, expected + 1):
            results = search(
                session,
                *SYDNEY,
                radius_km=40,
                filters=filters,
                per_page=1,
                max_total=cap,
                with_total=with_total,
            )
            assert (results.total, results.total_capped) == (min(cap, expected), cap < expected)

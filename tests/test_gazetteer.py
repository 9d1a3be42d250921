"""The shipped Australian gazetteer, read as a local would: real places pinned to their
coordinates, ambiguous names, autocomplete, and the pages and API built on it.

The table's coordinates were read from the shipped data and checked against where these
places are (each within a few km of its centre); a change of data or rules that moves a
place by more than ``TOLERANCE_KM`` fails here.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session

from referral.geo.distance import great_circle_km
from referral.geo.gazetteer import Gazetteer, name_key, postcode_kind
from referral.geo.postcodes import SHIPPED_SOURCE, load_centroids, shipped_centroids

PREFIX = "/find-a-therapist"
TOLERANCE_KM = 3.0

#: typed -> (label a local would write, lat, lon)
PLACES = [
    ("Hobart", "Hobart TAS 7000", -42.88, 147.33),
    ("7000", "Hobart TAS 7000", -42.87, 147.32),
    ("Bondi", "Bondi NSW 2026", -33.89, 151.26),
    ("Bondi Beach", "Bondi Beach NSW 2026", -33.89, 151.27),
    ("Surry Hills 2010", "Surry Hills NSW 2010", -33.88, 151.21),
    ("Surry Hills NSW", "Surry Hills NSW 2010", -33.88, 151.21),
    ("surry hills, nsw 2010", "Surry Hills NSW 2010", -33.88, 151.21),
    ("  SURRY   HILLS  ", "Surry Hills NSW 2010", -33.88, 151.21),
    ("Manly NSW", "Manly NSW 2095", -33.80, 151.29),
    ("Manly QLD", "Manly QLD 4179", -27.45, 153.19),
    ("Sydney", "Sydney NSW 2000", -33.87, 151.21),
    ("2000", "Sydney NSW 2000", -33.86, 151.20),
    ("Sydney 2000", "Sydney NSW 2000", -33.87, 151.21),
    ("Parramatta", "Parramatta NSW 2150", -33.82, 151.00),
    ("Newtown NSW", "Newtown NSW 2042", -33.90, 151.18),
    ("Newtown VIC 3220", "Newtown VIC 3220", -38.15, 144.34),
    ("Newtown QLD 4350", "Newtown QLD 4350", -27.56, 151.93),
    ("Perth", "Perth WA 6000", -31.95, 115.86),
    ("Perth WA", "Perth WA 6000", -31.95, 115.86),
    ("Perth TAS", "Perth TAS 7300", -41.57, 147.17),
    ("Canberra", "Canberra ACT 2600", -35.28, 149.13),
    ("Gold Coast", "Surfers Paradise QLD 4217", -28.00, 153.43),
    ("Melbourne", "Melbourne VIC 3000", -37.81, 144.96),
    ("3000", "Melbourne VIC 3000", -37.81, 144.96),
    ("Brisbane", "Brisbane QLD 4000", -27.47, 153.03),
    ("Adelaide", "Adelaide SA 5000", -34.93, 138.60),
    ("Darwin", "Darwin NT 0800", -12.46, 130.84),
    ("Mt Isa", "Mount Isa QLD 4825", -20.73, 139.50),
    ("Mount Isa", "Mount Isa QLD 4825", -20.73, 139.50),
    ("Mt. Gravatt", "Mount Gravatt QLD 4122", -27.53, 153.08),
    ("St Kilda VIC", "St Kilda VIC 3182", -37.86, 144.97),
    ("Saint Kilda VIC", "St Kilda VIC 3182", -37.86, 144.97),
    ("St. Kilda, Victoria", "St Kilda VIC 3182", -37.86, 144.97),
    ("Mount Victoria", "Mount Victoria NSW 2786", -33.59, 150.26),
    ("Fitzroy VIC", "Fitzroy VIC 3065", -37.80, 144.98),
    ("Toowoomba", "Toowoomba QLD 4350", -27.56, 151.95),
    ("Geelong", "Geelong VIC 3220", -38.15, 144.36),
    ("Wollongong", "Wollongong NSW 2500", -34.42, 150.89),
    ("Newcastle", "Newcastle NSW 2300", -32.93, 151.78),
    ("Cairns", "Cairns QLD 4870", -16.92, 145.77),
    ("Townsville", "Townsville QLD 4810", -19.27, 146.81),
    ("Ballarat", "Ballarat VIC 3350", -37.57, 143.85),
    ("Bondi Junction", "Bondi Junction NSW 2022", -33.89, 151.25),
    ("Sydeny 2000", "Sydney NSW 2000", -33.86, 151.20),  # a typo; the postcode says where
]


@pytest.fixture(scope="module")
def au() -> Gazetteer:
    rows = [
        (c.postcode, c.place, c.state, c.lat, c.lon, c.accuracy) for c in shipped_centroids("AU")
    ]
    return Gazetteer.build("AU", rows)


@pytest.mark.parametrize(("typed", "label", "lat", "lon"), PLACES)
def test_real_places_land_where_they_are(au, typed, label, lat, lon):
    found = au.resolve(typed)
    assert found is not None, typed
    assert found.place.label == label
    assert great_circle_km(found.place.lat, found.place.lon, lat, lon) < TOLERANCE_KM


def test_the_shipped_data_is_complete():
    rows = list(shipped_centroids("AU"))
    assert len(rows) > 18000
    assert {r.state for r in rows} == {"ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"}
    assert len({r.postcode for r in rows}) > 3100


@pytest.mark.parametrize(
    ("typed", "first", "others"),
    [
        ("Newtown", "Newtown NSW 2042", {"Newtown VIC 3220", "Newtown QLD 4305",
                                          "Newtown QLD 4350", "Newtown VIC 3351"}),
        ("Perth", "Perth WA 6000", {"Perth TAS 7300"}),
        ("Manly", "Manly NSW 2095", {"Manly QLD 4179"}),
        ("Richmond", None, {"Richmond NSW 2753", "Richmond TAS 7025"}),
    ],
)  # fmt: skip
def test_ambiguous_names_list_every_place_most_likely_first(au, typed, first, others):
    found = au.resolve(typed)
    labels = {a.label for a in found.alternatives}
    if first:
        assert found.place.label == first
    assert others <= labels | {found.place.label}
    assert found.place.label not in labels


def test_home_region_comes_first(au):
    assert au.resolve("Newtown", home_region="VIC").place.label == "Newtown VIC 3220"
    assert au.resolve("Perth", home_region="tas").place.label == "Perth TAS 7300"
    assert au.resolve("Newtown NSW", home_region="VIC").place.label == "Newtown NSW 2042"


def test_names_never_land_on_a_po_box_when_a_delivery_area_exists(au):
    for name in ("Hobart", "Manly", "Sydney", "Parramatta", "Perth", "Melbourne"):
        found = au.resolve(name)
        assert found.place.kind == "delivery", name
        assert all(a.kind == "delivery" for a in found.alternatives)


@pytest.mark.parametrize(
    ("postcode", "place", "kind"),
    [
        ("1001", "Sydney", "pobox"),
        ("1655", "Manly", "pobox"),
        ("0200", "Australian National University", "pobox"),
        ("7001", "Hobart", "delivery"),  # not in a PO box range; loses to 7000 by size
        ("8001", "Melbourne", "pobox"),
        ("9726", "Gold Coast MC", "pobox"),
        ("7000", "Bathurst Street PO", "pobox"),
        ("2150", "Parramatta", "delivery"),
    ],
)
def test_po_box_rule(postcode, place, kind):
    assert postcode_kind("AU", postcode, place) == kind


def test_labels_read_as_a_local_writes_them(au):
    assert au.postcodes["7000"].label == "Hobart TAS 7000"
    assert au.postcodes["2000"].label == "Sydney NSW 2000"
    assert not [p for p in au.postcodes.values() if re.search(r"\b(Po|Dc|Lpo)\b", p.name)]


def test_name_key_spellings_meet():
    assert name_key("St. Kilda") == name_key("saint  kilda") == "saint kilda"
    assert name_key("Mt Isa") == name_key("MOUNT ISA")
    assert name_key("O'Connor") == name_key("OConnor")


def test_postcode_shaped_but_unknown_is_not_found_with_nearby_postcodes(au):
    assert au.resolve("0000") is None
    assert au.postcode_shaped("0000") and not au.postcode_shaped("00000")
    assert [p.postcode for p in au.did_you_mean("0000")][:1] == ["0800"]


def test_did_you_mean_by_edit_distance(au):
    assert au.did_you_mean("Parramata")[0].label == "Parramatta NSW 2150"
    assert au.did_you_mean("Wollongon")[0].label == "Wollongong NSW 2500"
    assert au.did_you_mean("zz';--") == []


def test_autocomplete_offers_sydney_first_and_matches_any_word(au):
    assert au.complete("Syd")[0].label == "Sydney NSW 2000"
    assert au.complete("hob")[0].label == "Hobart TAS 7000"
    assert "Surry Hills NSW 2010" in [p.label for p in au.complete("hills", 60)]
    assert [p.label for p in au.complete("surry hills nsw")] == ["Surry Hills NSW 2010"]
    delivery_first = [p.kind for p in au.complete("syd", 10)]
    assert delivery_first == sorted(delivery_first, key=lambda k: k != "delivery")
    assert au.complete("';--") == [] and au.complete("") == []
    assert au.complete("x" * 5000) == []


# --- the pages and the API on the full table ----------------------------------------------


@pytest.fixture
def full(app, session: Session, add_practitioner):
    load_centroids(session, shipped_centroids("AU"), source=SHIPPED_SOURCE)
    add_practitioner("Hana Hobart", (-42.8826, 147.3257))
    add_practitioner("Nell Newtown", (-33.8970, 151.1790))
    add_practitioner("Vic Geelong", (-38.1500, 144.3400))
    return app


def test_page_finds_practitioners_near_a_typed_place(full):
    for typed, label, name in [
        ("Hobart", "Hobart TAS 7000", "Hana Hobart"),
        ("Surry Hills 2010", "Surry Hills NSW 2010", "Nell Newtown"),
        ("Newtown NSW", "Newtown NSW 2042", "Nell Newtown"),
    ]:
        response = full.test_client().get(f"{PREFIX}/", query_string={"postcode": typed})
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert f"near {label}" in html and name in html


def test_page_asks_which_newtown(full):
    response = full.test_client().get(f"{PREFIX}/?postcode=Newtown&modality=remedial-massage")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Which Newtown?" in html
    for label in ("Newtown NSW 2042", "Newtown VIC 3220", "Newtown QLD 4350"):
        assert label in html
    assert html.index("Newtown NSW 2042") < html.index("Newtown VIC 3220")
    assert "postcode=Newtown+VIC+3220&amp;modality=remedial-massage" in html  # filters kept
    assert "Nell Newtown" not in html  # asked before searching
    chosen = full.test_client().get(f"{PREFIX}/?postcode=Newtown+VIC+3220")
    assert "Vic Geelong" in chosen.get_data(as_text=True)


def test_api_answers_the_most_likely_and_lists_alternatives(full, client):
    body = client.get(f"{PREFIX}/api/v1/practitioners?postcode=Newtown").get_json()
    query = body["query"]
    assert (query["label"], query["source"]) == ("Newtown NSW 2042", "suburb")
    assert [r["name"] for r in body["results"]][:1] == ["Nell Newtown"]
    others = {a["label"]: a for a in query["alternatives"]}
    assert {"Newtown VIC 3220", "Newtown QLD 4350"} <= set(others)
    assert set(others["Newtown VIC 3220"]) == {"label", "postcode", "state", "lat", "lon"}
    assert others["Newtown VIC 3220"]["state"] == "VIC"
    plain = client.get(f"{PREFIX}/api/v1/practitioners?postcode=Hobart").get_json()
    assert "alternatives" not in plain["query"]


def test_api_home_region_setting(full, make_app):
    app = make_app(REFERRAL_HOME_REGION="VIC")
    body = app.test_client().get(f"{PREFIX}/api/v1/practitioners?postcode=Newtown").get_json()
    assert body["query"]["label"] == "Newtown VIC 3220"


def test_zero_postcode_is_not_found_at_once(full, client):
    response = client.get(f"{PREFIX}/api/v1/practitioners?postcode=0000")
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "location_not_found" and "0000" in error["message"]
    page = client.get(f"{PREFIX}/?postcode=0000")
    assert page.status_code == 404 and "Did you mean" in page.get_data(as_text=True)


def test_api_autocomplete_on_the_full_table(full, client):
    body = client.get(f"{PREFIX}/api/v1/places?q=Syd").get_json()
    assert body[0]["label"] == "Sydney NSW 2000" and body[0]["kind"] == "delivery"


@pytest.mark.parametrize(
    "typed",
    ["\x00Sydney", "Syd\x1bney", "Syd\x7fney", "x" * 5000,
     "'; DROP TABLE referral_postcode;--", "%' OR '1'='1"],
)  # fmt: skip
def test_bad_input_stays_4xx(client, typed):
    for url in (f"{PREFIX}/api/v1/practitioners", f"{PREFIX}/api/v1/places", f"{PREFIX}/"):
        key = "q" if url.endswith("places") else "postcode"
        response = client.get(url, query_string={key: typed})
        if url.endswith("places") and response.status_code == 200:
            assert response.get_json() == []  # nothing matches; never an error page
            continue
        assert response.status_code in (400, 404), (url, typed)
    assert client.get(f"{PREFIX}/api/v1/places?q=Syd").get_json()  # table intact

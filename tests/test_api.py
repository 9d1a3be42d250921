"""JSON API v1: shapes, paging, errors as documented, CORS, and a fuzz test."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from referral.openapi import ERRORS, error_codes
from referral.query import parse_places

PREFIX = "/find-a-therapist"
API = f"{PREFIX}/api/v1"
PACKAGE = Path(__file__).resolve().parent.parent / "referral"


@pytest.fixture
def listed(add_practitioner):
    return {
        "near": add_practitioner(
            "Nina Near",
            (-33.8700, 151.2100),
            conditions=("low-back-pain", "neck-pain"),
            bio="Deep tissue work.",
            phone="02 9000 0000",
        ),
        "mid": add_practitioner("Milo Mid", (-33.8150, 151.0010), modalities=("physiotherapy",)),
        "far": add_practitioner("Fay Far", (-37.8140, 144.9633)),
        "hidden": add_practitioner("Pat Pending", (-33.8690, 151.2090), status="pending"),
    }


@pytest.fixture
def spec(client) -> dict:
    return client.get(f"{PREFIX}/api/openapi.json").get_json()


def _validator(spec: dict, name: str) -> jsonschema.Draft202012Validator:
    """Validate a response against a schema of the served OpenAPI document."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema)


# --- search ------------------------------------------------------------------------------


def test_search_by_postcode_matches_the_contract(client, listed, spec):
    response = client.get(f"{API}/practitioners?postcode=2000&country=AU")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    body = response.get_json()
    _validator(spec, "SearchResponse").validate(body)
    assert body["total"] == 2 and body["page"] == 1 and body["per_page"] == 20
    assert body["query"]["postcode"] == "2000" and body["query"]["country"] == "AU"
    assert body["query"]["lat"] == pytest.approx(-33.8649, abs=1e-3)
    assert body["query"]["source"] == "postcode" and body["query"]["radius_km"] == 25.0
    near, mid = body["results"]
    assert near["name"] == "Nina Near" and mid["name"] == "Milo Mid"
    assert near["id"] == listed["near"].id
    assert near["modalities"] == ["remedial-massage"]
    assert near["conditions"] == ["low-back-pain", "neck-pain"]
    assert 0 < near["distance_km"] < mid["distance_km"]
    assert near["location"]["lat"] == -33.87 and near["location"]["country"] == "AU"
    assert near["url"] == f"http://localhost{PREFIX}/practitioners/{listed['near'].id}"
    assert body["nearest_beyond"] == []
    assert client.get(near["url"]).status_code == 200  # the page with the referral form


def test_search_by_coordinates(client, listed):
    body = client.get(f"{API}/practitioners?lat=-37.81&lon=144.96&radius_km=5").get_json()
    assert [r["name"] for r in body["results"]] == ["Fay Far"]
    assert body["query"]["lat"] == -37.81 and body["query"]["source"] == "coordinates"


def test_modality_filter_and_radius(client, listed):
    physio = client.get(f"{API}/practitioners?postcode=2000&modality=physiotherapy").get_json()
    assert [r["name"] for r in physio["results"]] == ["Milo Mid"]
    both = client.get(
        f"{API}/practitioners?postcode=2000&modality=physiotherapy&modality=remedial-massage"
    ).get_json()
    assert [r["name"] for r in both["results"]] == ["Nina Near", "Milo Mid"]
    tight = client.get(f"{API}/practitioners?postcode=2000&radius_km=2").get_json()
    assert [r["name"] for r in tight["results"]] == ["Nina Near"]
    assert tight["query"]["radius_km"] == 2.0


def test_paging(client, listed):
    first = client.get(f"{API}/practitioners?postcode=2000&per_page=1").get_json()
    second = client.get(f"{API}/practitioners?postcode=2000&per_page=1&page=2").get_json()
    third = client.get(f"{API}/practitioners?postcode=2000&per_page=1&page=3").get_json()
    assert (first["total"], first["per_page"], first["page"]) == (2, 1, 1)
    assert [r["name"] for r in first["results"]] == ["Nina Near"]
    assert [r["name"] for r in second["results"]] == ["Milo Mid"] and second["page"] == 2
    assert third["results"] == [] and third["total"] == 2 and third["nearest_beyond"] == []


def test_nothing_in_range_offers_nearest_beyond(client, listed, spec):
    body = client.get(f"{API}/practitioners?postcode=4000&radius_km=10").get_json()
    _validator(spec, "SearchResponse").validate(body)
    assert body["total"] == 0 and body["results"] == []
    names = [r["name"] for r in body["nearest_beyond"]]
    assert names == ["Milo Mid", "Nina Near", "Fay Far"]  # from Brisbane
    distances = [r["distance_km"] for r in body["nearest_beyond"]]
    assert distances == sorted(distances) and distances[0] > 10


# --- one practitioner, taxonomies, places -----------------------------------------------------


def test_practitioner_detail(client, listed, spec):
    response = client.get(f"{API}/practitioners/{listed['near'].id}")
    assert response.status_code == 200
    body = response.get_json()
    _validator(spec, "Practitioner").validate(body)
    assert body["name"] == "Nina Near" and body["bio"] == "Deep tissue work."
    assert body["conditions"] == ["low-back-pain", "neck-pain"]
    assert body["phone"] == "02 9000 0000" and body["locations"][0]["lon"] == 151.21
    assert "email" not in body


@pytest.mark.parametrize("which", ["hidden", "missing", "huge"])
def test_inactive_or_missing_practitioner_is_404_json(client, listed, which):
    pid = {"hidden": listed["hidden"].id, "missing": 999_999, "huge": 10**30}[which]
    response = client.get(f"{API}/practitioners/{pid}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert "Pat Pending" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "first_slug"),
    [("modalities", "chiropractic"), ("conditions", "arthritis"), ("funds", "ahm")],
)
def test_taxonomy_lists(client, spec, path, first_slug):
    body = client.get(f"{API}/{path}").get_json()
    for term in body:
        _validator(spec, "Term").validate(term)
    assert body[0]["slug"] == first_slug
    assert len(body) >= 8


def test_places_autocomplete_from_our_table(client, spec):
    body = client.get(f"{API}/places?q=surr&country=AU").get_json()
    assert body == [
        {"place": "Surry Hills", "postcode": "2010", "state": "NSW", "lat": -33.884,
         "lon": 151.212, "label": "Surry Hills NSW 2010", "kind": "delivery"}
    ]  # fmt: skip
    _validator(spec, "Place").validate(body[0])
    by_postcode = client.get(f"{API}/places?q=20").get_json()
    assert [p["label"] for p in by_postcode] == [
        "Sydney NSW 2000",
        "Sydney NSW 2001",
        "Surry Hills NSW 2010",
        "North Sydney NSW 2060",
    ]
    assert len(client.get(f"{API}/places?q=2&limit=2").get_json()) == 2
    assert client.get(f"{API}/places?q=auck&country=NZ").get_json()[0]["place"] == "Auckland"
    assert client.get(f"{API}/places?q=auck&country=AU").get_json() == []
    assert client.get(f"{API}/places?q=%25").get_json() == []  # no wildcards
    assert client.get(f"{API}/places?q=_").get_json() == []


def test_parse_places_limits(app):
    assert parse_places({"q": " ab "}, app.config) == ("ab", "AU", 10)
    assert parse_places({"q": "ab", "country": "nz", "limit": "3"}, app.config) == ("ab", "NZ", 3)


# --- errors: each a 4xx JSON body with a documented code ---------------------------------


BAD_SEARCHES = [
    ("lat=91&lon=0", 400, "invalid_lat"),
    ("lat=-33&lon=abc", 400, "invalid_lon"),
    ("lat=-33", 400, "invalid_coordinates"),
    ("lon=151", 400, "invalid_coordinates"),
    ("postcode=2000&radius_km=-5", 400, "invalid_radius_km"),
    ("postcode=2000&radius_km=nan", 400, "invalid_radius_km"),
    ("postcode=2000&per_page=100000", 400, "invalid_per_page"),
    ("postcode=2000&per_page=0", 400, "invalid_per_page"),
    ("postcode=2000&page=%C2%B2", 400, "invalid_page"),  # "²" passes str.isdigit()
    (f"postcode=2000&page={'9' * 5000}", 400, "invalid_page"),
    ("postcode=2000&modality=reiki-crystals", 400, "unknown_modality"),
    ("postcode=2000&country=AUS", 400, "invalid_country"),
    ("postcode=2000&country=%C3%85%C3%85", 400, "invalid_country"),
    ("postcode=%27%20OR%201%3D1%20--", 404, "location_not_found"),
    ("postcode=2000%22%3B%20DROP%20TABLE%20referral_postcode%3B%20--", 404, "location_not_found"),
    ("postcode=%25", 404, "location_not_found"),
    (f"postcode={'9' * 5000}", 400, "invalid_postcode"),
    ("postcode=20%0000", 400, "invalid_characters"),
    ("postcode=2000&modality=yoga%00", 400, "invalid_characters"),
    ("", 400, "missing_location"),
    ("postcode=++", 400, "missing_location"),
]


@pytest.mark.parametrize(("query", "status", "code"), BAD_SEARCHES)
def test_bad_search_is_a_documented_4xx(client, listed, spec, query, status, code):
    response = client.get(f"{API}/practitioners?{query}")
    assert response.status_code == status
    body = response.get_json()
    _validator(spec, "Error").validate(body)
    assert body["error"]["code"] == code
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    documented = spec["paths"]["/v1/practitioners"]["get"]["responses"][str(status)]
    assert f"`{code}`" in documented["description"]
    # nothing was written, and the data is still there
    assert client.get(f"{API}/practitioners?postcode=2000").get_json()["total"] == 2


@pytest.mark.parametrize(
    ("query", "code"),
    [("", "invalid_q"), ("q=" + "a" * 101, "invalid_q"), ("q=ab&limit=50", "invalid_limit"),
     ("q=ab&country=1", "invalid_country"), ("q=a%00b", "invalid_characters")],
)  # fmt: skip
def test_bad_places_query_is_400(client, query, code):
    response = client.get(f"{API}/places?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_unknown_path_and_wrong_method_are_json(client):
    missing = client.get(f"{PREFIX}/api/v2/practitioners")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"
    for method in ("post", "put", "delete", "patch"):
        response = getattr(client, method)(f"{API}/practitioners")
        assert response.status_code == 405
        assert response.get_json()["error"]["code"] == "method_not_allowed"
        assert response.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_server_fault_is_json_without_a_trace(make_app, monkeypatch):
    app = make_app(TESTING=False, REFERRAL_PUBLIC_URL="http://localhost", SECRET_KEY="k" * 32)

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("referral.views.api.run_search", broken)
    response = app.test_client().get(f"{API}/practitioners?postcode=2000")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {
            "code": "internal_error",
            "message": "Something went wrong on our side; please try again.",
        }
    }


# --- the OpenAPI document ----------------------------------------------------------------


def test_openapi_document_validates(client, spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["servers"] == [{"url": f"http://localhost{PREFIX}/api"}]
    assert set(spec["paths"]) == {
        "/v1/practitioners",
        "/v1/practitioners/{id}",
        "/v1/languages",
        "/v1/modalities",
        "/v1/conditions",
        "/v1/funds",
        "/v1/places",
        "/v1/export/hsds.json",
        "/v1/export/fhir.json",
        "/openapi.json",
    }
    # every API route the app serves is documented (the HSDS API in its own document:
    # tests/test_hsds.py)
    served = {
        re.sub(r"<\w+:\w+>", "{id}", rule.rule.removeprefix(f"{PREFIX}/api"))
        for rule in client.application.url_map.iter_rules()
        if rule.rule.startswith(f"{PREFIX}/api/")
        and rule.endpoint != "referral.api.unknown"
        and not rule.endpoint.startswith("referral.api.hsds.")
    }
    assert served == set(spec["paths"])
    names = {p["name"] for p in spec["paths"]["/v1/practitioners"]["get"]["parameters"]}
    assert names == {
        "postcode", "country", "lat", "lon", "radius_km", "modality", "condition", "fund",
        "accepting", "home_visits", "language", "telehealth", "page", "per_page",
    }  # fmt: skip
    assert (
        spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
        == error_codes()
    )


def test_openapi_limits_follow_the_config(make_app):
    app = make_app(REFERRAL_MAX_PER_PAGE=50)
    spec = app.test_client().get(f"{PREFIX}/api/openapi.json").get_json()
    params = {p["name"]: p for p in spec["paths"]["/v1/practitioners"]["get"]["parameters"]}
    assert params["per_page"]["schema"]["maximum"] == 50


#: the modules the API's requests run through (forms elsewhere raise their own codes)
API_SOURCES = ("query.py", "search/*.py", "views/api.py", "geo/*.py")


def _codes_in_source() -> set[str]:
    """Every error code the API can raise, read from the source it runs through."""
    codes: set[str] = set()
    for path in (p for pattern in API_SOURCES for p in PACKAGE.glob(pattern)):
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r'InvalidInput\(\s*"([a-z_]+)"', text))
        if re.search(r'InvalidInput\(\s*f"invalid_\{name\}"', text):
            codes |= {
                f"invalid_{name}"
                for name in re.findall(r'_(?:number|integer)\(\s*args,\s*"([a-z_]+)"', text)
            }
    return codes


def test_every_error_code_the_code_raises_is_documented():
    raised = _codes_in_source()
    assert {"invalid_lat", "invalid_per_page", "unknown_modality"} <= raised
    assert raised <= set(ERRORS), raised - set(ERRORS)
    emitted_by_http = {"not_found", "method_not_allowed", "internal_error"}
    assert emitted_by_http <= set(ERRORS)


# --- CORS --------------------------------------------------------------------------------


def test_cors_allows_configured_origin_and_answers_preflight(make_app):
    client = make_app(REFERRAL_CORS_ORIGINS=["https://clinic.example"]).test_client()
    response = client.get(f"{API}/modalities", headers={"Origin": "https://clinic.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://clinic.example"
    assert "Origin" in response.headers["Vary"]
    preflight = client.options(
        f"{API}/practitioners",
        headers={
            "Origin": "https://clinic.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://clinic.example"
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    assert "Accept" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["Allow"] == "GET, HEAD, OPTIONS"
    error = client.get(f"{API}/practitioners?lat=91", headers={"Origin": "https://clinic.example"})
    assert error.status_code == 400  # errors are readable cross-origin too
    assert error.headers["Access-Control-Allow-Origin"] == "https://clinic.example"


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://clinic.example.evil", "http://clinic.example"]
)
def test_cors_refuses_other_origins(make_app, origin):
    client = make_app(REFERRAL_CORS_ORIGINS="https://clinic.example").test_client()
    response = client.get(f"{API}/modalities", headers={"Origin": origin})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Origin" in response.headers["Vary"]
    preflight = client.options(
        f"{API}/practitioners",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_wildcard_and_default_off(make_app, client):
    anyone = make_app(REFERRAL_CORS_ORIGINS=["*"]).test_client()
    response = anyone.get(f"{API}/modalities", headers={"Origin": "https://a.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    default = client.get(f"{API}/modalities", headers={"Origin": "https://a.example"})
    assert "Access-Control-Allow-Origin" not in default.headers
    page = anyone.get(f"{PREFIX}/", headers={"Origin": "https://a.example"})
    assert "Access-Control-Allow-Origin" not in page.headers  # the API only


# --- fuzz: any input gives a documented answer, never a 5xx -------------------------------

_junk = st.text(max_size=30) | st.sampled_from(["", " ", "0", "-1", "1e309", "NaN", "2000", "²"])
_number = st.floats(allow_nan=True, allow_infinity=True).map(repr) | _junk
PARAMS = {
    "postcode": st.sampled_from(["2000", "Parramatta", "Surry Hills 2010", "'; --"]) | _junk,
    "country": st.sampled_from(["AU", "nz", "A1"]) | _junk,
    "lat": _number,
    "lon": _number,
    "radius_km": _number,
    "modality": st.sampled_from(["yoga", "physiotherapy", "yoga,myotherapy"]) | _junk,
    "condition": st.sampled_from(["low-back-pain"]) | _junk,
    "fund": st.sampled_from(["bupa"]) | _junk,
    "accepting": st.sampled_from(["1", "0", "true"]) | _junk,
    "page": st.integers(-5, 20_000).map(str) | _junk,
    "per_page": st.integers(-5, 200).map(str) | _junk,
}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.fixed_dictionaries({}, optional=PARAMS))
def test_fuzz_search_never_fails_undocumented(client, spec, params):
    response = client.get(f"{API}/practitioners", query_string=params)
    assert response.status_code < 500, (params, response.get_data(as_text=True))
    body = response.get_json()
    if response.status_code == 200:
        _validator(spec, "SearchResponse").validate(body)
        assert len(body["results"]) <= body["per_page"] <= 100
    else:
        _validator(spec, "Error").validate(body)
        assert ERRORS[body["error"]["code"]][0] == response.status_code


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.fixed_dictionaries({}, optional={"q": _junk, "country": _junk, "limit": _junk}))
def test_fuzz_places(client, spec, params):
    response = client.get(f"{API}/places", query_string=params)
    assert response.status_code in (200, 400), params
    if response.status_code == 400:
        assert response.get_json()["error"]["code"] in ERRORS
    else:
        for place in response.get_json():
            _validator(spec, "Place").validate(place)


def test_page_urls_are_what_url_for_builds(app):
    from flask import url_for

    from referral.views.api import page_urls

    with app.test_request_context("/", base_url="https://clinic.example/site"):
        page_url = page_urls()
        for practitioner_id in (1, 42, 2**31 - 2):
            expected = url_for(
                "referral.practitioner", practitioner_id=practitioner_id, _external=True
            )
            assert page_url(practitioner_id) == expected


def test_search_echoes_the_filters_it_understood(client, listed):
    response = client.get(
        f"{API}/practitioners?postcode=2000&modality=yoga,physiotherapy&accepting=yes"
    )
    assert response.status_code == 200
    assert response.get_json()["query"]["filters"] == {
        "modalities": ["yoga", "physiotherapy"],
        "condition": None,
        "fund": None,
        "accepting": True,
        "home_visits": False,
        "language": None,
        "telehealth": False,
    }


# --- the capped total, the time limit, languages and telehealth --------------------------


def test_total_past_the_cap_says_so(make_app, add_practitioner):
    client = make_app(REFERRAL_MAX_TOTAL=2).test_client()
    for n in range(3):
        add_practitioner(f"Capped {n}", (-33.87 - n * 0.001, 151.21))
    body = client.get(f"{API}/practitioners?postcode=2000&per_page=1").get_json()
    assert (body["total"], body["total_capped"]) == (2, True)
    assert len(body["results"]) == 1
    page = client.get(f"{PREFIX}/?postcode=2000&per_page=1").get_data(as_text=True)
    assert "2+ practitioners near" in page


def test_total_under_the_cap_is_exact(client, listed):
    body = client.get(f"{API}/practitioners?postcode=2000&radius_km=50").get_json()
    assert (body["total"], body["total_capped"]) == (2, False)


def test_a_search_past_its_time_limit_is_a_503_in_plain_words(client, listed, monkeypatch):
    from referral.search import SearchTimeout

    def slow(*_args, **_kwargs):
        raise SearchTimeout()

    monkeypatch.setattr("referral.views.api.run_search", slow)
    monkeypatch.setattr("referral.views.public.run_search", slow)
    response = client.get(f"{API}/practitioners?postcode=2000")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert response.get_json()["error"]["code"] == "search_timeout"
    assert "try again" in response.get_json()["error"]["message"]
    page = client.get(f"{PREFIX}/?postcode=2000")
    assert page.status_code == 503
    assert "taking longer than it should" in page.get_data(as_text=True)


def test_language_by_code_or_name_and_chinese_finds_cantonese(client, add_practitioner):
    add_practitioner("Canto", (-33.87, 151.21), languages=["English", "Cantonese"])
    add_practitioner("Mando", (-33.88, 151.21), languages=["Mandarin"])
    add_practitioner("Greta", (-33.89, 151.21), languages=["Greek"])
    names = {}
    for language in ("yue", "Cantonese", "Chinese", "zh", "el", "greek"):
        body = client.get(f"{API}/practitioners?postcode=2000&language={language}").get_json()
        names[language] = [r["name"] for r in body["results"]]
    assert names["yue"] == names["Cantonese"] == ["Canto"]
    assert names["Chinese"] == names["zh"] == ["Canto", "Mando"]
    assert names["el"] == names["greek"] == ["Greta"]
    listed_languages = client.get(f"{API}/languages").get_json()
    assert {"code": "yue", "name": "Cantonese"} in listed_languages
    assert [x["code"] for x in listed_languages] == ["yue", "en", "el", "cmn"]
    form = client.get(f"{PREFIX}/").get_data(as_text=True)
    assert '<option value="yue"' in form and "Mandarin Chinese" in form


def test_unknown_language_is_a_400_not_an_empty_page(client, listed):
    response = client.get(f"{API}/practitioners?postcode=2000&language=Notalanguage")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "unknown_language"


def test_telehealth_is_a_filter(client, add_practitioner):
    add_practitioner("Video", (-33.87, 151.21), telehealth=True)
    add_practitioner("Rooms", (-33.86, 151.21))
    body = client.get(f"{API}/practitioners?postcode=2000&telehealth=1").get_json()
    assert [(r["name"], r["telehealth"]) for r in body["results"]] == [("Video", True)]
    bad = client.get(f"{API}/practitioners?postcode=2000&telehealth=maybe")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_telehealth"

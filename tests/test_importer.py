from __future__ import annotations

import pytest
from sqlalchemy import func, select

from referral.importer import COLUMNS, REQUIRED, escape_formula, import_csv, unescape_formula
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


# --- the whole listing -------------------------------------------------------------

FULL = ",".join(COLUMNS)


def _full(columns: tuple[str, ...] = COLUMNS, **cells: str) -> str:
    """One row of a complete listing in ``columns``, with ``cells`` changed."""
    row = {
        "external_id": "m-100",
        "name": "Cleo Park",
        "business_name": "Park Physio",
        "modalities": "Physiotherapy; Remedial massage",
        "conditions": "Low back pain; sciatica",
        "bio": '"Twenty years in practice.\nHome visits in the inner west."',
        "languages": "English; Korean",
        "accreditation_body": "Australian Physiotherapy Association",
        "membership_number": "APA-4471",
        "funds": "Bupa:123456A; HCF",
        "accepting_new_patients": "No",
        "capacity": "",
        "waitlist_weeks": "",
        "weekly_referral_cap": "",
        "capacity_confirmed": "",
        "telehealth": "yes",
        "home_visits": "Y",
        "phone": "02 9555 0101",
        "email": "cleo@example.com",
        "website": "https://park.example.com",
        "booking_url": "",
        "location_name": "Park Physio Newtown",
        "street": "12 King St",
        "suburb": "Newtown",
        "postcode": "2042",
        "state": "NSW",
        "country": "AU",
        "lat": "-33.8976",
        "lon": "151.1793",
        "home_visit_radius_km": "12.5",
        "opening_hours": '"Mon-Fri 09:00-17:00; Sat 9-12:30"',
    }
    row.update(cells)
    return ",".join(row[c] for c in columns)


def _cleo(session) -> Practitioner:
    session.expire_all()
    return session.scalars(select(Practitioner).where(Practitioner.external_id == "m-100")).one()


def test_a_full_row_carries_the_whole_listing(app, session):
    report = import_csv(session, _csv(_full(), header=FULL), app.config)
    assert (report.created, report.errors) == (1, [])
    cleo = _cleo(session)
    assert (cleo.name, cleo.business_name, cleo.bio) == (
        "Cleo Park",
        "Park Physio",
        "Twenty years in practice.\nHome visits in the inner west.",
    )
    assert [m.slug for m in cleo.modalities] == ["physiotherapy", "remedial-massage"]
    assert [c.slug for c in cleo.conditions] == ["low-back-pain", "sciatica"]
    assert cleo.languages == ["English", "Korean"]
    assert [code.code for code in cleo.language_codes] == ["en", "ko"]
    assert (cleo.accreditation_body, cleo.membership_number) == (
        "Australian Physiotherapy Association",
        "APA-4471",
    )
    assert {f.fund.slug: f.provider_number for f in cleo.funds} == {"bupa": "123456A", "hcf": None}
    assert (cleo.accepting_new_patients, cleo.telehealth, cleo.home_visits) == (False, True, True)
    place = cleo.locations[0]
    assert (place.name, place.home_visit_radius_km) == ("Park Physio Newtown", 12.5)
    weekday = [["09:00", "17:00"]]
    assert place.opening_hours == {
        "mon": weekday,
        "tue": weekday,
        "wed": weekday,
        "thu": weekday,
        "fri": weekday,
        "sat": [["09:00", "12:30"]],
    }
    again = import_csv(session, _csv(_full(), header=FULL), app.config)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)


@pytest.mark.parametrize(
    "modalities, funds, conditions",
    [
        ("Physiotherapy; Remedial massage", "Bupa:123456A; HCF", "Low back pain; Sciatica"),
        ("physiotherapy;remedial-massage", "bupa:123456A;hcf", "low-back-pain;sciatica"),
        ('"PHYSIOTHERAPY, remedial massage"', '"BUPA:123456A, hcf"', '"LOW BACK PAIN, sciatica"'),
        ("Remedial-Massage; physiotherapy", "HCF; Bupa: 123456A", "Sciatica; low-back-pain"),
    ],
)
def test_list_values_take_a_name_or_a_slug_in_any_case(app, session, modalities, funds, conditions):
    row = _full(modalities=modalities, funds=funds, conditions=conditions)
    report = import_csv(session, _csv(row, header=FULL), app.config)
    assert (report.created, report.errors) == (1, [])
    cleo = _cleo(session)
    assert [m.slug for m in cleo.modalities] == ["physiotherapy", "remedial-massage"]
    assert [c.slug for c in cleo.conditions] == ["low-back-pain", "sciatica"]
    assert {f.fund.slug: f.provider_number for f in cleo.funds} == {"bupa": "123456A", "hcf": None}


@pytest.mark.parametrize(
    "cells, message",
    [
        (
            {"modalities": "Reiki"},
            "modalities: 'Reiki' is not a modality this directory lists (write one of: "
            "Chiropractic, Clinical pilates,",
        ),
        ({"conditions": "Gout"}, "conditions: 'Gout' is not a condition this directory lists"),
        ({"funds": "Bupa; Medicare"}, "funds: 'Medicare' is not a health fund this directory"),
        ({"telehealth": "sometimes"}, "telehealth 'sometimes' is not yes or no"),
        ({"home_visit_radius_km": "far"}, "home_visit_radius_km 'far' is not a number"),
        ({"home_visit_radius_km": "900"}, "home_visit_radius_km 900 is out of range (0 to 500"),
        ({"opening_hours": "Mon 9am to 5pm"}, "opening_hours: Monday: write opening hours like"),
        ({"opening_hours": "Someday 09:00-17:00"}, "opening_hours: cannot read 'Someday"),
        ({"opening_hours": '"Mon 09:00-12:00; mon 13:00-17:00"'}, "Monday appears twice"),
        ({"business_name": "www.cheap.example"}, "business_name 'www.cheap.example' holds a"),
        ({"bio": "x" * 5001}, "bio is longer than 5000 characters"),
        ({"membership_number": "9" * 81}, "membership_number is longer than 80 characters"),
    ],
)
def test_a_bad_value_names_the_line_column_and_value_and_writes_nothing_of_the_row(
    app, session, cells, message
):
    second = _full(external_id="m-101", name="Dana Ode", **cells)
    report = import_csv(session, _csv(_full(), second, header=FULL), app.config)
    assert [(e.line, message in e.message) for e in report.errors] == [(3, True)], report.errors
    assert session.scalars(select(Practitioner.external_id)).all() == ["m-100"]
    assert _count(session, Location) == 1


def test_a_column_left_out_keeps_what_the_listing_has(app, session):
    import_csv(session, _csv(_full(), header=FULL), app.config)
    # the first format's columns only: the bio, hours and languages stay as they were
    short = _full(REQUIRED)
    report = import_csv(session, _csv(short), app.config)
    assert (report.updated, report.unchanged, report.errors) == (0, 1, [])
    renamed = short.replace("Cleo Park", "Cleo Park-Lee")
    assert import_csv(session, _csv(renamed), app.config).updated == 1
    cleo = _cleo(session)
    assert cleo.name == "Cleo Park-Lee" and cleo.bio.startswith("Twenty years")
    assert cleo.languages == ["English", "Korean"] and cleo.locations[0].opening_hours["sat"]


def test_an_empty_cell_clears_the_value_and_flags_go_back_to_their_defaults(app, session):
    import_csv(session, _csv(_full(), header=FULL), app.config)
    blank = _full(
        bio="",
        business_name="",
        conditions="",
        languages="",
        accepting_new_patients="",
        telehealth="",
        home_visits="",
        home_visit_radius_km="",
        opening_hours="",
        location_name="",
    )
    assert import_csv(session, _csv(blank, header=FULL), app.config).updated == 1
    cleo = _cleo(session)
    assert (cleo.bio, cleo.business_name, cleo.conditions, cleo.languages) == ("", None, [], [])
    assert (cleo.accepting_new_patients, cleo.telehealth, cleo.home_visits) == (True, False, False)
    place = cleo.locations[0]
    assert (place.name, place.home_visit_radius_km, place.opening_hours) == (None, None, None)


def test_headers_are_matched_in_any_case_with_spaces(app, session):
    header = FULL.replace("external_id", "External ID").replace(
        "home_visit_radius_km", "Home visit radius km"
    )
    report = import_csv(session, _csv(_full(), header=header), app.config)
    assert (report.created, report.errors) == (1, [])


def test_rows_of_one_practitioner_must_agree_on_the_new_columns_too(app, session):
    second = _full(location_name="Second room", bio="Another bio")
    report = import_csv(session, _csv(_full(), second, header=FULL), app.config)
    assert [e.line for e in report.errors] == [2, 3]
    assert "bio differs from line 2" in report.errors[1].message
    assert _count(session) == 0


def test_an_excel_file_with_bom_and_crlf_imports(app, session):
    data = b"\xef\xbb\xbf" + _csv(_full(), header=FULL).replace(b"\n", b"\r\n")
    report = import_csv(session, data, app.config)
    assert (report.created, report.errors) == (1, [])
    # the line break inside the quoted bio is Excel's too
    assert _cleo(session).bio == "Twenty years in practice.\r\nHome visits in the inner west."


def test_capacity_columns_take_words_or_slugs_and_are_checked_like_the_editor(session, app):
    good = _full(
        capacity="Waitlist for new patients",
        waitlist_weeks="3",
        weekly_referral_cap="8",
        booking_url="https://cal.com/cleo/first",
    )
    report = import_csv(session, f"{FULL}\n{good}\n".encode(), app.config)
    assert (report.created, report.errors) == (1, [])
    cleo = session.scalars(select(Practitioner).where(Practitioner.external_id == "m-100")).one()
    assert (cleo.capacity_status, cleo.waitlist_weeks, cleo.weekly_referral_cap) == (
        "waitlist",
        3,
        8,
    )
    assert cleo.booking_url == "https://cal.com/cleo/first"
    assert cleo.accepting_new_patients is False  # a waitlist is not "accepting now"

    bad = [
        _full(external_id="m-1", capacity="sometimes"),
        _full(external_id="m-2", capacity="waitlist"),
        _full(external_id="m-3", capacity="closed", booking_url="http://book.example"),
        _full(external_id="m-4", capacity="accepting", capacity_confirmed="last week"),
    ]
    report = import_csv(session, (FULL + "\n" + "\n".join(bad) + "\n").encode(), app.config)
    assert report.created == 0
    messages = [str(e) for e in report.errors]
    assert "capacity 'sometimes' is not one of: accepting, waitlist" in messages[0]
    assert "capacity: Say roughly how many weeks new patients wait" in messages[1]
    assert "booking_url 'http://book.example'" in messages[2]
    assert "capacity_confirmed 'last week' is not a date" in messages[3]
    assert (
        session.scalars(select(Practitioner).where(Practitioner.external_id == "m-1")).all() == []
    )

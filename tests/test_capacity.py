"""Capacity: what a listing says of new patients, the weekly cap across the week boundary,
the editor's checks, the form's notice, the API's ``capacity`` and booking links."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from referral import booking, capacity, listings
from referral.errors import InvalidInput
from referral.models import Practitioner, ReferralRequest
from referral.referrals import ReferralData, create_referral

PREFIX = "/find-a-therapist"
#: Monday 7 Dec 2026 00:00 in Sydney (AEDT, UTC+11) is Sunday 6 Dec 13:00 UTC
WEEK_TURNS = datetime(2026, 12, 6, 13, 0)


@pytest.fixture
def ctx(app):
    with app.test_request_context("/"):
        yield


def data(n: int = 0) -> ReferralData:
    return ReferralData(patient_name=f"Pat {n}", email=f"p{n}@example.com", consent_version="v")


def test_weeks_start_on_monday_midnight_in_the_site_time_zone(ctx):
    assert capacity.week_start(datetime(2026, 12, 6, 12, 59)) == datetime(2026, 11, 29, 13, 0)
    assert capacity.week_start(WEEK_TURNS) == WEEK_TURNS
    assert capacity.next_week_start(datetime(2026, 12, 2, 3, 0)) == WEEK_TURNS
    # "last confirmed" is the date in Sydney: 14:00 UTC on the 1st is 1 am on the 2nd there
    assert capacity.local_date(datetime(2026, 12, 1, 14, 0)).isoformat() == "2026-12-02"


def test_the_weekly_cap_shows_a_waitlist_until_the_week_turns(ctx, session, add_practitioner):
    nina = add_practitioner("Nina", (-33.87, 151.21), weekly_referral_cap=2)
    sunday_night = datetime(2026, 12, 6, 12, 0)  # Sunday 11 pm in Sydney
    create_referral(session, nina, data(1), now=datetime(2026, 12, 6, 1, 0))
    assert nina.accepting_new_patients and capacity.of(nina).status == "accepting"
    create_referral(session, nina, data(2), now=sunday_night)
    session.refresh(nina)
    assert not nina.accepting_new_patients
    shown = capacity.of(nina)
    assert (shown.status, shown.full, shown.takes_referrals) == ("waitlist", True, True)
    assert "places for new patients are taken" in shown.wait_words
    # a waitlist still takes requests
    create_referral(session, nina, data(3), now=datetime(2026, 12, 6, 12, 30))
    assert capacity.refresh_all(session, datetime(2026, 12, 6, 12, 59)) == 0
    assert capacity.refresh_all(session, WEEK_TURNS) == 1
    session.refresh(nina)
    assert nina.accepting_new_patients and capacity.of(nina).status == "accepting"
    assert capacity.refresh_all(session, WEEK_TURNS) == 0  # nothing to change twice


def test_the_accepting_filter_means_accepting_now(ctx, session, add_practitioner, client):
    add_practitioner("Open Olga", (-33.87, 151.21))
    full = add_practitioner("Full Fred", (-33.871, 151.21), weekly_referral_cap=1)
    add_practitioner("Wait Wendy", (-33.872, 151.21), capacity_status="waitlist", waitlist_weeks=3)
    create_referral(session, full, data())
    answer = client.get(f"{PREFIX}/api/v1/practitioners?lat=-33.87&lon=151.21").get_json()
    by_name = {r["name"]: r for r in answer["results"]}
    assert by_name["Open Olga"]["capacity"]["status"] == "accepting"
    assert by_name["Full Fred"]["capacity"] == {
        "status": "waitlist",
        "waitlist_weeks": None,
        "updated": None,
    }
    assert by_name["Wait Wendy"]["capacity"]["waitlist_weeks"] == 3
    accepting = client.get(f"{PREFIX}/api/v1/practitioners?lat=-33.87&lon=151.21&accepting=1")
    assert [r["name"] for r in accepting.get_json()["results"]] == ["Open Olga"]
    page = client.get(f"{PREFIX}/?lat=-33.87&lon=151.21").get_data(as_text=True)
    assert "Waitlist for new patients · about 3 weeks" in page
    assert page.count("Waitlist for new patients") == 2


def test_a_new_listing_not_accepting_is_existing_patients_only(session, add_practitioner):
    old_style = add_practitioner("Old", (-33.87, 151.21), accepting_new_patients=False)
    assert old_style.capacity_status == "existing_only"
    closed = add_practitioner("Shut", (-33.87, 151.21), capacity_status="closed")
    assert closed.accepting_new_patients is False


def test_closed_and_existing_only_listings_offer_no_form_and_refuse_a_post(
    ctx, session, add_practitioner, client
):
    for status, instead in (
        ("existing_only", "If you are already their patient, phone or email them"),
        ("closed", "search for another practitioner"),
    ):
        p = add_practitioner(
            f"P {status}", (-33.87, 151.21), capacity_status=status, accepting_new_patients=False
        )
        html = client.get(f"{PREFIX}/practitioners/{p.id}").get_data(as_text=True)
        assert "Send request" not in html and 'name="patient_name"' not in html
        assert instead in html
        with pytest.raises(InvalidInput) as info:
            create_referral(session, p, data())
        assert info.value.status == 409
    assert session.scalar(select(func.count()).select_from(ReferralRequest)) == 0


def test_the_form_tells_the_patient_the_usual_wait(ctx, add_practitioner, client):
    p = add_practitioner("Wendy", (-33.87, 151.21), capacity_status="waitlist", waitlist_weeks=3)
    html = client.get(f"{PREFIX}/practitioners/{p.id}").get_data(as_text=True)
    assert "Usual wait: about 3 weeks." in html and "Send request" in html
    assert html.index("Usual wait") < html.index("Send request")
    detail = client.get(f"{PREFIX}/api/v1/practitioners/{p.id}").get_json()
    assert detail["capacity"] == {"status": "waitlist", "waitlist_weeks": 3, "updated": None}
    assert detail["accepting_new_patients"] is False


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"capacity_status": "busy"}, "invalid_capacity"),
        ({"capacity_status": "waitlist", "waitlist_weeks": ""}, "missing_waitlist_weeks"),
        ({"capacity_status": "waitlist", "waitlist_weeks": "0"}, "invalid_waitlist_weeks"),
        ({"capacity_status": "waitlist", "waitlist_weeks": "3.5"}, "invalid_waitlist_weeks"),
        ({"weekly_referral_cap": "lots"}, "invalid_weekly_cap"),
        ({"weekly_referral_cap": "-1"}, "invalid_weekly_cap"),
        ({"booking_url": "http://cal.com/nina"}, "invalid_booking_url"),
        ({"booking_url": "https://"}, "invalid_booking_url"),
        ({"booking_url": "javascript:alert(1)"}, "invalid_booking_url"),
        ({"booking_url": "https://[oops.example/"}, "invalid_booking_url"),
    ],
)
def test_editor_checks_refuse_bad_capacity_and_change_nothing(
    ctx, session, add_practitioner, change, code
):
    p = add_practitioner("Nina", (-33.87, 151.21))
    profile = {"name": "Nina", "capacity_status": "accepting", **change}
    with pytest.raises(InvalidInput) as info:
        listings.update_profile(session, p, profile, "AU")
    assert info.value.code == code and info.value.message
    session.rollback()
    session.refresh(p)
    assert (p.capacity_status, p.booking_url, p.weekly_referral_cap) == ("accepting", None, None)


def test_saving_confirms_the_capacity_and_keeps_accepting_in_step(
    ctx, session, add_practitioner, client
):
    p = add_practitioner("Nina", (-33.87, 151.21))
    profile = {
        "name": "Nina",
        "capacity_status": "waitlist",
        "waitlist_weeks": "6",
        "weekly_referral_cap": "10",
        "booking_url": "https://cal.com/nina/30min",
    }
    listings.update_profile(session, p, profile, "AU")
    session.refresh(p)
    assert (p.capacity_status, p.waitlist_weeks, p.weekly_referral_cap) == ("waitlist", 6, 10)
    assert p.accepting_new_patients is False and p.capacity_confirmed_at is not None
    confirmed = capacity.local_date(p.capacity_confirmed_at)
    assert capacity.of(p).document()["updated"] == confirmed.isoformat()
    html = client.get(f"{PREFIX}/practitioners/{p.id}").get_data(as_text=True)
    assert f"Last confirmed by the practitioner on {confirmed.day} {confirmed:%b %Y}." in html
    assert "Usual wait: about 6 weeks." in html
    listings.update_profile(session, p, {**profile, "capacity_status": "accepting"}, "AU")
    assert p.accepting_new_patients is True and p.waitlist_weeks is None


def test_the_editor_page_shows_a_clear_message_beside_the_field(client, session, make_account):
    from tests.conftest import post_form, sign_in

    make_account("ana@example.com", name="Ana")
    sign_in(client, "ana@example.com")
    bad = post_form(
        client,
        f"{PREFIX}/account/listing",
        {"name": "Ana", "capacity_status": "waitlist", "waitlist_weeks": ""},
    )
    assert bad.status_code == 400
    assert "Say roughly how many weeks new patients wait" in bad.get_data(as_text=True)
    good = post_form(
        client,
        f"{PREFIX}/account/listing",
        {"name": "Ana", "capacity_status": "waitlist", "waitlist_weeks": "4"},
    )
    assert good.status_code == 302
    ana = session.scalars(select(Practitioner).where(Practitioner.name == "Ana")).one()
    session.refresh(ana)
    assert (ana.capacity_status, ana.waitlist_weeks) == ("waitlist", 4)


def test_booking_links_are_prefilled_only_where_the_provider_documents_how():
    p = Practitioner(name="N", booking_url="https://cal.com/nina/30min")
    assert (
        booking.booking_link(p, "Pat O'Neil", "pat@example.com")
        == "https://cal.com/nina/30min?name=Pat+O%27Neil&email=pat%40example.com"
    )
    p.booking_url = "https://cal.com/nina?month=2026-12"
    assert booking.booking_link(p, "Pat", None) == "https://cal.com/nina?month=2026-12&name=Pat"
    for plain in ("https://nina.cliniko.com/bookings", "https://www.halaxy.com/book/nina/1"):
        p.booking_url = plain
        assert booking.booking_link(p, "Pat", "pat@example.com") == plain
    p.booking_url = None
    assert booking.booking_link(p, "Pat", "pat@example.com") is None


def test_the_migration_makes_listings_not_accepting_existing_patients_only(tmp_path):
    from sqlalchemy import text

    from referral import migrate
    from referral.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    migrate.upgrade(engine, "0008")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO referral_practitioner (name, bio, languages, accepting_new_patients,"
                " telehealth, home_visits, status, created_at, updated_at) VALUES"
                " ('Open', '', '[]', 1, 0, 0, 'active', '2026-01-01', '2026-01-01'),"
                " ('Shut', '', '[]', 0, 0, 0, 'active', '2026-01-01', '2026-01-01')"
            )
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT name, capacity_status FROM referral_practitioner ORDER BY name")
        ).all()
    assert [tuple(r) for r in rows] == [("Open", "accepting"), ("Shut", "existing_only")]
    engine.dispose()

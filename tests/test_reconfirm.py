"""Verified, with a date: "Details confirmed <month year>" on listings, the re-confirm
request and its one reminder, the one-use signed link, and stale listings."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from referral import moderation, reconfirm
from referral.db import get_session
from referral.models import AuditEvent, Practitioner, utcnow
from referral.wording import month_year
from tests.conftest import csrf_token

P = "/find-a-therapist"
PUBLIC = "https://clinic.example"


def test_month_year_is_in_the_sites_time_zone(app):
    with app.app_context():
        # 30 Nov 14:00 UTC is already 1 December in Sydney
        assert month_year(datetime(2026, 11, 30, 14, 0)) == "December 2026"
        app.config["REFERRAL_TIMEZONE"] = "UTC"
        assert month_year(datetime(2026, 11, 30, 14, 0)) == "November 2026"
        assert month_year(None) == ""


def test_approval_dates_the_listing_and_the_page_says_so(app, client, session, add_practitioner):
    p = add_practitioner("Pat", (-33.87, 151.21), status="pending")
    with app.test_request_context():
        moderation.approve(session, p, "admin@example.com")
    assert p.verified_by == "admin@example.com"
    html = client.get(f"{P}/practitioners/{p.id}").get_data(as_text=True)
    with app.app_context():
        assert f"Details confirmed {month_year(p.verified_at)}" in html
    assert "may have changed" not in html


def test_a_stale_listing_says_when_it_was_last_confirmed(client, session, add_practitioner):
    p = add_practitioner("Old", (-33.87, 151.21), verified_at=datetime(2025, 1, 10, 3, 0))
    html = client.get(f"{P}/practitioners/{p.id}").get_data(as_text=True)
    assert "Details last confirmed January 2025: they may have changed since" in html


@pytest.fixture
def old(session, make_account, add_practitioner):
    user = make_account("old@example.com", listing=False)
    return add_practitioner(
        "Old Listing",
        (-33.87, 151.21),
        user_id=user.id,
        verified_by="admin@example.com",
        verified_at=utcnow() - timedelta(days=200),
    )


def _link(mail) -> str:
    return re.search(r"https://clinic\.example(\S+/listing/confirm/\S+)", mail.text).group(1)


def test_request_then_one_reminder_then_nothing(
    make_app, session, old, add_practitioner, smtp_server
):
    fresh = add_practitioner(
        "Fresh", (-33.87, 151.21), email="fresh@example.com", verified_at=utcnow()
    )
    app = make_app(REFERRAL_PUBLIC_URL=PUBLIC, **smtp_server.config)
    with app.app_context():
        assert reconfirm.send_requests(get_session()) == 1
        assert reconfirm.send_requests(get_session()) == 0  # the reminder waits two weeks
        later = utcnow() + reconfirm.REMINDER_AFTER + timedelta(hours=1)
        assert reconfirm.send_requests(get_session(), now=later) == 1
        assert reconfirm.send_requests(get_session(), now=later + timedelta(days=30)) == 0
    first, reminder = smtp_server.to("old@example.com")
    assert "Are your details still right?" in first.message["Subject"]
    assert "Reminder" in reminder.message["Subject"] and "/listing/confirm/" in reminder.text
    assert smtp_server.to("fresh@example.com") == [] and fresh.id
    notes = session.scalars(
        select(AuditEvent.note).where(AuditEvent.action == "reconfirm_request")
    ).all()
    assert notes == ["first request", "reminder"]


def test_the_link_confirms_once_and_moves_the_date(make_app, session, old, smtp_server):
    app = make_app(REFERRAL_PUBLIC_URL=PUBLIC, **smtp_server.config)
    with app.app_context():
        reconfirm.send_requests(get_session())
    [mail] = smtp_server.to("old@example.com")
    link = _link(mail)
    client = app.test_client()
    page = client.get(link)
    assert page.status_code == 200 and "Yes, my details are right" in page.get_data(as_text=True)
    session.expire_all()
    before = session.get(Practitioner, old.id).verified_at
    assert before < utcnow() - timedelta(days=199)  # opening the link changed nothing
    refused = client.post(link, data={})
    assert refused.status_code == 400
    done = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert done.status_code == 200 and "confirmed in" in done.get_data(as_text=True)
    session.expire_all()
    after = session.get(Practitioner, old.id)
    assert after.verified_at > utcnow() - timedelta(minutes=5)
    assert after.verified_by == "old@example.com"
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "reconfirm")).all()
    assert event.actor == "old@example.com" and "verified_at" in event.changes
    used = client.get(link)
    assert used.status_code == 409 and "already confirmed" in used.get_data(as_text=True)
    assert client.get(f"{P}/listing/confirm/forged").status_code == 404


def test_a_suspended_listings_link_does_not_work(make_app, session, old, smtp_server):
    app = make_app(REFERRAL_PUBLIC_URL=PUBLIC, **smtp_server.config)
    with app.app_context():
        reconfirm.send_requests(get_session())
    link = _link(smtp_server.to("old@example.com")[0])
    old.status = "suspended"
    session.commit()
    assert app.test_client().get(link).status_code == 404


def test_digest_command_sends_the_requests(make_app, session, old, smtp_server):
    app = make_app(REFERRAL_PUBLIC_URL=PUBLIC, **smtp_server.config)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["referral", "digest"])
    assert "Asked 1 practitioners to confirm their details." in result.output
    assert len(smtp_server.to("old@example.com")) == 1


def test_requests_can_be_turned_off(make_app, session, old):
    app = make_app(REFERRAL_RECONFIRM_AFTER_DAYS=None)
    with app.app_context():
        assert reconfirm.send_requests(get_session()) == 0
        assert not reconfirm.is_stale(old)

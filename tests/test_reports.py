"""'Report wrong details': the visitor's form, the practitioner's email, the queue's
reports section and the admin's handling (audited)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from referral.models import AuditEvent, ProblemReport
from tests.conftest import csrf_token, post_form, sign_in

P = "/find-a-therapist"


@pytest.fixture
def ana(add_practitioner, make_account, session):
    user = make_account("ana-account@example.com", listing=False)
    return add_practitioner("Ana Lima", (-33.87, 151.21), email="ana@example.com", user_id=user.id)


def _reports(session):
    session.expire_all()
    return list(session.scalars(select(ProblemReport).order_by(ProblemReport.id)))


def test_every_listing_links_to_the_report_form(client, ana):
    html = client.get(f"{P}/practitioners/{ana.id}").get_data(as_text=True)
    assert f'href="{P}/practitioners/{ana.id}/report"' in html and "Report wrong details" in html
    form = client.get(f"{P}/practitioners/{ana.id}/report").get_data(as_text=True)
    for label in ("The phone number is wrong", "The practice has closed", "not qualified"):
        assert label in form


def test_a_report_is_stored_queued_and_told_to_the_practitioner(
    make_app, session, ana, smtp_server, make_account
):
    app = make_app(REFERRAL_PUBLIC_URL="https://clinic.example", **smtp_server.config)
    client = app.test_client()
    url = f"{P}/practitioners/{ana.id}/report"
    response = post_form(
        client,
        url,
        {"kind": "phone", "note": "Rang it, it is now 02 9999 0000", "email": "Kim@Example.com"},
    )
    assert response.status_code == 200 and "Thank you" in response.get_data(as_text=True)
    [report] = _reports(session)
    assert (report.kind, report.status, report.reporter_email) == (
        "phone",
        "open",
        "kim@example.com",
    )
    [mail] = smtp_server.to("ana-account@example.com")
    assert "The phone number is wrong" in mail.text
    assert f"https://clinic.example{P}/practitioners/{ana.id}" in mail.text
    # the practitioner hears what kind of detail, not who said so nor what they wrote
    assert "kim@example.com" not in mail.text.lower() and "9999" not in mail.text
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "report")).all()
    assert event.object_id == str(ana.id) and event.actor == "anonymous"
    assert "kim" not in (event.note or "")


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "Please choose what is wrong."),
        ({"kind": "made-up"}, "Not a valid choice"),
        ({"kind": "other"}, "Please say in the note what is wrong."),
        ({"kind": "hours", "note": "x" * 1001}, "under 1000 characters"),
        ({"kind": "hours", "email": "not-an-address"}, "valid email address"),
    ],
)
def test_bad_reports_are_sent_back_with_a_clear_message(client, session, ana, data, message):
    response = post_form(client, f"{P}/practitioners/{ana.id}/report", data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and "There is a problem" in html
    assert _reports(session) == []


def test_a_report_without_its_csrf_token_is_refused(client, session, ana):
    response = client.post(f"{P}/practitioners/{ana.id}/report", data={"kind": "phone"})
    assert response.status_code == 400 and "Please try again" in response.get_data(as_text=True)
    assert _reports(session) == []


def test_only_live_listings_can_be_reported(client, session, ana, add_practitioner):
    hidden = add_practitioner("Hidden", (-33.87, 151.21), status="pending")
    assert client.get(f"{P}/practitioners/{hidden.id}/report").status_code == 404
    token = csrf_token(client, f"{P}/practitioners/{ana.id}/report")
    response = client.post(
        f"{P}/practitioners/{hidden.id}/report", data={"kind": "phone", "csrf_token": token}
    )
    assert response.status_code == 404 and _reports(session) == []


def test_reports_past_the_rate_limit_get_429(make_app, session, ana):
    client = make_app(REFERRAL_REPORT_RATE_LIMIT="2 per hour").test_client()
    url = f"{P}/practitioners/{ana.id}/report"
    assert post_form(client, url, {}).status_code == 400  # sent back: not counted
    for _ in range(2):
        assert post_form(client, url, {"kind": "closed"}).status_code == 200
    response = post_form(client, url, {"kind": "closed"})
    assert response.status_code == 429 and "at most 2 per hour" in response.get_data(as_text=True)
    assert len(_reports(session)) == 2


def test_admin_sees_reports_in_the_queue_and_resolves_or_dismisses_them(
    client, session, ana, make_account
):
    url = f"{P}/practitioners/{ana.id}/report"
    post_form(client, url, {"kind": "closed", "note": "Shop is empty"})
    post_form(client, url, {"kind": "address"})
    first, second = _reports(session)
    make_account("admin@example.com", admin=True, listing=False)
    sign_in(client, "admin@example.com")
    queue = client.get(f"{P}/admin/listings").get_data(as_text=True)
    assert "Problem reports (2 open)" in queue and "Shop is empty" in queue
    detail = client.get(f"{P}/admin/listings/{ana.id}").get_data(as_text=True)
    assert "The practice has closed" in detail and "The address is wrong" in detail
    form_url = f"{P}/admin/listings"
    done = post_form(client, f"{P}/admin/reports/{first.id}/resolve", {}, form_url=form_url)
    assert done.status_code == 302
    post_form(client, f"{P}/admin/reports/{second.id}/dismiss", {}, form_url=form_url)
    again = post_form(client, f"{P}/admin/reports/{second.id}/resolve", {}, form_url=form_url)
    assert again.status_code == 302
    assert "already dismissed" in client.get(f"{P}/admin/listings").get_data(as_text=True)
    assert [(r.status, r.handled_by) for r in _reports(session)] == [
        ("resolved", "admin@example.com"),
        ("dismissed", "admin@example.com"),
    ]
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "report").order_by(AuditEvent.id)
    ).all()
    assert [(e.action, e.object_id, e.actor) for e in events] == [
        ("resolve", str(first.id), "admin@example.com"),
        ("dismiss", str(second.id), "admin@example.com"),
    ]
    assert events[0].changes["status"] == ["open", "resolved"]
    assert "Problem reports" not in client.get(f"{P}/admin/listings").get_data(as_text=True)
    assert client.post(f"{P}/admin/reports/999999/resolve").status_code == 404
    third = post_form(client, url, {"kind": "hours"}, form_url=url)
    assert third.status_code == 200
    [report] = [r for r in _reports(session) if r.status == "open"]
    no_token = client.post(f"{P}/admin/reports/{report.id}/resolve")
    assert no_token.status_code == 400 and "Please try again" in no_token.get_data(as_text=True)
    assert _reports(session)[-1].status == "open"

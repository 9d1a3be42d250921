"""The practitioner's inbox: reading, answering, exporting, and who may do which."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from referral.models import OutboxMessage, ReferralEvent, ReferralRequest
from tests.test_refer import PREFIX, SECRET_MESSAGE, form_for


@pytest.fixture
def app(make_app, smtp_server):
    return make_app(**smtp_server.config)


@pytest.fixture
def session(unbound_session):
    return unbound_session


@pytest.fixture
def people(add_practitioner, add_account):
    """Nina receives referrals, Otto is another practitioner, Ada is an admin."""
    nina_user, otto_user = add_account("nina@login.example"), add_account("otto@login.example")
    admin = add_account("ada@admin.example", admin=True)
    nina = add_practitioner(
        "Nina Near", (-33.87, 151.21), email="nina@clinic.example", user_id=nina_user.id
    )
    otto = add_practitioner(
        "Otto Other",
        (-33.80, 151.10),
        email="otto@clinic.example",
        user_id=otto_user.id,
        business_name="Other Physio",
        phone="+61 2 9999 0000",
    )
    return {
        "nina": nina,
        "otto": otto,
        "nina_user": nina_user,
        "otto_user": otto_user,
        "admin": admin,
    }


@pytest.fixture
def referral(client, session, people, smtp_server):
    """A referral from a patient to Nina, with its emails already delivered."""
    response = client.post(
        f"{PREFIX}/practitioners/{people['nina'].id}/referrals",
        data=form_for(client, people["nina"].id),
        follow_redirects=True,
    )
    assert response.status_code == 200
    smtp_server.received.clear()
    return session.scalars(select(ReferralRequest)).one()


def csrf(client, url: str) -> str:
    return re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', client.get(url).get_data(as_text=True)
    ).group(1)


def actions(session, referral) -> list[str]:
    session.expire_all()
    return [
        e.action
        for e in session.scalars(
            select(ReferralEvent)
            .where(ReferralEvent.referral_id == referral.id)
            .order_by(ReferralEvent.id)
        )
    ]


def test_inbox_lists_referrals_by_status(login_client, people, referral):
    client = login_client(people["nina_user"])
    response = client.get(f"{PREFIX}/inbox")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "New (1)" in html and "Accepted (0)" in html
    assert "Pat Patient" in html
    assert SECRET_MESSAGE not in html  # the list shows names, the page shows details


def test_another_practitioners_inbox_is_empty(login_client, people, referral):
    html = login_client(people["otto_user"]).get(f"{PREFIX}/inbox").get_data(as_text=True)
    assert "Pat Patient" not in html and "New (0)" in html


def test_opening_marks_viewed_and_shows_details(
    login_client, session, people, referral, smtp_server
):
    client = login_client(people["nina_user"])
    response = client.get(f"{PREFIX}/inbox/{referral.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert SECRET_MESSAGE in html and "Low back pain" in html and "pat@example.com" in html
    assert "+61412345678" in html
    session.refresh(referral)
    assert referral.status == "viewed"
    client.get(f"{PREFIX}/inbox/{referral.id}")
    assert actions(session, referral) == ["created", "viewed", "opened"]
    assert smtp_server.received == []  # a patient's own referral: nobody to tell about a view


def test_accept_then_complete(login_client, session, people, referral, smtp_server):
    client = login_client(people["nina_user"])
    url = f"{PREFIX}/inbox/{referral.id}"
    token = csrf(client, url)
    response = client.post(f"{url}/accept", data={"csrf_token": token})
    assert response.status_code == 302
    session.refresh(referral)
    assert referral.status == "accepted"
    [mail] = smtp_server.to("pat@example.com")
    assert "has accepted your request" in mail.text
    assert SECRET_MESSAGE not in mail.message.as_string()
    assert "Mark completed" in client.get(url).get_data(as_text=True)
    # completing asks what came of it
    response = client.post(f"{url}/complete", data={"csrf_token": token})
    assert response.status_code == 400
    assert "Please choose what came of the referral." in response.get_data(as_text=True)
    session.refresh(referral)
    assert referral.status == "accepted"
    done = {"csrf_token": token, "outcome": "improved", "outcome_note": "Back at work"}
    assert client.post(f"{url}/complete", data=done).status_code == 302
    session.refresh(referral)
    assert referral.status == "completed"
    assert (referral.outcome, referral.outcome_note) == ("improved", "Back at work")
    assert actions(session, referral) == ["created", "viewed", "accepted", "opened", "completed"]


def test_decline_needs_a_reason(login_client, session, people, referral, smtp_server):
    client = login_client(people["nina_user"])
    url = f"{PREFIX}/inbox/{referral.id}"
    token = csrf(client, url)
    response = client.post(f"{url}/decline", data={"csrf_token": token, "reason": "  "})
    assert response.status_code == 400
    assert "Please give a reason for declining." in response.get_data(as_text=True)
    session.refresh(referral)
    assert referral.status == "viewed"
    response = client.post(
        f"{url}/decline", data={"csrf_token": token, "reason": "Fully booked until March"}
    )
    assert response.status_code == 302
    session.refresh(referral)
    assert referral.status == "declined" and referral.decline_reason == "Fully booked until March"
    [mail] = smtp_server.to("pat@example.com")
    assert "not able to take your request" in mail.text
    assert "Fully booked" not in mail.message.as_string()


def test_illegal_move_is_409(login_client, session, people, referral):
    client = login_client(people["nina_user"])
    url = f"{PREFIX}/inbox/{referral.id}"
    token = csrf(client, url)
    response = client.post(f"{url}/complete", data={"csrf_token": token, "outcome": "improved"})
    assert response.status_code == 409
    assert "A referral that is viewed cannot become completed." in response.get_data(as_text=True)
    session.refresh(referral)
    assert referral.status == "viewed"


def test_answer_without_csrf_is_400(login_client, session, people, referral):
    client = login_client(people["nina_user"])
    assert client.post(f"{PREFIX}/inbox/{referral.id}/accept").status_code == 400
    session.refresh(referral)
    assert referral.status == "sent"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("get", "/export.json"),
        ("post", "/accept"),
        ("post", "/decline"),
        ("post", "/complete"),
        ("get", "/refer-on"),
        ("get", "/refer-on/{otto}"),
        ("post", "/refer-on/{otto}"),
    ],
)
def test_another_practitioner_gets_404_on_every_referral_route(
    login_client, session, people, referral, method, suffix
):
    client = login_client(people["otto_user"])
    token = csrf(client, f"{PREFIX}/practitioners/{people['nina'].id}")
    response = getattr(client, method)(
        f"{PREFIX}/inbox/{referral.id}{suffix.format(otto=people['otto'].id)}",
        data={"csrf_token": token, "reason": "x", "outcome": "improved", "patient_agreed": "y"},
    )
    assert response.status_code == 404
    assert "Pat Patient" not in response.get_data(as_text=True)
    session.refresh(referral)
    assert referral.status == "sent"
    assert actions(session, referral) == ["created"]


def test_anonymous_visitor_reads_nothing(app, people, referral):
    client = app.test_client()
    for url in (
        f"{PREFIX}/inbox",
        f"{PREFIX}/inbox/sent",
        f"{PREFIX}/inbox/{referral.id}",
        f"{PREFIX}/inbox/{referral.id}/export.json",
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/account/login?next=" in response.location, url
        assert "Pat Patient" not in response.get_data(as_text=True)


def test_user_without_listing_is_403_on_the_inbox(login_client, add_account, referral):
    client = login_client(add_account("nolisting@example.com"))
    assert client.get(f"{PREFIX}/inbox").status_code == 403
    assert client.get(f"{PREFIX}/inbox/{referral.id}").status_code == 404


def test_admin_reads_and_exports_but_does_not_answer(login_client, session, people, referral):
    client = login_client(people["admin"])
    url = f"{PREFIX}/inbox/{referral.id}"
    html = client.get(url).get_data(as_text=True)
    assert SECRET_MESSAGE in html and ">Accept<" not in html
    session.refresh(referral)
    assert referral.status == "sent"  # an admin opening it is not the practitioner viewing it
    export = client.get(f"{url}/export.json")
    assert export.status_code == 200
    assert export.json["entry"][0]["resource"]["note"] == [{"text": SECRET_MESSAGE}]
    token = csrf(client, f"{PREFIX}/practitioners/{people['nina'].id}")
    assert client.post(f"{url}/accept", data={"csrf_token": token}).status_code == 403
    session.expire_all()
    events = session.scalars(
        select(ReferralEvent)
        .where(ReferralEvent.referral_id == referral.id)
        .order_by(ReferralEvent.id)
    ).all()
    assert [(e.actor, e.action) for e in events][1:] == [
        ("admin:ada@admin.example", "opened"),
        ("admin:ada@admin.example", "exported"),
    ]


def test_export_is_recorded_and_complete(login_client, session, people, referral):
    client = login_client(people["nina_user"])
    response = client.get(f"{PREFIX}/inbox/{referral.id}/export.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/fhir+json"
    doc = response.json
    assert doc["resourceType"] == "Bundle"
    request = doc["entry"][0]["resource"]
    assert request["resourceType"] == "ServiceRequest"
    assert request["identifier"][0]["value"] == referral.id
    assert request["reasonCode"][0]["coding"][-1]["code"] == "low-back-pain"
    assert request["contained"][0]["telecom"][0]["value"] == "pat@example.com"
    assert request["extension"][0]["extension"][0]["valueString"] == "2026-12"
    assert actions(session, referral)[-1] == "exported"


def test_practitioner_refers_to_another_and_follows_the_status(
    login_client, session, people, smtp_server
):
    otto_client = login_client(people["otto_user"])
    nina = people["nina"]
    listing = otto_client.get(f"{PREFIX}/practitioners/{nina.id}").get_data(as_text=True)
    assert "You are referring as <strong>Otto Other</strong>" in listing
    response = otto_client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(otto_client, nina.id),
    )
    assert response.status_code == 200
    assert "your sent referrals" in response.get_data(as_text=True)
    referral = session.scalars(select(ReferralRequest)).one()
    assert referral.referrer_id == people["otto"].id
    assert sorted(r for m in smtp_server.received for r in m.rcpt_tos) == [
        "nina@clinic.example",
        "otto@clinic.example",
        "pat@example.com",
    ]
    assert "from Otto Other" in smtp_server.to("nina@clinic.example")[0].text
    assert "Otto Other has referred you to Nina Near" in smtp_server.to("pat@example.com")[0].text
    sent = otto_client.get(f"{PREFIX}/inbox/sent").get_data(as_text=True)
    assert "Nina Near" in sent and ">New<" in sent
    smtp_server.received.clear()

    # Nina sees who referred, and her answer reaches Otto's list and mailbox
    nina_client = login_client(people["nina_user"])
    detail = nina_client.get(f"{PREFIX}/inbox/{referral.id}").get_data(as_text=True)
    assert "Referred by" in detail and "Other Physio" in detail and "otto@clinic.example" in detail
    token = csrf(nina_client, f"{PREFIX}/inbox/{referral.id}")
    nina_client.post(f"{PREFIX}/inbox/{referral.id}/accept", data={"csrf_token": token})
    assert ">Accepted<" in otto_client.get(f"{PREFIX}/inbox/sent").get_data(as_text=True)
    updates = smtp_server.to("otto@clinic.example")
    assert [m.message["Subject"].split(" · ")[0] for m in updates] == [
        "Your referral is now viewed",
        "Your referral is now accepted",
    ]
    for mail in smtp_server.received:
        assert SECRET_MESSAGE not in mail.message.as_string()
        assert "Low back pain" not in mail.message.as_string()
    # the referrer reads the referral they sent (its outcome comes back to them) but
    # does not answer it
    page = otto_client.get(f"{PREFIX}/inbox/{referral.id}")
    assert page.status_code == 200 and SECRET_MESSAGE in page.get_data(as_text=True)
    assert ">Accept<" not in page.get_data(as_text=True)
    token = csrf(otto_client, f"{PREFIX}/practitioners/{nina.id}")
    assert (
        otto_client.post(
            f"{PREFIX}/inbox/{referral.id}/decline", data={"csrf_token": token, "reason": "x"}
        ).status_code
        == 403
    )


def test_practitioner_cannot_refer_to_themselves(login_client, session, people):
    client = login_client(people["nina_user"])
    nina = people["nina"]
    response = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(client, nina.id),
    )
    assert response.status_code == 400
    assert "cannot refer a patient to yourself" in response.get_data(as_text=True)
    assert session.scalars(select(OutboxMessage)).first() is None


def test_no_queued_message_holds_health_details(login_client, session, people, smtp_server):
    """Every outbox row of a full referral life: refer, view, decline with a reason."""
    otto_client = login_client(people["otto_user"])
    nina = people["nina"]
    otto_client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(otto_client, nina.id),
    )
    referral = session.scalars(select(ReferralRequest)).one()
    nina_client = login_client(people["nina_user"])
    token = csrf(nina_client, f"{PREFIX}/inbox/{referral.id}")
    nina_client.post(
        f"{PREFIX}/inbox/{referral.id}/decline",
        data={"csrf_token": token, "reason": "Sciatica is outside my scope"},
    )
    session.expire_all()
    rows = session.scalars(select(OutboxMessage)).all()
    assert len(rows) == 6  # nina, patient, otto; otto (viewed); patient, otto (declined)
    for row in rows:
        whole = " ".join([row.subject, row.body_text, row.body_html or ""])
        for secret in (SECRET_MESSAGE, "Low back pain", "low-back-pain", "Sciatica", "+61412"):
            assert secret not in whole, (row.recipient, secret)
        if row.recipient != "pat@example.com":
            assert "Pat Patient" not in whole and "pat@example.com" not in whole
    assert len(smtp_server.received) == 6


def test_every_account_page_leads_to_the_inbox_with_its_new_count(login_client, people, referral):
    nina = login_client(people["nina_user"])
    for path in ("/account/listing", "/inbox", "/inbox/sent"):
        html = nina.get(f"{PREFIX}{path}").get_data(as_text=True)
        assert re.search(rf'href="{PREFIX}/inbox"[^>]*>Inbox \(1 new\)</a>', html), path
        assert f'href="{PREFIX}/account/listing"' in html, path
    nina.get(f"{PREFIX}/inbox/{referral.id}")  # opened: no longer new
    html = nina.get(f"{PREFIX}/account/listing").get_data(as_text=True)
    assert f'<a href="{PREFIX}/inbox">Inbox</a>' in html
    otto = login_client(people["otto_user"]).get(f"{PREFIX}/inbox").get_data(as_text=True)
    assert "Inbox (1 new)" not in otto  # counts are per practitioner


def test_an_admins_pages_lead_to_the_moderation_queue(login_client, people):
    html = login_client(people["admin"]).get(f"{PREFIX}/admin/outbox").get_data(as_text=True)
    assert f'href="{PREFIX}/admin/listings"' in html and "Listings to check (0)" in html
    assert "Inbox" not in html  # an admin without a listing has no inbox

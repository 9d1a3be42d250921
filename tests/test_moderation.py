from __future__ import annotations

import pytest
from sqlalchemy import select

from referral import moderation
from referral.errors import InvalidInput
from referral.models import OutboxMessage, Practitioner
from referral.signals import listing_approved
from tests.conftest import post_form, sign_in

P = "/find-a-therapist"


@pytest.fixture
def pending(session, make_account, add_practitioner):
    user = make_account("pat@example.com", listing=False)
    return add_practitioner(
        "Pat Pending",
        (-33.87, 151.21),
        status="pending",
        user_id=user.id,
        accreditation_body="Massage & Myotherapy Australia",
        membership_number="M-777",
    )


def _messages(session):
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_approve_makes_live_records_who_emails_and_signals(app, session, pending):
    seen = []

    def record(sender, practitioner, admin):
        seen.append((sender, practitioner.id, admin, practitioner.status))

    listing_approved.connect(record)
    try:
        with app.test_request_context():
            moderation.approve(session, pending, "admin@example.com")
    finally:
        listing_approved.disconnect(record)
    session.expire_all()
    p = session.get(Practitioner, pending.id)
    assert p.status == "active" and p.verified_by == "admin@example.com" and p.verified_at
    assert seen == [(app, p.id, "admin@example.com", "active")]
    [message] = _messages(session)
    assert message.recipient == "pat@example.com" and "live" in message.subject
    assert f"/practitioners/{p.id}" in message.body_text


def test_reject_needs_a_reason_and_emails_it(app, session, pending):
    with app.test_request_context():
        with pytest.raises(InvalidInput, match="give a reason"):
            moderation.reject(session, pending, "admin@example.com", "  ")
        session.rollback()
        moderation.reject(session, pending, "admin@example.com", "Membership number not found.")
    p = session.get(Practitioner, pending.id)
    assert (p.status, p.status_reason) == ("rejected", "Membership number not found.")
    [message] = _messages(session)
    assert "Membership number not found." in message.body_text
    assert "/account/listing" in message.body_text


def test_suspend_and_reinstate(app, session, pending):
    with app.test_request_context():
        moderation.approve(session, pending, "a@example.com")
        moderation.suspend(session, pending, "a@example.com", "Complaint under review.")
        assert pending.status == "suspended"
        moderation.approve(session, pending, "a@example.com")
    assert pending.status == "active"
    assert [m.subject.split(" ·")[0] for m in _messages(session)] == [
        "Your listing is live",
        "Your listing is suspended",
        "Your listing is live",
    ]


@pytest.mark.parametrize(
    "status, action", [("draft", "approve"), ("active", "reject"), ("rejected", "suspend")]
)
def test_transitions_not_allowed_are_refused(app, session, pending, status, action):
    pending.status = status
    session.commit()
    with app.test_request_context(), pytest.raises(InvalidInput) as info:
        if action == "approve":
            moderation.approve(session, pending, "a@example.com")
        else:
            getattr(moderation, action)(session, pending, "a@example.com", "why")
    assert info.value.status == 409
    session.rollback()
    assert session.get(Practitioner, pending.id).status == status
    assert _messages(session) == []


def test_queue_lists_pending_oldest_first(session, pending, add_practitioner):
    add_practitioner("Live One", (-33.8, 151.2))
    later = add_practitioner("Later Pending", (-33.8, 151.2), status="pending")
    assert [p.id for p in moderation.queue(session)] == [pending.id, later.id]


def test_admin_pages_queue_detail_approve_and_reject(client, session, pending, make_account):
    make_account("admin@example.com", admin=True, listing=False)
    sign_in(client, "admin@example.com")
    queue = client.get(f"{P}/admin/listings").get_data(as_text=True)
    assert "Pat Pending" in queue and "M-777" in queue
    detail_url = f"{P}/admin/listings/{pending.id}"
    detail = client.get(detail_url).get_data(as_text=True)
    assert "pat@example.com" in detail and "Massage &amp; Myotherapy Australia" in detail
    assert client.get(f"{P}/practitioners/{pending.id}").status_code == 404

    no_reason = post_form(client, f"{detail_url}/reject", {"reason": ""}, form_url=detail_url)
    assert no_reason.status_code == 400 and "give a reason" in no_reason.get_data(as_text=True)
    assert session.get(Practitioner, pending.id).status == "pending"

    approved = post_form(client, f"{detail_url}/approve", {}, form_url=detail_url)
    assert approved.status_code == 302
    session.expire_all()
    assert session.get(Practitioner, pending.id).verified_by == "admin@example.com"
    assert client.get(f"{P}/practitioners/{pending.id}").status_code == 200

    again = post_form(client, f"{detail_url}/reject", {"reason": "x"}, form_url=detail_url)
    assert again.status_code == 409 and "cannot be rejected" in again.get_data(as_text=True)

    suspended = post_form(
        client, f"{detail_url}/suspend", {"reason": "Complaint"}, form_url=detail_url
    )
    assert suspended.status_code == 302
    assert client.get(f"{P}/practitioners/{pending.id}").status_code == 404
    assert "Pat Pending" in client.get(f"{P}/admin/listings?status=suspended").get_data(
        as_text=True
    )
    assert client.get(f"{P}/admin/listings/999999").status_code == 404


def test_only_active_listings_are_public(client, add_practitioner):
    for status in ("draft", "pending", "suspended", "rejected"):
        hidden = add_practitioner(f"Hidden {status}", (-33.8688, 151.2093), status=status)
        assert client.get(f"{P}/practitioners/{hidden.id}").status_code == 404
    add_practitioner("Shown Active", (-33.8688, 151.2093))
    html = client.get(f"{P}/?postcode=2000").get_data(as_text=True)
    assert "Shown Active" in html and "Hidden" not in html


def test_submit_needs_a_confirmed_email_and_a_draft(app, session, make_account, add_practitioner):
    user = make_account("slow@example.com", verified=False, listing=False)
    draft = add_practitioner(
        "Slow Draft",
        (-33.87, 151.21),
        status="draft",
        user_id=user.id,
        accreditation_body="Yoga Australia",
        membership_number="Y-1",
    )
    with app.test_request_context():
        with pytest.raises(InvalidInput, match="confirm your email"):
            moderation.submit(session, draft)
        draft.status = "pending"
        with pytest.raises(InvalidInput, match="nothing to submit"):
            moderation.submit(session, draft)

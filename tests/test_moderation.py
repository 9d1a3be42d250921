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


@pytest.fixture
def admin_client(client, make_account):
    make_account("admin@example.com", admin=True, listing=False)
    sign_in(client, "admin@example.com")
    return client


def _names(html):
    import re

    return re.findall(r'/admin/listings/\d+">([^<]+)</a>', html)


def test_a_queue_of_400_is_paged_with_next_previous_and_search(admin_client, session):
    from referral.models import Location

    session.add_all(
        Practitioner(
            name=f"Therapist {n:03d}",
            status="active",
            locations=[Location(lat=-33.8, lon=151.2, country="AU", postcode=f"{2000 + n}")],
        )
        for n in range(400)
    )
    session.commit()
    first = admin_client.get(f"{P}/admin/listings?status=active").get_data(as_text=True)
    assert "400 active listings" in first and "Page 1 of 16" in first
    assert len(_names(first)) == 25 and 'rel="prev"' not in first
    import re

    next_url = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = admin_client.get(next_url).get_data(as_text=True)
    assert "Page 2 of 16" in second and set(_names(second)).isdisjoint(_names(first))
    prev_url = re.search(r'<a rel="prev" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    assert _names(admin_client.get(prev_url).get_data(as_text=True)) == _names(first)
    last = admin_client.get(f"{P}/admin/listings?status=active&page=999").get_data(as_text=True)
    assert "Page 16 of 16" in last and len(_names(last)) == 400 - 15 * 25

    by_name = admin_client.get(f"{P}/admin/listings?status=active&q=therapist 12").get_data(
        as_text=True
    )
    assert _names(by_name) == [f"Therapist {n}" for n in range(120, 130)]
    by_postcode = admin_client.get(f"{P}/admin/listings?status=active&q=2345").get_data(
        as_text=True
    )
    assert _names(by_postcode) == ["Therapist 345"]
    assert "1 active listing matching" in by_postcode
    none = admin_client.get(f"{P}/admin/listings?status=pending&q=Therapist").get_data(as_text=True)
    assert "No pending listings match" in none
    odd = admin_client.get(f"{P}/admin/listings?status=nope&page=-3&q=%25_")
    assert odd.status_code == 200 and "0 pending listings" in odd.get_data(as_text=True)


def test_only_actions_that_apply_are_offered(admin_client, session, pending):
    url = f"{P}/admin/listings/{pending.id}"
    page = admin_client.get(url).get_data(as_text=True)
    assert "Approve: credentials checked" in page and "✕ Reject" in page
    assert "Suspend" not in page and "Reinstate" not in page
    response = post_form(admin_client, f"{url}/suspend", {"reason": "x"}, form_url=url)
    assert response.status_code == 409
    assert session.get(Practitioner, pending.id).status == "pending"
    post_form(admin_client, f"{url}/approve", {}, form_url=url)
    live = admin_client.get(url).get_data(as_text=True)
    assert "⏸ Suspend" in live and "Details confirmed today" in live
    assert "Approve" not in live and "Reject" not in live


def test_reject_reason_reaches_the_practitioner_by_email(
    make_app, session, pending, make_account, smtp_server
):
    make_account("admin@example.com", admin=True, listing=False)
    client = make_app(**smtp_server.config).test_client()
    sign_in(client, "admin@example.com")
    url = f"{P}/admin/listings/{pending.id}"
    empty = post_form(client, f"{url}/reject", {"reason": " "}, form_url=url)
    assert empty.status_code == 400 and "give a reason" in empty.get_data(as_text=True)
    done = post_form(client, f"{url}/reject", {"reason": "M-777 is not a member."}, form_url=url)
    assert done.status_code == 302
    [mail] = smtp_server.to("pat@example.com")
    assert "not approved" in mail.message["Subject"]
    assert "M-777 is not a member." in mail.text


def test_detail_page_shows_every_field_the_listing_holds(admin_client, session, add_practitioner):
    from referral.models import HealthFund, PractitionerFund

    p = add_practitioner(
        "Full Fields",
        (-33.87, 151.21),
        status="pending",
        conditions=("sciatica",),
        phone="+61291234567",
        website="https://full.example.com",
        email="full@example.com",
        business_name="Full Body Clinic",
        languages=["Greek"],
        telehealth=True,
    )
    p.locations[0].opening_hours = {"Mon": "9:00-17:00"}
    p.locations[0].postcode = "2000"
    fund = session.scalars(select(HealthFund).where(HealthFund.slug == "bupa")).one()
    p.funds.append(PractitionerFund(fund_id=fund.id, provider_number="B-123"))
    session.commit()
    html = admin_client.get(f"{P}/admin/listings/{p.id}").get_data(as_text=True)
    for text in (
        "(02) 9123 4567",
        "https://full.example.com",
        "full@example.com",
        "Full Body Clinic",
        "Sciatica",
        "Mon 9:00-17:00",
        "Bupa B-123",
        "Greek",
        "Remedial massage",
    ):
        assert text in html, text


def test_daily_digest_once_a_day_to_every_admin(
    make_app, runner, session, pending, make_account, smtp_server
):
    from datetime import date

    from referral.digest import send_digest

    make_account("admin@example.com", admin=True, listing=False)
    make_account("second@example.com", admin=True, listing=False)
    app = make_app(REFERRAL_PUBLIC_URL="https://clinic.example", **smtp_server.config)
    with app.app_context():
        from referral.db import get_session

        assert send_digest(get_session(), date(2020, 1, 2)) == 2
        assert send_digest(get_session(), date(2020, 1, 2)) == 0
    mails = smtp_server.received
    assert sorted(m.rcpt_tos[0] for m in mails) == ["admin@example.com", "second@example.com"]
    assert "Listings to check: 1" in mails[0].text
    assert "https://clinic.example/find-a-therapist/admin/listings" in mails[0].text
    with app.app_context():  # the command runs in this app, not the session fixture's
        result = app.test_cli_runner().invoke(args=["referral", "digest"])
        assert result.exit_code == 0 and "Digest queued for 2 admins." in result.output
        again = app.test_cli_runner().invoke(args=["referral", "digest"])
        assert "No digest needed today." in again.output
    assert len(smtp_server.received) == 4
    pending.status = "active"
    session.commit()
    with app.app_context():
        from referral.db import get_session

        assert send_digest(get_session(), date(2020, 1, 9)) == 0  # nothing waits


def test_admins_are_told_at_once_when_configured(make_app, session, make_account, smtp_server):
    make_account("admin@example.com", admin=True, listing=False)
    user = make_account("new@example.com", listing=False)
    p = Practitioner(
        name="New One",
        status="draft",
        user_id=user.id,
        accreditation_body="Yoga Australia",
        membership_number="Y-2",
    )
    from referral.models import Location, Modality

    p.modalities = list(session.scalars(select(Modality).limit(1)))
    p.locations = [Location(lat=-33.8, lon=151.2, country="AU")]
    session.add(p)
    session.commit()
    quiet = make_app(**smtp_server.config)
    with quiet.test_request_context():
        moderation.submit(session, p)
    assert smtp_server.to("admin@example.com") == []
    p.status = "draft"
    session.commit()
    eager = make_app(REFERRAL_NOTIFY_ADMINS_AT_ONCE=True, **smtp_server.config)
    with eager.test_request_context():
        from referral.db import get_session

        moderation.submit(get_session(), get_session().get(Practitioner, p.id))
    [mail] = smtp_server.to("admin@example.com")
    assert "A listing was submitted" in mail.text and "Listings to check: 1" in mail.text

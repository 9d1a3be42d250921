"""Who hears what: recipients, links, escaping, and the webhook's privacy."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from referral.models import OutboxMessage, Practitioner, ReferralRequest
from referral.notifications import practitioner_email
from referral.referrals import ReferralData, create_referral, transition
from tests.test_outbox import _Hook


@pytest.fixture
def hook():
    endpoint = _Hook()
    yield endpoint
    endpoint.close()


@pytest.fixture
def app(make_app, smtp_server, hook):
    return make_app(
        REFERRAL_WEBHOOK_URL=hook.url, REFERRAL_WEBHOOK_SECRET="s", **smtp_server.config
    )


@pytest.fixture
def ctx(app):
    with app.test_request_context("/"):
        yield


def test_practitioner_email_falls_back_to_the_account(session, add_practitioner, add_account):
    user = add_account("login@example.com")
    with_listing_email = add_practitioner("A", (-33.8, 151.2), email="listing@example.com")
    account_only = add_practitioner("B", (-33.8, 151.2), user_id=user.id)
    nothing = add_practitioner("C", (-33.8, 151.2))
    assert practitioner_email(with_listing_email) == "listing@example.com"
    assert practitioner_email(account_only) == "login@example.com"
    assert practitioner_email(nothing) is None and practitioner_email(None) is None


def test_a_listing_without_any_email_still_gets_the_referral(ctx, session, add_practitioner):
    silent = add_practitioner("Sam Silent", (-33.8, 151.2))
    data = ReferralData(patient_name="Pat", email="pat@example.com", consent_version="v")
    referral, _ = create_referral(session, silent, data)
    kinds = [(m.kind, m.recipient) for m in session.scalars(select(OutboxMessage))]
    assert ("email", "pat@example.com") in kinds and len(kinds) == 2  # the patient + the webhook
    assert referral.status == "sent"


def test_webhook_carries_ids_and_status_only(ctx, app, session, add_practitioner, hook):
    from referral.outbox import deliver_due

    nina = add_practitioner("Nina", (-33.8, 151.2), email="nina@example.com")
    data = ReferralData(
        patient_name="Pat Secret",
        email="pat@example.com",
        phone="+61412345678",
        consent_version="v",
        message="Very private message",
        condition_id=1,
    )
    referral, _ = create_referral(session, nina, data)
    transition(session, referral, "accepted", "practitioner:1")
    session.commit()
    deliver_due(session, app.config)
    assert len(hook.requests) == 2
    bodies = [json.loads(body) for _, body in hook.requests]
    assert [b["event"] for b in bodies] == ["referral.created", "referral.status_changed"]
    assert bodies[1]["old_status"] == "sent" and bodies[1]["status"] == "accepted"
    for _, raw in hook.requests:
        text = raw.decode()
        for secret in ("Pat Secret", "pat@example.com", "Very private", "+6141", "low-back"):
            assert secret not in text
        assert set(json.loads(raw)) <= {
            "event",
            "referral_id",
            "practitioner_id",
            "referrer_id",
            "status",
            "old_status",
            "occurred_at",
        }
    assert session.scalars(select(ReferralRequest)).one().id == bodies[0]["referral_id"]
    assert session.get(Practitioner, bodies[0]["practitioner_id"]).name == "Nina"


def test_typed_text_is_never_a_link_in_an_email(ctx, session, add_practitioner):
    """Only the links the site makes are links: a name typed with a URL in it, here from a
    listing stored before names were checked and a host calling ``create_referral`` with
    its own validation, stays escaped text in the acknowledgement."""
    nina = add_practitioner(
        "Nina https://evil.example/login", (-33.8, 151.2), email="nina@example.com"
    )
    data = ReferralData(
        patient_name="Eve <b>visit</b> www.evil.example/a https://evil.example/b now",
        email="stranger@example.com",
        consent_version="v",
    )
    create_referral(session, nina, data)
    messages = {m.recipient: m for m in session.scalars(select(OutboxMessage))}
    ack = messages["stranger@example.com"]
    [cancel_url] = re.findall(r"http://localhost/\S+/referrals/cancel/\S+", ack.body_text)
    [status_url] = re.findall(r"http://localhost/\S+/referrals/status/\S+", ack.body_text)
    listing_url = f"http://localhost/find-a-therapist/practitioners/{nina.id}"
    # exactly the links the plugin made: the listing, the status page and the cancel link
    assert re.findall(r"<a [^>]*>", ack.body_html) == [
        f'<a href="{listing_url}">',
        f'<a href="{status_url}">',
        f'<a href="{cancel_url}">',
    ]
    assert "https://evil.example/b now" in ack.body_html
    assert "Eve &lt;b&gt;visit&lt;/b&gt;" in ack.body_html
    notice = messages["nina@example.com"]
    assert re.findall(r'<a href="([^"]+)">', notice.body_html) == [
        "http://localhost/find-a-therapist/inbox"
    ]
    assert "Nina https://evil.example/login" in notice.body_html


def test_acknowledgements_stop_at_the_daily_limit_per_address(make_app, session, caplog):
    """Anyone can type a stranger's address: past the limit the stranger gets no more
    acknowledgements, the practitioner still gets every referral, and the log names no
    address. Addresses differing only in case are one recipient."""
    app = make_app(REFERRAL_RECIPIENT_DAILY_LIMIT="2 per day")
    practitioner = Practitioner(name="Nina", status="active", email="nina@example.com")
    session.add(practitioner)
    session.commit()
    typed = ["stranger@example.com", "Stranger@Example.COM", "stranger@example.com"]
    with app.test_request_context("/"), caplog.at_level("WARNING", logger="referral.mail"):
        for email in [*typed, "someone.else@example.com"]:
            data = ReferralData(patient_name="Eve", email=email, consent_version="v")
            create_referral(session, practitioner, data)
    acknowledged = [
        m.recipient.lower()
        for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        if m.subject.startswith("We have received your request")
    ]
    assert acknowledged == ["stranger@example.com"] * 2 + ["someone.else@example.com"]
    assert len(session.scalars(select(ReferralRequest)).all()) == 4
    notices = session.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "nina@example.com")
    ).all()
    assert len(notices) == 4
    [record] = caplog.records
    assert "'acknowledgement'" in record.getMessage() and "2 per day" in record.getMessage()
    assert "@" not in record.getMessage()


def test_recipient_counts_are_shared_in_redis_under_keys_without_the_address(
    make_app, session, redis_limits
):
    """Two apps on one Redis are two workers: one count per address between them, kept
    under a keyed hash, so Redis holds neither the address nor its plain SHA-256."""
    import hashlib

    first, second = (
        make_app(REFERRAL_RECIPIENT_DAILY_LIMIT="2 per day", **redis_limits.config)
        for _ in range(2)
    )
    practitioner = Practitioner(name="Nina", status="active", email="nina@example.com")
    session.add(practitioner)
    session.commit()
    for app in (first, second, first):
        with app.test_request_context("/"):
            data = ReferralData(patient_name="Eve", email="pat@example.com", consent_version="v")
            create_referral(session, practitioner, data)
    acks = session.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "pat@example.com")
    ).all()
    assert len(acks) == 2
    [key] = redis_limits.stored_keys()
    assert "recipient" in key
    assert "pat@example.com" not in key
    assert hashlib.sha256(b"pat@example.com").hexdigest() not in key


@pytest.fixture
def nina(session, add_practitioner):
    nina = add_practitioner(
        "Nina Near",
        (-33.87, 151.21),
        email="nina@example.com",
        phone="+61291234567",
        modalities=("physiotherapy",),
    )
    place = nina.locations[0]
    place.street, place.suburb, place.state, place.postcode = (
        "1 Macquarie St",
        "Sydney",
        "NSW",
        "2000",
    )
    session.commit()
    return nina


def _to(session, address: str) -> list[OutboxMessage]:
    session.expire_all()
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.recipient == address)
            .order_by(OutboxMessage.id)
        )
    )


def test_the_patient_can_reach_the_practitioner_from_the_acknowledgement_and_acceptance(
    ctx, session, nina
):
    data = ReferralData(
        patient_name="Pat", email="pat@example.com", consent_version="v", postcode="2010"
    )
    referral, _ = create_referral(session, nina, data)
    transition(session, referral, "accepted", "practitioner:1")
    session.commit()
    ack, accepted = _to(session, "pat@example.com")
    for message in (ack, accepted):
        assert "Nina Near" in message.body_text
        assert "Phone: (02) 9123 4567" in message.body_text
        assert "Address: 1 Macquarie St, Sydney NSW 2000" in message.body_text
        assert f"Listing: http://localhost/find-a-therapist/practitioners/{nina.id}" in (
            message.body_text
        )
    assert "In an emergency call 000" in ack.body_text


def test_a_decline_tells_the_patient_why_in_general_and_where_to_look_next(ctx, session, nina):
    data = ReferralData(
        patient_name="Pat", email="pat@example.com", consent_version="v", postcode="2010"
    )
    referral, _ = create_referral(session, nina, data)
    transition(
        session, referral, "declined", "practitioner:1", reason="Private note", category="see_gp"
    )
    session.commit()
    [*_, declined] = _to(session, "pat@example.com")
    assert "They advise you to see your GP first." in declined.body_text
    assert "Private note" not in declined.body_text
    assert (
        "http://localhost/find-a-therapist/?postcode=2010&modality=physiotherapy"
        in declined.body_text
    )
    assert referral.decline_category == "see_gp"


def test_an_unknown_decline_category_is_refused(ctx, session, nina):
    from referral.errors import InvalidInput

    data = ReferralData(patient_name="Pat", email="pat@example.com", consent_version="v")
    referral, _ = create_referral(session, nina, data)
    with pytest.raises(InvalidInput, match="choose why"):
        transition(session, referral, "declined", "p", reason="x", category="rude")


def test_emails_come_from_the_site_at_its_own_host(make_app):
    from referral.outbox import sender

    app = make_app(REFERRAL_PUBLIC_URL="https://clinic.example", REFERRAL_SITE_NAME="Our Clinic")
    assert sender(app.config) == "Our Clinic <referrals@clinic.example>"
    chosen = make_app(REFERRAL_MAIL_FROM="Desk <desk@clinic.example>")
    assert sender(chosen.config) == "Desk <desk@clinic.example>"

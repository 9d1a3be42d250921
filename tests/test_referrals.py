"""The lifecycle rules, the trail, idempotency, cancel tokens and purging, called directly."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from referral.errors import InvalidInput
from referral.models import OutboxMessage, Practitioner, ReferralEvent, ReferralRequest, utcnow
from referral.referrals import (
    CANCEL_SALT,
    TRANSITIONS,
    IllegalTransition,
    ReferralData,
    can_answer,
    can_read,
    cancel_token,
    create_referral,
    inbox,
    purge,
    referral_id_from_cancel_token,
    sent_by,
    transition,
)


@pytest.fixture
def ctx(app):
    """Emails are built with absolute links: a request context supplies the host."""
    with app.test_request_context("/"):
        yield


@pytest.fixture
def nina(add_practitioner):
    return add_practitioner("Nina Near", (-33.87, 151.21), email="nina@clinic.example")


def data(**fields) -> ReferralData:
    return ReferralData(
        **{
            "patient_name": "Pat",
            "email": "pat@example.com",
            "consent_version": "v1",
            "message": "private",
            **fields,
        }
    )


def make(session, nina, **fields) -> ReferralRequest:
    referral, created = create_referral(session, nina, data(**fields))
    assert created
    return referral


def test_every_move_follows_the_table(ctx, session, nina):
    for old, allowed in TRANSITIONS.items():
        for new in TRANSITIONS:
            referral = make(session, nina)
            referral.status = old
            if new in allowed:
                assert transition(session, referral, new, "tester", reason="r") == old
                assert referral.status == new
            else:
                with pytest.raises(IllegalTransition):
                    transition(session, referral, new, "tester", reason="r")
                assert referral.status == old
            session.rollback()


def test_lifecycle_writes_the_trail_with_actor_and_reason(ctx, session, nina):
    referral = make(session, nina)
    transition(session, referral, "viewed", "practitioner:1")
    transition(session, referral, "declined", "practitioner:1", reason=" Not my area ")
    session.commit()
    events = session.scalars(
        select(ReferralEvent).where(ReferralEvent.referral_id == referral.id)
    ).all()
    assert [(e.actor, e.action, e.detail) for e in events] == [
        ("patient", "created", None),
        ("practitioner:1", "viewed", None),
        ("practitioner:1", "declined", "Not my area"),
    ]
    assert referral.decline_reason == "Not my area"
    with pytest.raises(IllegalTransition, match="declined cannot become accepted"):
        transition(session, referral, "accepted", "practitioner:1")


def test_decline_without_reason_is_refused(ctx, session, nina):
    referral = make(session, nina)
    with pytest.raises(InvalidInput, match="reason"):
        transition(session, referral, "declined", "practitioner:1", reason="   ")
    assert referral.status == "sent"


def test_same_idempotency_key_returns_the_first(ctx, session, nina):
    first = make(session, nina, idempotency_key="k1")
    again, created = create_referral(session, nina, data(idempotency_key="k1", patient_name="X"))
    assert again.id == first.id and not created
    assert session.scalar(select(func.count()).select_from(ReferralRequest)) == 1


def test_key_reused_for_another_practitioner_is_refused(ctx, session, nina, add_practitioner):
    make(session, nina, idempotency_key="k1")
    other = add_practitioner("Otto", (-33.8, 151.1))
    with pytest.raises(InvalidInput, match="already used"):
        create_referral(session, other, data(idempotency_key="k1"))


def test_who_may_read_and_answer(ctx, session, nina, add_practitioner):
    referral = make(session, nina)
    otto = add_practitioner("Otto", (-33.8, 151.1))
    assert can_read(referral, nina, admin=False) and can_answer(referral, nina)
    assert not can_read(referral, otto, admin=False) and not can_answer(referral, otto)
    assert not can_read(referral, None, admin=False)
    assert can_read(referral, None, admin=True) and not can_answer(referral, None)


def test_inbox_groups_and_sent_list(ctx, session, nina, add_practitioner):
    otto = add_practitioner("Otto", (-33.8, 151.1))
    a = make(session, nina)
    b, _ = create_referral(session, nina, data(), referrer=otto)
    transition(session, b, "accepted", "practitioner")
    session.commit()
    groups = inbox(session, nina)
    assert [r.id for r in groups["sent"]] == [a.id] and [r.id for r in groups["accepted"]] == [b.id]
    assert [r.id for r in sent_by(session, otto)] == [b.id]
    assert inbox(session, otto)["sent"] == []


def test_cancel_token_round_trip_and_forgeries(ctx, app, session, nina):
    referral = make(session, nina)
    token = cancel_token(referral)
    assert referral_id_from_cancel_token(token) == referral.id
    forged = URLSafeTimedSerializer("not-the-key", salt=CANCEL_SALT).dumps(referral.id)
    other_purpose = URLSafeTimedSerializer(app.secret_key, salt="other").dumps(referral.id)
    for bad in (forged, other_purpose, token[:-2] + "xx", referral.id):
        with pytest.raises(InvalidInput) as info:
            referral_id_from_cancel_token(bad)
        assert info.value.status == 404


def test_cancel_token_older_than_the_setting_is_410(ctx, app, session, nina):
    referral = make(session, nina)

    class Signed91DaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 91 * 86400

    old = URLSafeTimedSerializer(app.secret_key, salt=CANCEL_SALT, signer=Signed91DaysAgo)
    token = old.dumps(referral.id)
    with pytest.raises(InvalidInput) as info:
        referral_id_from_cancel_token(token)  # REFERRAL_CANCEL_LINK_MAX_AGE_DAYS is 90
    assert info.value.status == 410 and "expired" in info.value.message


def test_purge_deletes_old_referrals_with_events_and_messages(ctx, session, nina):
    old = make(session, nina)
    recent = make(session, nina)
    old.updated_at = utcnow() - timedelta(days=400)
    session.commit()
    assert purge(session, timedelta(days=365)) == 1
    session.expire_all()
    assert session.get(ReferralRequest, old.id) is None
    assert session.get(ReferralRequest, recent.id) is not None
    for model in (ReferralEvent, OutboxMessage):
        assert (
            session.scalar(
                select(func.count()).select_from(model).where(model.referral_id == old.id)
            )
            == 0
        )
        assert session.scalar(
            select(func.count()).select_from(model).where(model.referral_id == recent.id)
        )


def test_purge_command(ctx, runner, session, nina):
    old = make(session, nina)
    old.updated_at = utcnow() - timedelta(days=40)
    session.commit()
    result = runner.invoke(args=["referral", "purge", "--older-than", "30", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Purged 1 referrals older than 30 days." in result.output
    refused = runner.invoke(args=["referral", "purge", "--older-than", "0", "--yes"])
    assert refused.exit_code == 2
    asked = runner.invoke(args=["referral", "purge", "--older-than", "30"], input="n\n")
    assert asked.exit_code == 1 and "Aborted" in asked.output


def test_racing_double_submit_makes_one_referral(app, nina):
    """Two requests with one key at the same moment: the unique key decides, both get it."""
    maker = app.extensions["referral"].sessionmaker
    barrier = threading.Barrier(4)

    def submit(_: int) -> str:
        with app.test_request_context("/"), maker() as own:
            practitioner = own.get(Practitioner, nina.id)
            barrier.wait()
            referral, _created = create_referral(own, practitioner, data(idempotency_key="same"))
            return referral.id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(submit, range(4)))
    assert len(set(ids)) == 1
    with maker() as check:
        assert check.scalar(select(func.count()).select_from(ReferralRequest)) == 1
        assert check.scalar(select(func.count()).select_from(OutboxMessage)) == 2

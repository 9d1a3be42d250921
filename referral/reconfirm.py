"""Asking practitioners to confirm their details again, and saying when they last did.

A listing's details count as confirmed at ``verified_at`` (an admin's approval or
re-confirmation, or the practitioner's own click). ``REFERRAL_RECONFIRM_AFTER_DAYS`` later
the ``flask referral digest`` run emails the practitioner a signed link (through the
outbox); :data:`REMINDER_AFTER` later, once, a reminder. Past the limit the listing is
*stale*: its page says when the details were last confirmed and that they may have changed.
The link names the listing and its ``verified_at``, so it works once: confirming moves the
date and the old link stops working. Requests sent are audit rows (``reconfirm_request``),
which is also how a run knows what it already sent.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadData, SignatureExpired
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from referral import audit
from referral.accounts import serializer
from referral.errors import InvalidInput
from referral.mail import queue_template
from referral.models import AuditEvent, Practitioner, utcnow
from referral.urls import external_url

PURPOSE = "reconfirm-listing"
REQUEST = "reconfirm_request"
#: how long after the first request the one reminder goes
REMINDER_AFTER = timedelta(days=14)


def due_after() -> timedelta | None:
    days = current_app.config["REFERRAL_RECONFIRM_AFTER_DAYS"]
    return None if days is None else timedelta(days=int(days))


def is_stale(practitioner: Practitioner, now: datetime | None = None) -> bool:
    """Whether a live listing's details were last confirmed longer ago than the limit."""
    limit = due_after()
    if limit is None or practitioner.verified_at is None:
        return False
    return practitioner.verified_at < (now or utcnow()) - limit


def _fingerprint(practitioner: Practitioner) -> str:
    moment = practitioner.verified_at.isoformat() if practitioner.verified_at else ""
    return hashlib.sha256(f"{practitioner.id}:{moment}".encode()).hexdigest()[:20]


def make_token(practitioner: Practitioner) -> str:
    return serializer(PURPOSE).dumps({"pid": practitioner.id, "fp": _fingerprint(practitioner)})


def read_token(session: Session, token: str) -> Practitioner:
    """The live listing a link was made for; :class:`InvalidInput` when it is expired,
    forged, already used (the details were confirmed since) or the listing is not live."""
    max_age = int(current_app.config["REFERRAL_RECONFIRM_LINK_MAX_AGE"])
    try:
        data = serializer(PURPOSE).loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidInput(
            "token_expired", "This link has expired. Please sign in to check your listing.", 410
        ) from None
    except BadData:
        raise InvalidInput(
            "token_invalid",
            "This link is not valid. Please check it, or sign in to check your listing.",
            404,
        ) from None
    practitioner = session.get(Practitioner, data.get("pid")) if isinstance(data, dict) else None
    if practitioner is None or practitioner.status != "active":
        raise InvalidInput(
            "token_invalid", "This listing is not live, so there is nothing to confirm.", 404
        )
    if data.get("fp") != _fingerprint(practitioner):
        raise InvalidInput("token_used", "Your details were already confirmed. Thank you.", 409)
    return practitioner


def send_requests(session: Session, now: datetime | None = None) -> int:
    """Queue the request (or the one reminder) to every live listing past the limit that
    has an address and has not had both; commits. Returns how many were queued."""
    limit = due_after()
    if limit is None:
        return 0
    now = now or utcnow()
    due = session.scalars(
        select(Practitioner)
        .where(Practitioner.status == "active", Practitioner.verified_at < now - limit)
        .order_by(Practitioner.id)
    ).all()
    from referral.moderation import recipient

    queued = 0
    for practitioner in due:
        to = recipient(practitioner)
        asked = session.execute(
            select(func.count(), func.max(AuditEvent.created_at)).where(
                AuditEvent.action == REQUEST,
                AuditEvent.object_type == "listing",
                AuditEvent.object_id == str(practitioner.id),
                AuditEvent.created_at >= practitioner.verified_at,
            )
        ).one()
        count, last = asked
        if not to or count >= 2 or (count == 1 and last > now - REMINDER_AFTER):
            continue
        _email(session, practitioner, to, reminder=count == 1)
        audit.record(
            session,
            REQUEST,
            "listing",
            practitioner.id,
            actor=audit.CLI,
            note="reminder" if count else "first request",
            commit=False,
        )
        queued += 1
    session.commit()
    return queued


def _email(session: Session, practitioner: Practitioner, to: str, *, reminder: bool) -> None:
    site = current_app.config["REFERRAL_SITE_NAME"]
    subject = (
        "Reminder: are your details still right?" if reminder else "Are your details still right?"
    )
    queue_template(
        session,
        to=to,
        subject=f"{subject} · {site}",
        template="reconfirm",
        site=site,
        practitioner=practitioner,
        reminder=reminder,
        confirm_url=external_url("referral.reconfirm_listing", token=make_token(practitioner)),
        edit_url=external_url("referral.listing"),
        listing_url=external_url("referral.practitioner", practitioner_id=practitioner.id),
    )

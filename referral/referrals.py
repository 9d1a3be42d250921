"""The referral lifecycle: creating a request, who may read it, which status may follow
which, the audit trail, the patient's cancel link, and purging old requests.

Views and CLI commands call these plain functions; the decisions live here so the tests
can check them directly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from referral import capacity, notifications
from referral.errors import InvalidInput
from referral.models import (
    OutboxMessage,
    Practitioner,
    ReferralEvent,
    ReferralRequest,
    new_token,
    utcnow,
)

#: status -> the statuses that may follow it. Declined, cancelled, completed, expired
#: (unanswered for ``REFERRAL_EXPIRE_AFTER_DAYS``, see :mod:`referral.sweep`) and referred on
#: (the patient now has a new referral to someone else: :mod:`referral.referon`) are final.
TRANSITIONS: dict[str, frozenset[str]] = {
    "sent": frozenset({"viewed", "accepted", "declined", "cancelled", "expired"}),
    "viewed": frozenset({"accepted", "declined", "cancelled", "expired", "referred_on"}),
    "accepted": frozenset({"completed", "cancelled", "referred_on"}),
    "declined": frozenset(),
    "cancelled": frozenset(),
    "completed": frozenset(),
    "expired": frozenset(),
    "referred_on": frozenset(),
}
STATUSES = tuple(TRANSITIONS)
#: why a practitioner declines, as the patient is told it (the practitioner's own note is
#: private); the first is what a decline without a category says
DECLINE_CATEGORIES: dict[str, str] = {
    "other": "They are not able to see you this time.",
    "not_taking": "They are not taking new patients at the moment.",
    "not_treated": "What you need help with is not something they treat.",
    "see_gp": "They advise you to see your GP first.",
    "too_far": "You are outside the area they cover.",
}
#: moves the recipient practitioner makes; the patient only cancels
PRACTITIONER_MOVES = frozenset({"viewed", "accepted", "declined", "completed"})
PATIENT_MOVES = frozenset({"cancelled"})
CANCEL_SALT = "referral-cancel"


class IllegalTransition(InvalidInput):
    """A status change the lifecycle does not allow (409: the referral moved on)."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__(
            "illegal_transition", f"A referral that is {old} cannot become {new}.", status=409
        )
        self.old = old
        self.new = new


@dataclass
class ReferralData:
    """What a referral form (or a host's own form) supplies, already validated."""

    patient_name: str
    email: str
    consent_version: str
    phone: str | None = None
    postcode: str | None = None
    condition_id: int | None = None
    message: str = ""
    urgency: str = "routine"
    idempotency_key: str | None = None
    #: the modality the patient searched by, when the form came from a search
    searched_modality: str | None = None


def practitioner_actor(practitioner: Practitioner) -> str:
    return f"practitioner:{practitioner.id}"


def admin_actor(user: Any) -> str:
    return f"admin:{getattr(user, 'email', None) or user.get_id()}"


PATIENT_ACTOR = "patient"
#: the scheduled follow-up (``flask referral sweep``)
SYSTEM_ACTOR = "system"


def create_referral(
    session: Session,
    practitioner: Practitioner,
    data: ReferralData,
    *,
    referrer: Practitioner | None = None,
    now: datetime | None = None,
) -> tuple[ReferralRequest, bool]:
    """Store a referral with its event and notifications in one commit.

    Returns ``(referral, created)``; a repeated idempotency key returns the first
    referral and ``created=False`` (a double submit, or a browser resending the form).
    A listing taking no new patients refuses it (:func:`referral.capacity.check_takes_referrals`);
    the weekly cap is brought in step in the same commit.
    """
    if referrer is not None and referrer.id == practitioner.id:
        raise InvalidInput("self_referral", "You cannot refer a patient to yourself.")
    if data.idempotency_key:
        earlier = _by_key(session, data.idempotency_key, practitioner)
        if earlier is not None:
            return earlier, False
    capacity.check_takes_referrals(practitioner)
    now = now or utcnow()
    referral = ReferralRequest(
        id=new_token(),
        practitioner_id=practitioner.id,
        referrer_id=referrer.id if referrer else None,
        patient_name=data.patient_name,
        email=data.email,
        phone=data.phone,
        postcode=data.postcode,
        condition_id=data.condition_id,
        message=data.message,
        urgency=data.urgency,
        consent_version=data.consent_version,
        consent_at=now,
        status="sent",
        idempotency_key=data.idempotency_key or None,
        searched_modality=data.searched_modality,
        created_at=now,
        updated_at=now,
    )
    referral.practitioner = practitioner
    referral.referrer = referrer
    actor = practitioner_actor(referrer) if referrer else PATIENT_ACTOR
    try:
        session.add(referral)
        session.flush()  # the row first: events and outbox rows point at it
        session.add(ReferralEvent(referral_id=referral.id, actor=actor, action="created"))
        notifications.referral_created(session, referral)
        capacity.refresh(session, practitioner, now)
        session.commit()
    except IntegrityError:
        # a concurrent request with the same idempotency key won the race
        session.rollback()
        earlier = data.idempotency_key and _by_key(session, data.idempotency_key, practitioner)
        if earlier:
            return earlier, False
        raise
    return referral, True


def _by_key(session: Session, key: str, practitioner: Practitioner) -> ReferralRequest | None:
    earlier = session.scalars(
        select(ReferralRequest).where(ReferralRequest.idempotency_key == key)
    ).first()
    if earlier is not None and earlier.practitioner_id != practitioner.id:
        raise InvalidInput(
            "form_reused", "This form was already used. Please reload the page and try again."
        )
    return earlier


def transition(
    session: Session,
    referral: ReferralRequest,
    new_status: str,
    actor: str,
    reason: str | None = None,
    category: str | None = None,
) -> str:
    """Move ``referral`` to ``new_status``, write the event and queue the notifications.

    A decline carries the practitioner's private ``reason`` and a ``category`` from
    :data:`DECLINE_CATEGORIES`, which the patient is told.

    Raises :class:`IllegalTransition` for a move the lifecycle forbids and
    :class:`InvalidInput` for a decline without a reason. Returns the old status. The
    caller commits, then sends ``referral_status_changed``.
    """
    old = referral.status
    if new_status not in TRANSITIONS.get(old, frozenset()):
        raise IllegalTransition(old, new_status)
    reason = (reason or "").strip() or None
    if new_status == "declined":
        if reason is None:
            raise InvalidInput("reason_required", "Please give a reason for declining.")
        if category is not None and category not in DECLINE_CATEGORIES:
            raise InvalidInput("invalid_category", "Please choose why you are declining.")
        referral.decline_reason = reason
        referral.decline_category = category or "other"
    referral.status = new_status
    referral.updated_at = utcnow()
    mark_milestones(referral, new_status, referral.updated_at)
    session.add(
        ReferralEvent(referral_id=referral.id, actor=actor, action=new_status, detail=reason)
    )
    notifications.status_changed(session, referral, old, new_status)
    return old


#: milestone column -> the statuses that reach it; the funnel counts from these
MILESTONES: dict[str, frozenset[str]] = {
    "viewed_at": frozenset({"viewed", "accepted", "declined", "completed", "referred_on"}),
    "accepted_at": frozenset({"accepted"}),
    "answered_at": frozenset({"accepted", "declined", "referred_on"}),
}


def mark_milestones(referral: ReferralRequest, new_status: str, at: datetime) -> None:
    """Stamp the first time ``referral`` reached each milestone ``new_status`` belongs to."""
    for column, statuses in MILESTONES.items():
        if new_status in statuses and getattr(referral, column) is None:
            setattr(referral, column, at)


def record_event(
    session: Session, referral: ReferralRequest, actor: str, action: str, detail: str | None = None
) -> ReferralEvent:
    """Add a trail entry for something that is not a status change (opened, exported)."""
    event = ReferralEvent(referral_id=referral.id, actor=actor, action=action, detail=detail)
    session.add(event)
    return event


def can_read(referral: ReferralRequest, practitioner: Practitioner | None, admin: bool) -> bool:
    """Only the recipient practitioner, the referring practitioner (who sent it, and reads
    its outcome) and admins read a referral: it holds health details."""
    return admin or (
        practitioner is not None
        and practitioner.id in (referral.practitioner_id, referral.referrer_id)
    )


def can_answer(referral: ReferralRequest, practitioner: Practitioner | None) -> bool:
    """Only the recipient accepts, declines or completes; an admin reads but does not answer."""
    return practitioner is not None and referral.practitioner_id == practitioner.id


def inbox(session: Session, practitioner: Practitioner) -> dict[str, list[ReferralRequest]]:
    """The practitioner's referrals grouped by status, newest first within each."""
    rows = session.scalars(
        select(ReferralRequest)
        .where(ReferralRequest.practitioner_id == practitioner.id)
        .order_by(ReferralRequest.created_at.desc(), ReferralRequest.id)
    ).all()
    groups: dict[str, list[ReferralRequest]] = {status: [] for status in STATUSES}
    for row in rows:
        groups.setdefault(row.status, []).append(row)
    return groups


def sent_by(session: Session, referrer: Practitioner) -> list[ReferralRequest]:
    """Referrals this practitioner sent to others, newest first."""
    return list(
        session.scalars(
            select(ReferralRequest)
            .where(ReferralRequest.referrer_id == referrer.id)
            .order_by(ReferralRequest.created_at.desc(), ReferralRequest.id)
        )
    )


def _cancel_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=CANCEL_SALT)


def cancel_token(referral: ReferralRequest) -> str:
    """A signed token naming the referral, for the patient's cancel link."""
    return _cancel_serializer().dumps(referral.id)


def referral_id_from_cancel_token(token: str) -> str:
    """The referral id a cancel token names; a forged token is 404, an old one 410."""
    max_age = int(current_app.config["REFERRAL_CANCEL_LINK_MAX_AGE_DAYS"]) * 86400
    try:
        value = _cancel_serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidInput(
            "link_expired",
            "This cancel link has expired. Please contact the practitioner directly.",
            status=410,
        ) from None
    except BadSignature:
        raise InvalidInput("not_found", "This cancel link is not valid.", status=404) from None
    if not isinstance(value, str):
        raise InvalidInput("not_found", "This cancel link is not valid.", status=404)
    return value


#: Crockford's base32: digits and capitals without I, L, O and U, which read as 1, 1, 0, V
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SENT_SALT = "referral-sent"
#: how long the "request received" page of a sent request can be reloaded
SENT_PAGE_MAX_AGE = 24 * 3600


def reference(referral_id: str) -> str:
    """The code a patient and a practitioner read to each other: eight characters from an
    alphabet without look-alikes, in two groups (``7KQM-4XT9``), made from the id's hash so
    it gives nothing of the id itself away."""
    number = int.from_bytes(hashlib.sha256(referral_id.encode()).digest()[:5], "big")
    chars = "".join(REFERENCE_ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(8)))
    return f"{chars[:4]}-{chars[4:]}"


def _sent_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SENT_SALT)


def sent_token(practitioner_id: int, referral_id: str | None) -> str:
    """A signed token for the page a sent form redirects to (post/redirect/get), so a
    reload or Back never sends the form again. ``None`` for a request nothing was stored for."""
    return _sent_serializer().dumps([practitioner_id, referral_id])


def read_sent_token(token: str) -> tuple[int, str | None]:
    """What :func:`sent_token` signed; :class:`InvalidInput` (404) for a forged or old one."""
    try:
        value = _sent_serializer().loads(token, max_age=SENT_PAGE_MAX_AGE)
    except BadSignature:
        raise InvalidInput("not_found", "This page has expired.", status=404) from None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)):
        raise InvalidInput("not_found", "This page has expired.", status=404)
    return value[0], value[1] if isinstance(value[1], str) else None


def purge(session: Session, older_than: timedelta, *, now: datetime | None = None) -> int:
    """Delete referrals untouched for ``older_than``, with their events and messages."""
    cutoff = (now or utcnow()) - older_than
    old = select(ReferralRequest.id).where(ReferralRequest.updated_at < cutoff)
    ids = list(session.scalars(old))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        session.execute(delete(OutboxMessage).where(OutboxMessage.referral_id.in_(chunk)))
        session.execute(delete(ReferralEvent).where(ReferralEvent.referral_id.in_(chunk)))
        session.execute(delete(ReferralRequest).where(ReferralRequest.id.in_(chunk)))
    session.commit()
    return len(ids)

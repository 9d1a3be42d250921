"""Which listing states may follow which, and who hears about it.

``draft -> pending`` (the practitioner submits), ``pending -> active | rejected`` (an admin),
``active -> pending`` (the practitioner changed credentials or locations: checked again),
``active -> suspended`` and ``suspended -> active`` (an admin), and ``active -> active``
when an admin confirms the details again (``reconfirm``). Only ``active`` listings are
public. Every decision sends :data:`referral.signals.listing_moderated` (the audit
log's source) with the changed fields. Emails go through the outbox in the same commit;
signals after it. Functions that email build their links with :func:`referral.urls.external_url`.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from referral import audit
from referral.errors import InvalidInput
from referral.mail import queue_template
from referral.models import Location, Practitioner, utcnow
from referral.paging import Page, contains, paginate
from referral.signals import listing_approved, listing_moderated, listing_submitted
from referral.urls import external_url

#: what an admin may do from each state
ADMIN_ACTIONS = {
    "approve": ("pending", "suspended"),
    "reject": ("pending",),
    "suspend": ("active",),
    "reconfirm": ("active",),
}

PAST = {
    "approve": "approved",
    "reject": "rejected",
    "suspend": "suspended",
    "reconfirm": "confirmed again",
}
#: what a decision may change, as the audit log records it
AUDITED = ("status", "status_reason", "verified_by", "verified_at")


def actions_for(practitioner: Practitioner) -> list[str]:
    """The decisions an admin may take on this listing now (the only ones offered)."""
    return [a for a, allowed in ADMIN_ACTIONS.items() if practitioner.status in allowed]


def submit(session: Session, practitioner: Practitioner) -> None:
    """Send a draft (or rejected) listing for checking; says what is missing first."""
    if practitioner.status not in ("draft", "rejected"):
        raise InvalidInput(
            "invalid_transition", f"Your listing is {practitioner.status}: nothing to submit.", 409
        )
    missing = [
        label
        for label, ok in (
            ("at least one location", bool(practitioner.locations)),
            ("what you practise", bool(practitioner.modalities)),
            ("your accreditation body", bool(practitioner.accreditation_body)),
            ("your membership number", bool(practitioner.membership_number)),
        )
        if not ok
    ]
    if missing:
        raise InvalidInput(
            "incomplete_listing", "Before submitting, please add " + ", ".join(missing) + ".", 409
        )
    if practitioner.user is not None and practitioner.user.email_verified_at is None:
        raise InvalidInput("unverified_email", "Please confirm your email address first.", 409)
    practitioner.status = "pending"
    practitioner.status_reason = None
    session.commit()
    listing_submitted.send(current_app._get_current_object(), practitioner=practitioner)


def back_to_review(practitioner: Practitioner) -> bool:
    """A live listing whose credentials or locations changed is checked again.

    Call before committing the change; send :func:`announce_submitted` after it.
    Returns whether the listing went back to ``pending``.
    """
    if practitioner.status != "active":
        return False
    practitioner.status = "pending"
    practitioner.status_reason = None
    return True


def announce_submitted(practitioner: Practitioner) -> None:
    listing_submitted.send(current_app._get_current_object(), practitioner=practitioner)


def _listings_query(status: str, search: str = ""):
    query = (
        select(Practitioner)
        .where(Practitioner.status == status)
        .options(
            selectinload(Practitioner.modalities),
            selectinload(Practitioner.user),
            selectinload(Practitioner.locations),
        )
        .order_by(Practitioner.updated_at, Practitioner.id)
    )
    words = search.strip()[:100]
    if words:
        like = contains(words.lower())
        query = query.where(
            or_(
                func.lower(Practitioner.name).like(like, escape="\\"),
                func.lower(Practitioner.business_name).like(like, escape="\\"),
                exists().where(
                    Location.practitioner_id == Practitioner.id,
                    func.upper(Location.postcode) == words.upper(),
                ),
            )
        )
    return query


def queue(session: Session, status: str = "pending") -> list[Practitioner]:
    """Listings in ``status``, oldest change first (the order to check them in)."""
    return list(session.scalars(_listings_query(status)))


def listings(
    session: Session, status: str = "pending", search: str = "", page: int = 1, per_page: int = 25
) -> Page:
    """One page of the listings in ``status``, oldest change first; ``search`` keeps those
    whose name or business name holds it, or with a location at that postcode."""
    return paginate(session, _listings_query(status, search), page, per_page)


def _check(practitioner: Practitioner, action: str) -> None:
    if practitioner.status not in ADMIN_ACTIONS[action]:
        raise InvalidInput(
            "invalid_transition",
            f"A listing that is {practitioner.status} cannot be {PAST[action]} "
            f"(only from {' or '.join(ADMIN_ACTIONS[action])}).",
            409,
        )


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            "missing_reason", "Please give a reason; it is sent to the practitioner."
        )
    return reason[:2000]


def recipient(practitioner: Practitioner) -> str | None:
    return practitioner.user.email if practitioner.user is not None else practitioner.email


def _notify(
    session: Session, practitioner: Practitioner, template: str, subject: str, **kw
) -> None:
    to = recipient(practitioner)
    if not to:
        return
    site = current_app.config["REFERRAL_SITE_NAME"]
    edit_url = external_url("referral.listing")
    queue_template(
        session,
        to=to,
        subject=f"{subject} · {site}",
        template=template,
        site=site,
        practitioner=practitioner,
        edit_url=edit_url,
        **kw,
    )


def _decided(practitioner: Practitioner, action: str, admin: str, before: dict) -> None:
    listing_moderated.send(
        current_app._get_current_object(),
        practitioner=practitioner,
        action=action,
        actor=admin,
        changes=audit.diff(before, audit.snapshot(practitioner, AUDITED)),
    )


def _verify(practitioner: Practitioner, admin: str) -> None:
    practitioner.verified_by = admin
    practitioner.verified_at = utcnow()


def approve(session: Session, practitioner: Practitioner, admin: str) -> None:
    """Credentials checked: the listing goes live (a suspended one is reinstated), who
    verified it and when are recorded, the practitioner is told."""
    _check(practitioner, "approve")
    before = audit.snapshot(practitioner, AUDITED)
    action = "reinstate" if practitioner.status == "suspended" else "approve"
    practitioner.status = "active"
    practitioner.status_reason = None
    _verify(practitioner, admin)
    link = external_url("referral.practitioner", practitioner_id=practitioner.id)
    _notify(session, practitioner, "approved", "Your listing is live", link=link)
    session.commit()
    listing_approved.send(current_app._get_current_object(), practitioner=practitioner, admin=admin)
    _decided(practitioner, action, admin, before)


def reconfirm(session: Session, practitioner: Practitioner, admin: str) -> None:
    """An admin (or the practitioner, by their link) confirmed a live listing's details
    again: the listing's "details confirmed" date moves to now."""
    _check(practitioner, "reconfirm")
    before = audit.snapshot(practitioner, AUDITED)
    _verify(practitioner, admin)
    session.commit()
    _decided(practitioner, "reconfirm", admin, before)


def reject(session: Session, practitioner: Practitioner, admin: str, reason: str) -> None:
    _check(practitioner, "reject")
    before = audit.snapshot(practitioner, AUDITED)
    practitioner.status_reason = _reason(reason)
    practitioner.status = "rejected"
    _notify(
        session, practitioner, "rejected", "Your listing was not approved", reason=reason.strip()
    )
    session.commit()
    _decided(practitioner, "reject", admin, before)


def suspend(session: Session, practitioner: Practitioner, admin: str, reason: str) -> None:
    _check(practitioner, "suspend")
    before = audit.snapshot(practitioner, AUDITED)
    practitioner.status_reason = _reason(reason)
    practitioner.status = "suspended"
    _notify(session, practitioner, "suspended", "Your listing is suspended", reason=reason.strip())
    session.commit()
    _decided(practitioner, "suspend", admin, before)

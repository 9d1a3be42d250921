"""Who is told what when a referral is created or changes status.

Every email here is queued in the outbox inside the caller's transaction. None carries
health details: no condition, no message, no patient details to anyone but the patient;
the practitioner gets a link to the inbox, where signing in is needed to read.
Texts are templates (``referral/email/*.txt``) a host can override; the HTML part is the
same text in ``referral/email/layout.html``.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from referral import wording
from referral.mail import queue_template, recipient_allowed
from referral.models import Location, OutboxMessage, Practitioner, ReferralRequest
from referral.outbox import queue_webhook
from referral.urls import external_url

#: statuses the patient hears about by email (cancelling is their own act)
PATIENT_HEARS = frozenset({"accepted", "declined"})
#: statuses a referring practitioner hears about
#: (not the outcome of a completed or referred-on one: that is health information)
REFERRER_HEARS = frozenset(
    {"viewed", "accepted", "declined", "cancelled", "completed", "expired", "referred_on"}
)


def practitioner_email(practitioner: Practitioner | None) -> str | None:
    """Where a practitioner's notices go: the listing's address, else the account's."""
    if practitioner is None:
        return None
    if practitioner.email:
        return practitioner.email
    return practitioner.user.email if practitioner.user else None


def referral_created(session: Session, referral: ReferralRequest) -> list[OutboxMessage]:
    """Queue the practitioner's notice, the patient's acknowledgement (with a cancel
    link; not past ``REFERRAL_RECIPIENT_DAILY_LIMIT`` for that address), the referrer's
    copy and the webhook."""
    from referral.referrals import cancel_token

    queued: list[OutboxMessage] = []
    site = current_app.config["REFERRAL_SITE_NAME"]
    context = _context(referral)
    to = practitioner_email(referral.practitioner)
    if to:
        queued.append(
            _queue(session, referral, to, f"New referral request · {site}", "new_referral", context)
        )
    # anyone can type someone else's address: a few acknowledgements a day per address
    if recipient_allowed(referral.email, "acknowledgement"):
        cancel_url = external_url("referral.cancel", token=cancel_token(referral))
        queued.append(
            _queue(
                session,
                referral,
                referral.email,
                f"We have received your request · {site}",
                "acknowledgement",
                {**context, **_patient_links(referral), "cancel_url": cancel_url},
            )
        )
    referrer_to = practitioner_email(referral.referrer)
    if referrer_to:
        queued.append(
            _queue(
                session,
                referral,
                referrer_to,
                f"Your referral was sent · {site}",
                "referrer_sent",
                context,
            )
        )
    _webhook(session, referral, "referral.created", {})
    return queued


def status_changed(
    session: Session, referral: ReferralRequest, old: str, new: str
) -> list[OutboxMessage]:
    """Queue the status-update emails and the webhook for one status change."""
    queued: list[OutboxMessage] = []
    site = current_app.config["REFERRAL_SITE_NAME"]
    context = {**_context(referral), "old_status": old, "new_status": new}
    if new in PATIENT_HEARS:
        queued.append(
            _queue(
                session,
                referral,
                referral.email,
                f"An answer to your request · {site}",
                f"patient_{new}",
                {**context, **_patient_links(referral)},
            )
        )
    if new == "cancelled":
        to = practitioner_email(referral.practitioner)
        if to:
            queued.append(
                _queue(
                    session,
                    referral,
                    to,
                    f"A referral was cancelled · {site}",
                    "practitioner_cancelled",
                    context,
                )
            )
    referrer_to = practitioner_email(referral.referrer)
    if referrer_to and new in REFERRER_HEARS:
        queued.append(
            _queue(
                session,
                referral,
                referrer_to,
                f"Your referral is now {new.replace('_', ' ')} · {site}",
                "referrer_status",
                context,
            )
        )
    _webhook(session, referral, "referral.status_changed", {"old_status": old})
    return queued


def _context(referral: ReferralRequest) -> dict[str, Any]:
    from referral.referrals import DECLINE_CATEGORIES, reference

    practitioner = referral.practitioner
    place = practitioner.locations[0] if practitioner.locations else None
    # a search like the patient's own: their postcode and what this practitioner practises
    # (not their condition: an email carries no health details, even to the patient)
    again = {
        "postcode": referral.postcode or (place.postcode if place else None),
        "modality": practitioner.modalities[0].slug if practitioner.modalities else None,
    }
    return {
        "site_name": current_app.config["REFERRAL_SITE_NAME"],
        "referral": referral,
        "reference": reference(referral.id),
        "practitioner_name": referral.practitioner.name,
        "referrer_name": referral.referrer.name if referral.referrer else None,
        "inbox_url": external_url("referral.inbox"),
        "sent_url": external_url("referral.sent_referrals"),
        "search_url": external_url("referral.index"),
        "search_again_url": external_url("referral.index", **{k: v for k, v in again.items() if v}),
        "listing_url": external_url("referral.practitioner", practitioner_id=practitioner.id),
        "practitioner_phone": wording.phone(practitioner.phone),
        "practitioner_address": _address(place),
        "decline_text": DECLINE_CATEGORIES.get(referral.decline_category or "other"),
        "emergency_notice": current_app.config["REFERRAL_EMERGENCY_NOTICE"],
    }


def _address(place: Location | None) -> str:
    if place is None:
        return ""
    street = ", ".join(part for part in (place.name, place.street, place.suburb) if part)
    return " ".join(part for part in (street, place.state, place.postcode) if part)


def _queue(
    session: Session,
    referral: ReferralRequest,
    to: str,
    subject: str,
    template: str,
    context: dict[str, Any],
) -> OutboxMessage:
    return queue_template(
        session, to=to, subject=subject, template=template, referral_id=referral.id, **context
    )


def _webhook(session: Session, referral: ReferralRequest, event: str, extra: dict) -> None:
    """Ids and status only: a webhook receiver is outside the privacy boundary."""
    queue_webhook(
        session,
        current_app.config,
        event,
        {
            "referral_id": referral.id,
            "practitioner_id": referral.practitioner_id,
            "referrer_id": referral.referrer_id,
            "status": referral.status,
            "occurred_at": referral.updated_at.isoformat() + "Z",
            **extra,
        },
        referral_id=referral.id,
    )


# --- follow-up: the patient's own links, reminders and expiry (referral.sweep) ----------


def _patient_links(referral: ReferralRequest) -> dict[str, str | None]:
    """The patient's status page and, once accepted, "Book a time"."""
    from referral.status import booking_link, status_token

    return {
        "status_url": external_url("referral.request_status", token=status_token(referral)),
        "booking_url": booking_link(referral),
    }


def reminder(session: Session, referral: ReferralRequest) -> OutboxMessage | None:
    """Queue the practitioner's one reminder of a request they have not opened: the
    inbox link and the reference, nothing of the patient or their health."""
    to = practitioner_email(referral.practitioner)
    if not to:
        return None
    site = current_app.config["REFERRAL_SITE_NAME"]
    return _queue(
        session,
        referral,
        to,
        f"A referral request is waiting for you · {site}",
        "practitioner_reminder",
        _context(referral),
    )


def referral_expired(
    session: Session, referral: ReferralRequest, offered: list[Any]
) -> OutboxMessage:
    """Queue the patient's notice that nobody answered, with the practitioners offered
    instead (``referral.status.Alternative``), each with a one-step re-send link."""
    from referral.status import resend_token

    site = current_app.config["REFERRAL_SITE_NAME"]
    choices = [
        {
            "name": a.name,
            "modalities": a.modalities,
            "suburb": a.suburb,
            "distance_km": a.distance_km,
            "link": external_url(
                "referral.resend", token=resend_token(referral, a.practitioner_id)
            ),
        }
        for a in offered
    ]
    return queue_template(
        session,
        to=referral.email,
        subject=f"No answer yet: other practitioners near you · {site}",
        template="patient_expired",
        referral_id=referral.id,
        **{**_context(referral), **_patient_links(referral)},
        alternatives=choices,
        **{f"resend_{n}_url": c["link"] for n, c in enumerate(choices, 1)},
    )

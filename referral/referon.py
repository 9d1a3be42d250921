"""Closing the loop on a referral: referring the patient on to another practitioner, and
the outcome its referrer reads.

Referring on makes a new referral carrying the patient's details, with the practitioner
who had the first as its referrer; the two are linked both ways (``referred_from`` /
``referred_to``), the first becomes ``referred_on`` (outcome ``referred_on``), each gets a
trail entry, and the patient's acknowledgement of the new one tells them who has their
request now (no health details). Completing asks for an outcome (:data:`OUTCOMES`) and an
optional note; both are health information, so the referrer reads them on their sent
referrals page and no email carries them.

These functions commit; the caller then sends the signals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from referral import consent, notifications
from referral.errors import InvalidInput
from referral.listings import public_listing
from referral.models import Practitioner, ReferralEvent, ReferralRequest, new_token, utcnow
from referral.query import SearchQuery, parse_search, run_search
from referral.referrals import can_answer, practitioner_actor, transition
from referral.search import Hit
from referral.wording import OUTCOME_WORDS

#: what came of a referral, in the order a practitioner is offered them
OUTCOMES = tuple(OUTCOME_WORDS)
#: statuses a referral can be referred on from: read, and not yet ended
REFERABLE = frozenset({"viewed", "accepted"})
NOTE_MAX_LENGTH = 1000


def may_refer_on(referral: ReferralRequest, practitioner: Practitioner | None) -> bool:
    """Only the recipient refers on, and only a referral they have read and not ended."""
    return can_answer(referral, practitioner) and referral.status in REFERABLE


@dataclass
class Candidates:
    """A directory search for someone to refer on to: the query and its hits, without the
    practitioner who is referring."""

    query: SearchQuery
    hits: list[Hit]
    nearest_beyond: list[Hit]
    total: int


def search_defaults(referral: ReferralRequest) -> dict[str, str]:
    """Where the refer-on search starts: the patient's postcode and condition."""
    defaults = {}
    if referral.postcode:
        defaults["postcode"] = referral.postcode
    if referral.condition is not None:
        defaults["condition"] = referral.condition.slug
    return defaults


def candidates(
    session: Session,
    referral: ReferralRequest,
    args: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Candidates:
    """The public search (active listings only) with ``args``, less the recipient.

    Raises :class:`InvalidInput` as the search page does (unknown place, bad filter).
    """
    query = parse_search(session, args, config)
    results = run_search(session, query, config)
    own = referral.practitioner_id
    hits = [h for h in results.hits if h.practitioner.id != own]
    beyond = [h for h in results.nearest_beyond if h.practitioner.id != own]
    total = results.total - (len(results.hits) - len(hits))
    return Candidates(query, hits, beyond, max(total, 0))


def target(session: Session, referral: ReferralRequest, practitioner_id: int) -> Practitioner:
    """The practitioner chosen to refer on to: an active listing other than the recipient."""
    found = public_listing(session, practitioner_id)
    if found is None:
        raise InvalidInput("not_found", "That practitioner is not in the directory.", status=404)
    if found.id == referral.practitioner_id:
        raise InvalidInput("self_referral", "You cannot refer a patient to yourself.")
    return found


def needs_agreement(referral: ReferralRequest, config: Mapping[str, Any]) -> bool:
    """Whether the patient's consent did not cover passing details on, so the practitioner
    must confirm that the patient has agreed since."""
    return not consent.covers_referring_on(referral.consent_version, config)


def refer_on(
    session: Session,
    referral: ReferralRequest,
    to: Practitioner,
    *,
    config: Mapping[str, Any],
    note: str | None = None,
    patient_agreed: bool = False,
    now: datetime | None = None,
) -> ReferralRequest:
    """Refer ``referral``'s patient on to ``to`` and commit; returns the new referral.

    Raises :class:`InvalidInput`: 409 when the referral cannot be referred on (any more),
    400 for a note too long, a self-referral, or a consent that needs the practitioner's
    confirmation (``patient_agreed``) which was not given. Nothing is written then.
    """
    # on PostgreSQL a second submit waits here for the first, then sees it referred on
    session.refresh(referral, with_for_update=True)
    if referral.status not in REFERABLE:
        raise InvalidInput(
            "cannot_refer_on",
            f"This referral cannot be referred on: it is {referral.status.replace('_', ' ')}.",
            status=409,
        )
    if to.id == referral.practitioner_id:
        raise InvalidInput("self_referral", "You cannot refer a patient to yourself.")
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_MAX_LENGTH:
        raise InvalidInput(
            "note_too_long", f"Please keep the note under {NOTE_MAX_LENGTH} characters."
        )
    confirmed = needs_agreement(referral, config)
    if confirmed and not patient_agreed:
        raise InvalidInput(
            "agreement_required",
            "Please confirm that the patient has agreed to their details being passed on.",
        )
    now = now or utcnow()
    referrer = referral.practitioner
    actor = practitioner_actor(referrer)
    onward = ReferralRequest(
        id=new_token(),
        practitioner_id=to.id,
        referrer_id=referrer.id,
        referred_from_id=referral.id,
        patient_name=referral.patient_name,
        email=referral.email,
        phone=referral.phone,
        postcode=referral.postcode,
        condition_id=referral.condition_id,
        message=referral.message,
        urgency=referral.urgency,
        # the patient's own agreement when it covered this; else the current wording,
        # which the practitioner has just confirmed the patient agreed to
        consent_version=config["REFERRAL_CONSENT_VERSION"]
        if confirmed
        else referral.consent_version,
        consent_at=now if confirmed else referral.consent_at,
        referrer_note=note,
        status="sent",
        created_at=now,
        updated_at=now,
    )
    onward.practitioner = to
    onward.referrer = referrer
    onward.referred_from = referral
    session.add(onward)
    session.flush()
    session.add(
        ReferralEvent(
            referral_id=onward.id,
            actor=actor,
            action="created",
            detail=f"referred on from {referral.id}"
            + ("; the practitioner confirmed the patient's agreement" if confirmed else ""),
        )
    )
    # the new practitioner's notice, the patient's acknowledgement ("<referrer> has
    # referred you to <to>"), the referring practitioner's copy
    notifications.referral_created(session, onward)
    referral.outcome = "referred_on"
    transition(session, referral, "referred_on", actor, reason=f"to {onward.id}")
    session.commit()
    return onward


def complete(
    session: Session,
    referral: ReferralRequest,
    actor: str,
    outcome: str,
    note: str | None = None,
) -> str:
    """Mark an accepted referral completed with its outcome and commit; returns the old
    status. :class:`InvalidInput` for an outcome not in :data:`OUTCOMES` or a note too
    long, :class:`referral.referrals.IllegalTransition` for a referral not accepted."""
    if outcome not in OUTCOMES:
        raise InvalidInput("invalid_outcome", "Please choose what came of the referral.")
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_MAX_LENGTH:
        raise InvalidInput(
            "note_too_long", f"Please keep the note under {NOTE_MAX_LENGTH} characters."
        )
    old = transition(session, referral, "completed", actor, reason=outcome)
    referral.outcome = outcome
    referral.outcome_note = note
    session.commit()
    return old

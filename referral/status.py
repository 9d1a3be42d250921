"""The patient's side of a sent request: its status page, the alternatives offered when it
was declined or expired, and the one-step re-send to one of them.

Both links are signed like the cancel link (itsdangerous, the app's ``SECRET_KEY``, one
salt per purpose) and expire after ``REFERRAL_STATUS_LINK_MAX_AGE_DAYS``. The status link
names a referral; a re-send link names a referral and the practitioner offered, so nobody
can send a patient's request anywhere but where it was offered. Views and the sweep call
these plain functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from referral import booking
from referral.errors import InvalidInput
from referral.geo import LocationNotFound
from referral.geo.postcodes import lookup
from referral.models import Practitioner, ReferralRequest, utcnow
from referral.query import search_back
from referral.referrals import (
    PATIENT_ACTOR,
    ReferralData,
    create_referral,
    record_event,
)
from referral.search import Filters, search

STATUS_SALT = "referral-status"
RESEND_SALT = "referral-resend"
#: how many practitioners a declined or expired request is offered to
ALTERNATIVES = 3
#: statuses after which the patient is offered others
OFFER_AFTER = frozenset({"declined", "expired"})
#: statuses in which a request is still open with its practitioner
OPEN = frozenset({"sent", "viewed", "accepted"})


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=salt)


def _max_age() -> int:
    return int(current_app.config["REFERRAL_STATUS_LINK_MAX_AGE_DAYS"]) * 86400


def _loads(salt: str, token: str) -> Any:
    """What a token signed; a forged one is 404, an old one 410 (never the data)."""
    try:
        return _serializer(salt).loads(token, max_age=_max_age())
    except SignatureExpired:
        raise InvalidInput(
            "link_expired",
            "This link has expired. Your request is still with the practitioner: please "
            "contact them directly, or search again.",
            status=410,
        ) from None
    except BadSignature:
        raise InvalidInput("not_found", "This link is not valid.", status=404) from None


def status_token(referral: ReferralRequest) -> str:
    """The signed token of the patient's status page for ``referral``."""
    return _serializer(STATUS_SALT).dumps(referral.id)


def referral_id_from_status_token(token: str) -> str:
    value = _loads(STATUS_SALT, token)
    if not isinstance(value, str):
        raise InvalidInput("not_found", "This link is not valid.", status=404)
    return value


def resend_token(referral: ReferralRequest, practitioner_id: int) -> str:
    """The signed token of a one-step re-send of ``referral`` to the practitioner offered."""
    return _serializer(RESEND_SALT).dumps([referral.id, practitioner_id])


def read_resend_token(token: str) -> tuple[str, int]:
    value = _loads(RESEND_SALT, token)
    if not (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        raise InvalidInput("not_found", "This link is not valid.", status=404)
    return value[0], value[1]


@dataclass(frozen=True)
class Alternative:
    """A practitioner offered instead: what the patient reads, and where to re-send."""

    practitioner_id: int
    name: str
    modalities: str
    suburb: str | None
    distance_km: float


def alternatives(
    session: Session, referral: ReferralRequest, config: Mapping[str, Any]
) -> list[Alternative]:
    """The :data:`ALTERNATIVES` nearest active practitioners accepting new patients now
    who treat the request's condition (and practise the modality the patient searched
    by, when they did; with neither, what the first practitioner practises), nearest to
    the patient's postcode (else to the first practitioner), leaving out every
    practitioner the patient's request is open with or was already with."""
    origin = _origin(session, referral, config)
    if origin is None:
        return []
    condition = referral.condition.slug if referral.condition else None
    modalities: tuple[str, ...] = ()
    if referral.searched_modality:
        modalities = (referral.searched_modality,)
    elif condition is None and referral.practitioner.modalities:
        modalities = tuple(m.slug for m in referral.practitioner.modalities)
    already = set(
        session.scalars(
            select(ReferralRequest.practitioner_id).where(ReferralRequest.email == referral.email)
        )
    )
    already.add(referral.practitioner_id)
    results = search(
        session,
        *origin,
        radius_km=float(config["REFERRAL_MAX_RADIUS_KM"]),
        filters=Filters(modalities=modalities, condition=condition, accepting=True),
        per_page=ALTERNATIVES + len(already),
        fallback=0,
    )
    offered = []
    for hit in results.hits:
        p = hit.practitioner
        if p.id in already:
            continue
        names = ", ".join(m.name for m in p.modalities)
        offered.append(Alternative(p.id, p.name, names, hit.location.suburb, hit.distance_km))
    return offered[:ALTERNATIVES]


def _origin(
    session: Session, referral: ReferralRequest, config: Mapping[str, Any]
) -> tuple[float, float] | None:
    """Where to measure from: the patient's postcode in the local gazetteer (never a
    remote geocoder: this runs on a page and in the sweep), else the first practitioner's
    location."""
    place = referral.practitioner.locations[0] if referral.practitioner.locations else None
    country = place.country if place else config["REFERRAL_DEFAULT_COUNTRY"]
    if referral.postcode:
        try:
            point = lookup(session, referral.postcode, country)
            return point.lat, point.lon
        except LocationNotFound:
            pass
    return (place.lat, place.lon) if place else None


def searched_modality(back: str | None, practitioner: Practitioner) -> str | None:
    """The modality a patient searched by, from the search a referral form was opened
    from (its ``back`` query), when it was one the practitioner practises."""
    chosen = [
        slug.strip()
        for value in parse_qs(search_back(back)).get("modality", [])
        for slug in value.split(",")
        if slug.strip()
    ]
    practised = {m.slug for m in practitioner.modalities}
    if len(set(chosen)) == 1 and chosen[0] in practised:
        return chosen[0]
    return None


def resend_key(referral: ReferralRequest, practitioner_id: int) -> str:
    """The idempotency key of a re-send: the same link confirmed twice sends once."""
    return f"resend-{referral.id}-{practitioner_id}"


def resent(
    session: Session, referral: ReferralRequest, practitioner_id: int
) -> ReferralRequest | None:
    """The referral an earlier re-send of ``referral`` to that practitioner made, if any."""
    key = resend_key(referral, practitioner_id)
    return session.scalars(
        select(ReferralRequest).where(ReferralRequest.idempotency_key == key)
    ).first()


def resend(
    session: Session,
    referral: ReferralRequest,
    practitioner: Practitioner,
    *,
    now: datetime | None = None,
) -> tuple[ReferralRequest, bool]:
    """Send ``referral``'s request, as the patient wrote it, to ``practitioner`` with a
    new consent time (the patient's confirmation now). Idempotent: the second
    confirmation returns the first new referral and ``created=False``.

    Refused (409) while the request is still open with its practitioner, and (by
    :func:`~referral.referrals.create_referral`) when the practitioner takes no new
    patients. The original's trail records the re-send in the same commit.
    """
    earlier = resent(session, referral, practitioner.id)
    if earlier is not None:
        return earlier, False
    if referral.status not in OFFER_AFTER:
        raise InvalidInput(
            "still_open",
            f"Your request is still with {referral.practitioner.name}, so it was not sent "
            "again. Cancel it first if you would rather see someone else.",
            status=409,
        )
    data = ReferralData(
        patient_name=referral.patient_name,
        email=referral.email,
        phone=referral.phone,
        postcode=referral.postcode,
        condition_id=referral.condition_id,
        message=referral.message,
        urgency=referral.urgency,
        consent_version=current_app.config["REFERRAL_CONSENT_VERSION"],
        idempotency_key=resend_key(referral, practitioner.id),
        searched_modality=referral.searched_modality,
    )
    record_event(
        session, referral, PATIENT_ACTOR, "resent", detail=f"practitioner:{practitioner.id}"
    )
    try:
        return create_referral(session, practitioner, data, now=now or utcnow())
    except InvalidInput:
        session.rollback()  # nor the trail entry: nothing was sent
        raise


def booking_link(referral: ReferralRequest) -> str | None:
    """ "Book a time" for an accepted request: the practitioner's booking page, prefilled
    with the patient's name and email where the provider documents how."""
    if referral.status != "accepted":
        return None
    return booking.booking_link(referral.practitioner, referral.patient_name, referral.email)

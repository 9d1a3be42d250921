"""What people read: times in the site's time zone, phone numbers as they are written where
the site is, statuses and trail entries in plain words. Template filters use these
(``localtime``, ``month_year``, ``phone``, ``status_words``, ``outcome_words``,
``trail_words``); so do emails."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from flask import current_app

#: a referral's status as its practitioner and patient read it
STATUS_WORDS = {
    "sent": "New",
    "viewed": "Opened",
    "accepted": "Accepted",
    "declined": "Declined",
    "cancelled": "Cancelled",
    "completed": "Completed",
    "expired": "Expired (no answer)",
    "referred_on": "Referred on",
}
#: what an event's action says, after who did it
ACTION_WORDS = {
    "created": "sent the request",
    "viewed": "opened it",
    "opened": "opened it",
    "accepted": "accepted it",
    "declined": "declined it",
    "cancelled": "cancelled it",
    "completed": "marked it completed",
    "exported": "downloaded it",
    "reminded": "reminded the practitioner",
    "expired": "closed it unanswered",
    "alternatives_offered": "offered the patient other practitioners",
    "resent": "sent it on to another practitioner",
    "referred_on": "referred the patient on",
}
#: what came of a referral (``ReferralRequest.outcome``), as its practitioners read it
OUTCOME_WORDS = {
    "improved": "Improved",
    "referred_on": "Referred on",
    "discharged": "Discharged",
    "did_not_attend": "Did not attend",
}


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The ``zoneinfo`` zone for a name; a wrong name fails at start-up (see the extension)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"REFERRAL_TIMEZONE {name!r} is not a time zone name such as 'Australia/Sydney'."
        ) from None


def localtime(moment: datetime | None, with_time: bool = True) -> str:
    """A stored time (UTC, naive) in ``REFERRAL_TIMEZONE``: ``2 Dec 2026, 5:57 am AEDT``."""
    if moment is None:
        return ""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    local = aware.astimezone(zone(current_app.config["REFERRAL_TIMEZONE"]))
    day = f"{local.day} {local:%b %Y}"
    if not with_time:
        return day
    hour = local.hour % 12 or 12
    return f"{day}, {hour}:{local:%M} {'am' if local.hour < 12 else 'pm'} {local:%Z}"


def month_year(moment: datetime | None) -> str:
    """A stored time's month in ``REFERRAL_TIMEZONE``: ``December 2026`` (for "Details
    confirmed December 2026": a day would claim more precision than a check has)."""
    if moment is None:
        return ""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    local = aware.astimezone(zone(current_app.config["REFERRAL_TIMEZONE"]))
    return f"{local:%B %Y}"


def phone(number: str | None) -> str:
    """A stored (E.164) number as people there write it: national format in
    ``REFERRAL_PHONE_REGION`` (``0412 345 678``), international elsewhere."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, current_app.config["REFERRAL_PHONE_REGION"])
    except phonenumbers.NumberParseException:
        return number
    region = phonenumbers.region_code_for_number(parsed)
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if region == current_app.config["REFERRAL_PHONE_REGION"]
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)


def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


def actor_words(actor: str, names: dict[int, str] | None = None) -> str:
    """Who an event's ``actor`` is: "The patient", a practitioner's name, "An admin"."""
    kind, _, key = actor.partition(":")
    if kind == "patient":
        return "The patient"
    if kind == "admin":
        return "An admin"
    if kind == "system":
        return "The service"
    if kind == "practitioner" and key.isdigit() and names and int(key) in names:
        return names[int(key)]
    return "A practitioner"


def outcome_words(outcome: str | None) -> str:
    if not outcome:
        return ""
    return OUTCOME_WORDS.get(outcome, outcome.replace("_", " ").capitalize())


def trail_words(action: str) -> str:
    return ACTION_WORDS.get(action, action.replace("_", " "))

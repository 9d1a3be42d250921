"""A practitioner's online booking page, offered to a patient once a referral is accepted."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from referral.errors import InvalidInput
from referral.models import Practitioner

#: booking providers that document prefilling the booking form from the page's address:
#: host -> (name parameter, email parameter). Cal.com: ``?name=&email=`` (cal.com/help,
#: "Auto-forwarding Query Parameters" and "Prefill booking form"); Calendly: ``name`` and
#: ``email`` ("How to pre-populate invitee information"). Cliniko and Halaxy document no
#: such parameters, so their links are used as given.
PREFILL: dict[str, tuple[str, str]] = {
    "cal.com": ("name", "email"),
    "app.cal.com": ("name", "email"),
    "calendly.com": ("name", "email"),
}


def check_booking_url(value: Any) -> str | None:
    """An https booking page address or ``None``; anything else is ``invalid_booking_url``."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:  # an unclosed "[" or a port that is no number
        parts, host = None, None
    if (
        parts is None
        or len(text) > 500
        or parts.scheme != "https"
        or not host
        or "." not in host
        or parts.username is not None
        or any(ch.isspace() for ch in text)
    ):
        raise InvalidInput(
            "invalid_booking_url",
            "Give your online booking page's full address, starting with https:// "
            "(for example https://cal.com/your-name).",
        )
    return text


def booking_link(
    practitioner: Practitioner, name: str | None = None, email: str | None = None
) -> str | None:
    """The practitioner's booking page for this patient: prefilled with their name and
    email where the provider documents how (:data:`PREFILL`), else as given."""
    url = practitioner.booking_url
    if not url:
        return None
    parts = urlsplit(url)
    fields = PREFILL.get((parts.hostname or "").lower())
    if fields is None:
        return url
    extra = {key: value for key, value in zip(fields, (name, email), strict=True) if value}
    if not extra:
        return url
    query = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
    return parts._replace(query=query).geturl()

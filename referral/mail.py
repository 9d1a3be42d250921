"""Queueing email in the transactional outbox.

:func:`queue_email` only adds a row to the caller's session: the caller commits it with the
change that caused it, so a message exists if and only if the change does. Delivery (SMTP,
retries) happens after commit, elsewhere.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from referral.models import OutboxMessage


def queue_email(
    session: Session,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    referral_id: str | None = None,
) -> OutboxMessage:
    """Add an email to the outbox in ``session``; nothing is sent and nothing committed."""
    message = OutboxMessage(
        kind="email",
        recipient=to,
        subject=subject,
        body_text=text,
        body_html=html,
        referral_id=referral_id,
    )
    session.add(message)
    return message

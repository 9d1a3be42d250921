"""Queue an email in the outbox, inside the caller's transaction.

Nothing is sent here: the message is committed together with the change that caused it
(a transactional outbox), and :mod:`referral.outbox` delivers it after the commit, so a
mail server that is down loses nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from referral.models import OutboxMessage

#: ``session.info`` key: the messages queued in this session, not yet tried
QUEUED = "referral_queued_messages"


def queue_email(
    session: Session,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    referral_id: str | None = None,
) -> OutboxMessage:
    """Add an email to the outbox; the caller commits it with its own change."""
    message = OutboxMessage(
        kind="email",
        recipient=to,
        subject=subject,
        body_text=text,
        body_html=html,
        referral_id=referral_id,
    )
    session.add(message)
    # remembered so the request can try it right after its commit (outbox.deliver_queued)
    session.info.setdefault(QUEUED, []).append(message)
    return message

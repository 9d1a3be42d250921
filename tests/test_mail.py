from __future__ import annotations

from sqlalchemy import func, select

from referral.mail import queue_email
from referral.models import OutboxMessage


def test_queue_email_only_adds_to_the_callers_transaction(session):
    message = queue_email(session, to="a@example.com", subject="S", text="T", html="<p>T</p>")
    assert message in session.new and message.sent_at is None and message.kind == "email"
    session.rollback()  # the caller's change failed: the email goes with it
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    queue_email(session, to="a@example.com", subject="S", text="T")
    session.commit()
    stored = session.scalars(select(OutboxMessage)).one()
    assert (stored.recipient, stored.subject, stored.body_text, stored.body_html) == (
        "a@example.com",
        "S",
        "T",
        None,
    )
    assert stored.attempts == 0 and stored.next_attempt_at is not None

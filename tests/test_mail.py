from __future__ import annotations

from sqlalchemy import func, select

from referral.mail import queue_email
from referral.models import OutboxMessage


def test_queue_email_adds_to_the_callers_transaction_only(app, session):
    message = queue_email(
        session, to="a@example.com", subject="Hi", text="Body", html="<p>Body</p>"
    )
    assert message in session.new
    session.rollback()  # the change it belonged to failed: no email either
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    queue_email(session, to="a@example.com", subject="Hi", text="Body")
    session.commit()
    stored = session.scalars(select(OutboxMessage)).one()
    assert (stored.recipient, stored.subject, stored.body_text, stored.kind) == (
        "a@example.com",
        "Hi",
        "Body",
        "email",
    )
    assert stored.sent_at is None and stored.attempts == 0

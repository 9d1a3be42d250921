from __future__ import annotations

from sqlalchemy import func, select

from referral.mail import html_paragraphs, queue_email, queue_template
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


def test_html_part_escapes_and_links():
    [first, second] = html_paragraphs("Hi <b>Pat</b> & co\n\nGo to https://x.example/a?b=1&c=2")
    assert first == "Hi &lt;b&gt;Pat&lt;/b&gt; &amp; co"
    assert 'href="https://x.example/a?b=1&amp;c=2"' in second


def test_queue_template_writes_text_and_html_from_one_template(app, session, make_account):
    user = make_account("ana@example.com")
    with app.test_request_context():
        message = queue_template(
            session,
            to=user.email,
            subject="Reset your password",
            template="reset",
            site="Clinic",
            user=user,
            link="https://clinic.example/reset/abc",
        )
    session.commit()
    assert message.body_text.endswith("\n")
    assert "https://clinic.example/reset/abc" in message.body_text
    assert '<a href="https://clinic.example/reset/abc">' in message.body_html
    assert "<title>Reset your password</title>" in message.body_html

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
    link = "https://x.example/a?b=1&c=2"
    [first, second] = html_paragraphs(f"Hi <b>Pat</b> & co\n\nGo to {link}.", {link})
    assert first == "Hi &lt;b&gt;Pat&lt;/b&gt; &amp; co"
    assert second == (
        'Go to <a href="https://x.example/a?b=1&amp;c=2">https://x.example/a?b=1&amp;c=2</a>.'
    )


def test_html_part_links_only_the_urls_it_is_given():
    """A URL someone typed stays text, even one that starts like ours."""
    ours = "https://clinic.example/cancel/abc"
    text = (
        f"Hello Eve visit https://evil.example/login now,\n"
        f"{ours}\n{ours}.evil.example/x and {ours}/../../evil\n"
        'https://evil.example/"><script>x</script>'
    )
    [paragraph] = html_paragraphs(text, {ours})
    assert paragraph.count("<a ") == 1
    assert f'<a href="{ours}">{ours}</a><br>' in paragraph
    assert "https://evil.example/login" in paragraph and 'href="https://evil' not in paragraph
    assert "&lt;script&gt;" in paragraph and "<script>" not in paragraph
    assert html_paragraphs("See https://x.example/a") == ["See https://x.example/a"]


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

"""Queue an email in the outbox, inside the caller's transaction.

Nothing is sent here: the message is committed together with the change that caused it
(a transactional outbox), and :mod:`referral.outbox` delivers it after the commit, off the
request, so a mail server that is down or slow loses nothing and stalls no page.
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, render_template
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from referral.models import OutboxMessage

URL = re.compile(r"https?://[^\s<>\"]+")
#: ``session.info`` key: the messages queued in this session; the request's end wakes the
#: background sender for them (:mod:`referral.sender`)
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
    # remembered so the request's end can wake the background sender
    session.info.setdefault(QUEUED, []).append(message)
    return message


def queue_template(
    session: Session,
    *,
    to: str,
    subject: str,
    template: str,
    referral_id: str | None = None,
    **context: Any,
) -> OutboxMessage:
    """Render ``referral/email/<template>.txt`` and queue it with an HTML part made from
    the same text (the one way every email here is written: accounts, moderation and
    referrals). ``site_name`` is in the context of every template."""
    context.setdefault("site_name", current_app.config["REFERRAL_SITE_NAME"])
    text = render_template(f"referral/email/{template}.txt", **context).strip() + "\n"
    html = render_template(
        "referral/email/layout.html", subject=subject, paragraphs=html_paragraphs(text)
    )
    return queue_email(
        session, to=to, subject=subject, text=text, html=html, referral_id=referral_id
    )


def html_paragraphs(text: str) -> list[Markup]:
    """The plain text as escaped HTML paragraphs, with its links made clickable."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        escaped = str(escape(block))
        linked = URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append(Markup(linked.replace("\n", "<br>\n")))
    return paragraphs

"""Queue an email in the outbox, inside the caller's transaction.

Nothing is sent here: the message is committed together with the change that caused it
(a transactional outbox), and :mod:`referral.outbox` delivers it after the commit, off the
request, so a mail server that is down or slow loses nothing and stalls no page.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Collection
from typing import Any

from flask import current_app, render_template
from limits import parse
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from referral.models import OutboxMessage

URL = re.compile(r"https?://[^\s<>\"]+")
#: punctuation that ends a sentence after a URL rather than belonging to it
_TRAILING = ".,;:!?)]'"
#: ``session.info`` key: the messages queued in this session; the request's end wakes the
#: background sender for them (:mod:`referral.sender`)
QUEUED = "referral_queued_messages"

log = logging.getLogger(__name__)


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


def recipient_allowed(to: str, template: str) -> bool:
    """Count one email to ``to`` against ``REFERRAL_RECIPIENT_DAILY_LIMIT``; ``False`` (and
    a log line naming the template, never the address) once the address is past it.

    For the emails anyone can make the site send to an address they type: the caller
    skips queueing when this says no and answers the visitor as usual, so the answer tells
    nothing. The count lives in the app limiter's storage (``REFERRAL_RATELIMIT_STORAGE_URL``),
    shared by every worker when that is Redis. Its key is an HMAC-SHA256 of the lower-cased
    address under the app's ``SECRET_KEY``: the storage holds no address, nor a plain hash
    someone could look an address up by.
    """
    limit = current_app.config["REFERRAL_RECIPIENT_DAILY_LIMIT"]
    limiter = current_app.extensions["referral"].limiter
    if not limit or not limiter.enabled:
        return True
    secret = current_app.secret_key or b""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, to.strip().lower().encode(), hashlib.sha256).hexdigest()
    prefix = current_app.config["REFERRAL_RATELIMIT_KEY_PREFIX"]
    if limiter.limiter.hit(parse(limit), prefix, "recipient", digest):
        return True
    log.warning(
        "Not queued: a %r email, its recipient has had %s (REFERRAL_RECIPIENT_DAILY_LIMIT).",
        template,
        limit,
    )
    return False


def queue_template(
    session: Session,
    *,
    to: str,
    subject: str,
    template: str,
    referral_id: str | None = None,
    **context: Any,
) -> OutboxMessage:
    """Render ``referral/email/<template>.txt`` (:func:`render_email`) and queue it (the
    one way every email here is written: accounts, moderation and referrals)."""
    text, html = render_email(subject, template, **context)
    return queue_email(
        session, to=to, subject=subject, text=text, html=html, referral_id=referral_id
    )


def render_email(subject: str, template: str, **context: Any) -> tuple[str, str]:
    """The plain text of ``referral/email/<template>.txt`` and an HTML part made from the
    same text. ``site_name`` is in the context of every template.

    Only the links this code makes become links in the HTML part: the context values named
    ``link`` or ``*_url`` (``cancel_url``, ``inbox_url``, ...). Everything else, above all
    what a visitor typed (a name, a reason), is escaped and never linked.
    """
    context.setdefault("site_name", current_app.config["REFERRAL_SITE_NAME"])
    text = render_template(f"referral/email/{template}.txt", **context).strip() + "\n"
    links = {
        value
        for key, value in context.items()
        if isinstance(value, str) and (key == "link" or key.endswith("_url"))
    }
    html = render_template(
        "referral/email/layout.html", subject=subject, paragraphs=html_paragraphs(text, links)
    )
    return text, html


def html_paragraphs(text: str, links: Collection[str] = ()) -> list[Markup]:
    """The plain text as escaped HTML paragraphs in which exactly the URLs in ``links``
    are clickable; any other URL in the text stays plain, escaped text."""
    trusted = set(links)
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        html = Markup()
        end = 0
        for match in URL.finditer(block):
            url = match.group(0).rstrip(_TRAILING)
            html += escape(block[end : match.start()])
            html += Markup('<a href="{0}">{0}</a>').format(url) if url in trusted else escape(url)
            end = match.start() + len(url)
        html += escape(block[end:])
        paragraphs.append(Markup(str(html).replace("\n", "<br>\n")))
    return paragraphs

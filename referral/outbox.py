"""Deliver the outbox: emails by SMTP, webhooks by a signed HTTP POST, with retries.

Messages are committed with the change that caused them (see :mod:`referral.mail`);
this module sends them afterwards. A worker first *claims* due messages in one short
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a single conditional ``UPDATE``
on SQLite), which counts the attempt and leases the row for :data:`CLAIM_LEASE`, so
concurrent workers never send one message twice. A failure records the error and the
next attempt, backing off exponentially, until ``REFERRAL_OUTBOX_MAX_ATTEMPTS``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from referral.mail import QUEUED
from referral.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

#: A claimed message is not offered to another worker for this long; a worker that
#: dies mid-send therefore delays its messages, it does not lose them.
CLAIM_LEASE = timedelta(minutes=5)
#: Longest wait between two attempts.
MAX_BACKOFF = timedelta(days=1)
SIGNATURE_HEADER = "X-Referral-Signature"


@dataclass
class DeliveryReport:
    """What one pass did: messages sent, and messages that failed (and will be retried
    unless ``given_up``)."""

    sent: int = 0
    failed: int = 0
    given_up: int = 0


def deliver_due(
    session: Session,
    config: Mapping[str, Any],
    *,
    limit: int | None = None,
    now: datetime | None = None,
    referral_id: str | None = None,
    ids: Sequence[int] | None = None,
) -> DeliveryReport:
    """Claim up to ``limit`` due messages (only one referral's with ``referral_id``, only
    these with ``ids``), send them, and record each outcome in its own commit."""
    now = now or utcnow()
    limit = limit or config["REFERRAL_OUTBOX_BATCH_SIZE"]
    ids = claim(session, config, limit=limit, now=now, referral_id=referral_id, ids=ids)
    report = DeliveryReport()
    if not ids:
        return report
    messages = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .order_by(OutboxMessage.id)
        .execution_options(populate_existing=True)
    ).all()
    mailer = SMTPMailer(config)
    try:
        for message in messages:
            try:
                if message.kind == "webhook":
                    post_webhook(message, config)
                else:
                    mailer.send(build_email(message, config))
            except Exception as exc:  # any failure is recorded and retried, never raised
                log.warning("outbox message %s failed: %s", message.id, exc)
                _record_failure(message, exc, config)
                report.failed += 1
                if message.attempts >= config["REFERRAL_OUTBOX_MAX_ATTEMPTS"]:
                    report.given_up += 1
            else:
                message.sent_at = utcnow()
                message.last_error = None
                report.sent += 1
            session.commit()
    finally:
        mailer.close()
    return report


def claim(
    session: Session,
    config: Mapping[str, Any],
    *,
    limit: int,
    now: datetime,
    referral_id: str | None = None,
    ids: Sequence[int] | None = None,
) -> list[int]:
    """Mark due messages as taken by this worker and commit; returns their ids."""
    due = (
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.next_attempt_at <= now,
        OutboxMessage.attempts < config["REFERRAL_OUTBOX_MAX_ATTEMPTS"],
    )
    if referral_id is not None:
        due += (OutboxMessage.referral_id == referral_id,)
    if ids is not None:
        due += (OutboxMessage.id.in_(ids),)
    candidates = select(OutboxMessage.id).where(*due).order_by(OutboxMessage.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # rows another worker is claiming right now are skipped, not waited for
        candidates = candidates.with_for_update(skip_locked=True)
    # One statement: on SQLite it runs under the write lock, so the conditions are
    # re-checked by whoever comes second and a row is claimed once.
    ids = session.scalars(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(candidates), *due)
        .values(attempts=OutboxMessage.attempts + 1, next_attempt_at=now + CLAIM_LEASE)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    session.commit()
    return sorted(ids)


def backoff(attempts: int, config: Mapping[str, Any]) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: base, 2x base, 4x base, ..."""
    base = float(config["REFERRAL_OUTBOX_BACKOFF_SECONDS"])
    seconds = base * 2 ** max(attempts - 1, 0)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def _record_failure(message: OutboxMessage, exc: Exception, config: Mapping[str, Any]) -> None:
    message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    message.next_attempt_at = utcnow() + backoff(message.attempts, config)


def build_email(message: OutboxMessage, config: Mapping[str, Any]) -> EmailMessage:
    """The MIME message for an outbox row: plain text, plus HTML when there is some."""
    email = EmailMessage()
    email["From"] = config["REFERRAL_MAIL_FROM"]
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = make_msgid(idstring=f"referral-outbox-{message.id}")
    # lets a receiving system (and the tests) recognise a repeated delivery
    email["X-Referral-Outbox-Id"] = str(message.id)
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


class SMTPMailer:
    """One SMTP connection, opened on first use and reused for a pass."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None
        #: why the server could not be reached: the rest of the pass fails fast with it
        #: instead of waiting ``REFERRAL_SMTP_TIMEOUT`` again for every message
        self._unreachable: Exception | None = None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        host, port = c["REFERRAL_SMTP_HOST"], c["REFERRAL_SMTP_PORT"]
        timeout = c["REFERRAL_SMTP_TIMEOUT"]
        if c["REFERRAL_SMTP_USE_SSL"]:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
            if c["REFERRAL_SMTP_USE_TLS"]:
                smtp.starttls(context=ssl.create_default_context())
        if c["REFERRAL_SMTP_USERNAME"]:
            smtp.login(c["REFERRAL_SMTP_USERNAME"], c["REFERRAL_SMTP_PASSWORD"] or "")
        return smtp

    def send(self, email: EmailMessage) -> None:
        if self._unreachable is not None:
            raise self._unreachable
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except (OSError, smtplib.SMTPException) as exc:
                self._unreachable = exc
                raise
        try:
            self._smtp.send_message(email)
        except Exception:
            # the connection's state is unknown now: start afresh for the next message
            self.close()
            raise

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def queue_webhook(
    session: Session,
    config: Mapping[str, Any],
    event: str,
    payload: dict[str, Any],
    *,
    referral_id: str | None = None,
) -> OutboxMessage | None:
    """Queue a webhook POST when ``REFERRAL_WEBHOOK_URL`` is set. The payload must hold
    ids and statuses only: it leaves the system unencrypted by us."""
    url = config["REFERRAL_WEBHOOK_URL"]
    if not url:
        return None
    body = json.dumps({"event": event, **payload}, sort_keys=True, default=str)
    message = OutboxMessage(
        kind="webhook", recipient=url, subject=event, body_text=body, referral_id=referral_id
    )
    session.add(message)
    session.info.setdefault(QUEUED, []).append(message)
    return message


def sign(body: bytes, secret: str) -> str:
    """The signature header value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(message: OutboxMessage, config: Mapping[str, Any]) -> None:
    """POST the stored JSON; anything but a 2xx answer raises and is retried."""
    body = message.body_text.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "referral-webhook",
        "X-Referral-Event": message.subject,
        "X-Referral-Delivery": str(message.id),
    }
    secret = config["REFERRAL_WEBHOOK_SECRET"]
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    request = urllib.request.Request(message.recipient, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=config["REFERRAL_WEBHOOK_TIMEOUT"]) as answer:
        if not 200 <= answer.status < 300:
            raise RuntimeError(f"webhook answered {answer.status}")


def deliver_queued(session: Session, config: Mapping[str, Any]) -> DeliveryReport | None:
    """Try, once, the messages this session queued and committed (best effort, in the
    request): account, moderation and referral emails and webhooks alike leave right after
    the change that caused them, and whatever fails waits for the worker."""
    queued = session.info.pop(QUEUED, [])
    ids = [m.id for m in queued if m.id is not None]
    if not ids or not config["REFERRAL_SEND_AFTER_COMMIT"]:
        return None
    try:
        return deliver_due(session, config, ids=ids)
    except Exception:  # the change is committed; a worker will deliver later
        log.exception("delivery after commit failed; the outbox keeps the messages")
        session.rollback()
        return None


def run_worker(
    deliver: Callable[[], DeliveryReport],
    *,
    interval: float,
    passes: int | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Call ``deliver`` every ``interval`` seconds (``passes`` times, or until stopped)."""
    done = 0
    while passes is None or done < passes:
        try:
            report = deliver()
        except Exception as exc:  # e.g. the database restarting: a worker keeps going
            log.exception("outbox pass failed")
            echo(f"pass failed: {type(exc).__name__}: {exc}")
        else:
            if report.sent or report.failed:
                echo(f"sent {report.sent}, failed {report.failed}, given up {report.given_up}")
        done += 1
        if passes is None or done < passes:
            time.sleep(interval)
    return done

"""Deliver the outbox: emails by SMTP, webhooks by a signed HTTP POST, with retries.

Messages are committed with the change that caused them (see :mod:`referral.mail`);
this module sends them afterwards, never inside a request: the ``send-outbox`` worker or
the web process's background sender (:mod:`referral.sender`) calls :func:`deliver_due`.
A worker first *claims* due messages in one short transaction (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, a single conditional ``UPDATE`` on SQLite), which counts the attempt and
leases the row for :data:`CLAIM_LEASE`, so concurrent workers never send one message
twice. A failure records the error and the next attempt, backing off exponentially, until
``REFERRAL_OUTBOX_MAX_ATTEMPTS``; a permanent refusal (an SMTP 5xx for the recipient or
the content) fails the message at once. Logs and stored errors name outbox ids, never a
recipient's address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import smtplib
import ssl
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, or_, select, update
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
    unless ``given_up``: out of attempts, or refused for good)."""

    sent: int = 0
    failed: int = 0
    given_up: int = 0

    def __str__(self) -> str:
        return f"sent {self.sent}, failed {self.failed}, given up {self.given_up}"


@dataclass
class Waiting:
    """The messages not yet delivered that a later attempt will try."""

    count: int
    next_attempt_at: datetime | None

    def describe(self, now: datetime | None = None) -> str:
        if not self.count:
            return "nothing waiting"
        when = self.next_attempt_at
        if when is None or when <= (now or utcnow()):
            return f"{self.count} waiting, due now"
        return f"{self.count} waiting, next try at {when:%Y-%m-%d %H:%M:%S} UTC"


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
    these with ``ids``), send them, and record each outcome in its own commit.

    When a kind of message (email, webhook) gets through after earlier failures, the
    messages of that kind waiting out their backoff are tried at once in the same pass:
    the server is back, so there is no reason to make them wait.
    """
    now = now or utcnow()
    limit = limit or config["REFERRAL_OUTBOX_BATCH_SIZE"]
    report = DeliveryReport()
    retried: set[str] = set()
    while True:
        claimed = claim(session, config, limit=limit, now=now, referral_id=referral_id, ids=ids)
        if not claimed:
            return report
        delivered = _deliver(session, config, claimed, report)
        # a kind that got through: its waiting messages need not wait out their backoff
        recovered = delivered - retried
        if ids is not None or not recovered or not retry_now(session, kinds=recovered, now=now):
            return report
        retried |= recovered


def _deliver(
    session: Session, config: Mapping[str, Any], ids: list[int], report: DeliveryReport
) -> set[str]:
    """Send claimed messages; returns the kinds of which at least one got through."""
    messages = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .order_by(OutboxMessage.id)
        .execution_options(populate_existing=True)
    ).all()
    delivered: set[str] = set()
    mailer = SMTPMailer(config)
    try:
        for message in messages:
            try:
                if message.kind == "webhook":
                    post_webhook(message, config)
                else:
                    mailer.send(build_email(message, config))
            except Exception as exc:  # any failure is recorded and retried, never raised
                permanent = is_permanent(exc)
                _record_failure(message, exc, config, permanent=permanent)
                report.failed += 1
                if message.failed_at is not None:
                    report.given_up += 1
                log.warning(
                    "outbox message %s failed%s: %s",
                    message.id,
                    " for good" if permanent else "",
                    message.last_error,
                )
            else:
                message.sent_at = utcnow()
                message.last_error = None
                delivered.add(message.kind)
                report.sent += 1
            message.claimed_at = None
            session.commit()
    finally:
        mailer.close()
    return delivered


def retry_now(
    session: Session, *, kinds: set[str] | None = None, now: datetime | None = None
) -> int:
    """Make every waiting message due now (``postqueue -f``); returns how many. Messages a
    worker holds right now, delivered ones and failed ones are left alone."""
    now = now or utcnow()
    waiting = (
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed_at.is_(None),
        OutboxMessage.next_attempt_at > now,
        or_(OutboxMessage.claimed_at.is_(None), OutboxMessage.claimed_at < now - CLAIM_LEASE),
    )
    if kinds is not None:
        waiting += (OutboxMessage.kind.in_(sorted(kinds)),)
    count = session.execute(
        update(OutboxMessage)
        .where(*waiting)
        .values(next_attempt_at=now, claimed_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return count


def waiting(session: Session) -> Waiting:
    """How many messages wait for a later attempt, and when the first is due."""
    count, first = session.execute(
        select(func.count(), func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None)
        )
    ).one()
    return Waiting(count, first)


def failed(session: Session, limit: int = 200) -> list[OutboxMessage]:
    """Messages no attempt will deliver (refused for good, or out of attempts), newest
    first: what an admin needs to see."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.failed_at.is_not(None))
            .order_by(OutboxMessage.failed_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
        )
    )


def purge(session: Session, older_than: timedelta, *, now: datetime | None = None) -> int:
    """Delete delivered and failed messages older than ``older_than`` (their text holds
    reset and confirmation links); returns how many. Waiting ones stay."""
    cutoff = (now or utcnow()) - older_than
    count = session.execute(
        delete(OutboxMessage)
        .where(
            or_(OutboxMessage.sent_at < cutoff, OutboxMessage.failed_at < cutoff),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return count


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
        OutboxMessage.failed_at.is_(None),
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
        .values(
            attempts=OutboxMessage.attempts + 1,
            next_attempt_at=now + CLAIM_LEASE,
            claimed_at=now,
        )
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    if ids:
        # fixed before the first attempt, so a retry after a crash mid-send repeats it
        domain = mail_domain(config)
        for message_id in ids:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.message_id.is_(None))
                .values(
                    message_id=make_msgid(idstring=f"referral-outbox-{message_id}", domain=domain)
                )
                .execution_options(synchronize_session=False)
            )
    session.commit()
    return sorted(ids)


def sender(config: Mapping[str, Any]) -> str:
    """``REFERRAL_MAIL_FROM``, or the site's name at ``referrals@`` its public host."""
    if config["REFERRAL_MAIL_FROM"]:
        return str(config["REFERRAL_MAIL_FROM"])
    host = urlsplit(config["REFERRAL_PUBLIC_URL"] or "").hostname or "localhost"
    return formataddr((str(config["REFERRAL_SITE_NAME"]), f"referrals@{host}"))


def mail_domain(config: Mapping[str, Any]) -> str:
    """The domain of the sender's address, for Message-IDs (no DNS look-up)."""
    address = parseaddr(sender(config))[1]
    return address.rpartition("@")[2] or "localhost"


def backoff(attempts: int, config: Mapping[str, Any]) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: base, 2x base, 4x base, ..."""
    base = float(config["REFERRAL_OUTBOX_BACKOFF_SECONDS"])
    seconds = base * 2 ** max(attempts - 1, 0)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def _record_failure(
    message: OutboxMessage, exc: Exception, config: Mapping[str, Any], *, permanent: bool
) -> None:
    message.last_error = describe_error(exc)
    if permanent or message.attempts >= config["REFERRAL_OUTBOX_MAX_ATTEMPTS"]:
        message.failed_at = utcnow()
    else:
        message.next_attempt_at = utcnow() + backoff(message.attempts, config)


def is_permanent(exc: Exception) -> bool:
    """True for an SMTP 5xx refusal of the recipient or of the message itself: trying
    again cannot help. Connection, login and sender problems are the site's to fix, so
    those are retried."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


_ADDRESS = re.compile(r"[^\s<>()\[\]'\",;:]+@[^\s<>()\[\]'\",;:]+")


def describe_error(exc: Exception) -> str:
    """What went wrong, for the log and the admin page: the server's answer, with any
    email address in it replaced by ``[address]`` (logs carry no personal data)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = "; ".join(f"{code} {_text(reply)}" for code, reply in exc.recipients.values())
        text = f"recipient refused: {answers}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return _ADDRESS.sub("[address]", text)[:2000]


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def build_email(message: OutboxMessage, config: Mapping[str, Any]) -> EmailMessage:
    """The MIME message for an outbox row: plain text, plus HTML when there is some."""
    email = EmailMessage()
    email["From"] = sender(config)
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message.message_id or make_msgid(
        idstring=f"referral-outbox-{message.id}", domain=mail_domain(config)
    )
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
                echo(str(report))
        done += 1
        if passes is None or done < passes:
            time.sleep(interval)
    return done

"""Telling admins what waits for them: a daily digest, and at once when configured.

``flask referral digest`` (run it from cron, or as often as you like: it sends at most one
digest a day, a day in ``REFERRAL_TIMEZONE``) emails every admin account how many listings
wait to be checked and how many problem reports are open, through the outbox. The audit log
holds the day's ``digest`` row, written in the same commit as the emails, which is what
makes a second run that day send nothing. With ``REFERRAL_NOTIFY_ADMINS_AT_ONCE`` admins
are also emailed as each listing is submitted or each report is filed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from referral import audit, signals, wording
from referral.db import get_session
from referral.mail import queue_template
from referral.models import AuditEvent, Practitioner, ProblemReport, User
from referral.urls import external_url


@dataclass
class Waiting:
    """What waits for an admin."""

    pending: int
    reports: int

    @property
    def anything(self) -> bool:
        return bool(self.pending or self.reports)


def waiting(session: Session) -> Waiting:
    pending = session.scalar(
        select(func.count()).select_from(Practitioner).where(Practitioner.status == "pending")
    )
    reports = session.scalar(
        select(func.count()).select_from(ProblemReport).where(ProblemReport.status == "open")
    )
    return Waiting(pending or 0, reports or 0)


def admin_emails(session: Session) -> list[str]:
    return list(session.scalars(select(User.email).where(User.is_admin).order_by(User.email)))


def local_today() -> date:
    return datetime.now(UTC).astimezone(zone_of_site()).date()


def zone_of_site() -> Any:
    return wording.zone(current_app.config["REFERRAL_TIMEZONE"])


def send_digest(session: Session, today: date | None = None) -> int:
    """Queue today's digest to every admin unless it went already today or nothing waits;
    returns how many emails were queued. Commits."""
    day = (today or local_today()).isoformat()
    already = session.scalar(
        select(AuditEvent.id).where(
            AuditEvent.action == "digest",
            AuditEvent.object_type == "digest",
            AuditEvent.object_id == day,
        )
    )
    now = waiting(session)
    if already is not None or not now.anything:
        return 0
    recipients = admin_emails(session)
    for to in recipients:
        _queue(session, to, "What waits for you today", now)
    audit.record(
        session,
        "digest",
        "digest",
        day,
        actor=audit.CLI,
        note=f"{len(recipients)} admins: {now.pending} listings, {now.reports} reports",
        commit=False,
    )
    session.commit()
    return len(recipients)


def _queue(session: Session, to: str, subject: str, now: Waiting, event: str = "") -> None:
    site = current_app.config["REFERRAL_SITE_NAME"]
    queue_template(
        session,
        to=to,
        subject=f"{subject} · {site}",
        template="admin_digest",
        site=site,
        event=event,
        waiting=now,
        queue_url=external_url("referral.admin_queue"),
    )


def notify_admins_at_once(session: Session, event: str) -> int:
    """With ``REFERRAL_NOTIFY_ADMINS_AT_ONCE``, email every admin that ``event`` happened
    and what waits now; commits. Returns how many were queued."""
    if not current_app.config["REFERRAL_NOTIFY_ADMINS_AT_ONCE"]:
        return 0
    now = waiting(session)
    recipients = admin_emails(session)
    for to in recipients:
        _queue(session, to, "Something to check", now, event)
    session.commit()
    return len(recipients)


def _on_submitted(sender: Flask, *, practitioner: Practitioner, **_: Any) -> None:
    notify_admins_at_once(get_session(), "A listing was submitted for checking.")


def _on_reported(sender: Flask, **_: Any) -> None:
    notify_admins_at_once(get_session(), "A visitor reported wrong details on a listing.")


signals.listing_submitted.connect(_on_submitted, weak=False)
signals.problem_reported.connect(_on_reported, weak=False)

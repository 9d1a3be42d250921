"""Visitors' "these details are wrong" reports: filed, told to the practitioner, handled.

A report lands in the moderation queue (its reports section) and the listing's owner is
emailed through the outbox, in the same commit, with what kind of detail was reported and
a link to their listing: never the reporter's note or address (the note may name people;
it is for the admins). An admin resolves or dismisses it, and the audit log records both
(:data:`referral.signals.problem_reported`, :data:`referral.signals.problem_handled`).
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from referral import audit
from referral.accounts import normalise_email
from referral.errors import InvalidInput
from referral.mail import queue_template
from referral.models import REPORT_KINDS, Practitioner, ProblemReport, utcnow
from referral.signals import problem_handled, problem_reported
from referral.urls import external_url

#: what each kind of report says, as the visitor picks it and the practitioner reads it
KIND_WORDS = {
    "address": "The address is wrong",
    "phone": "The phone number is wrong",
    "hours": "The opening hours are wrong",
    "closed": "The practice has closed",
    "not_qualified": "The practitioner is not qualified for what is listed",
    "other": "Something else is wrong",
}
assert set(KIND_WORDS) == set(REPORT_KINDS)
NOTE_MAX_LENGTH = 1000
#: what an admin may do with an open report
HANDLING = {"resolve": "resolved", "dismiss": "dismissed"}


def file_report(
    session: Session,
    practitioner: Practitioner,
    kind: str,
    note: str = "",
    reporter_email: str | None = None,
) -> ProblemReport:
    """Store a report on a live listing and queue the practitioner's notice; commits.

    :class:`InvalidInput` (nothing stored) for an unknown kind, a note too long, "other"
    without a note, or an email address that is not one."""
    if kind not in KIND_WORDS:
        raise InvalidInput("invalid_kind", "Please choose what is wrong.")
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise InvalidInput(
            "note_too_long", f"Please keep the note under {NOTE_MAX_LENGTH} characters."
        )
    if kind == "other" and not note:
        raise InvalidInput("missing_note", "Please say in the note what is wrong.")
    email = normalise_email(reporter_email) if (reporter_email or "").strip() else None
    report = ProblemReport(
        practitioner_id=practitioner.id, kind=kind, note=note, reporter_email=email
    )
    session.add(report)
    _tell_practitioner(session, practitioner, kind)
    session.commit()
    problem_reported.send(current_app._get_current_object(), report=report)
    return report


def _tell_practitioner(session: Session, practitioner: Practitioner, kind: str) -> None:
    from referral.moderation import recipient

    to = recipient(practitioner)
    if not to:
        return
    site = current_app.config["REFERRAL_SITE_NAME"]
    queue_template(
        session,
        to=to,
        subject=f"Someone reported a problem with your listing · {site}",
        template="problem_reported",
        site=site,
        practitioner=practitioner,
        what=KIND_WORDS[kind],
        link=external_url("referral.practitioner", practitioner_id=practitioner.id),
        edit_url=external_url("referral.listing"),
    )


def open_reports(session: Session, limit: int = 50) -> list[ProblemReport]:
    """Reports waiting for an admin, oldest first."""
    return list(
        session.scalars(
            select(ProblemReport)
            .where(ProblemReport.status == "open")
            .options(selectinload(ProblemReport.practitioner))
            .order_by(ProblemReport.created_at, ProblemReport.id)
            .limit(limit)
        )
    )


def for_listing(session: Session, practitioner_id: int) -> list[ProblemReport]:
    """Every report on one listing, newest first."""
    return list(
        session.scalars(
            select(ProblemReport)
            .where(ProblemReport.practitioner_id == practitioner_id)
            .order_by(ProblemReport.created_at.desc(), ProblemReport.id.desc())
        )
    )


def handle(session: Session, report: ProblemReport, action: str, admin: str) -> None:
    """Resolve (the details were put right) or dismiss (nothing wrong) an open report."""
    if action not in HANDLING:
        raise InvalidInput("invalid_action", "Choose resolve or dismiss.", 404)
    if report.status != "open":
        raise InvalidInput("invalid_transition", f"This report is already {report.status}.", 409)
    fields = ("status", "handled_by", "handled_at")
    before = audit.snapshot(report, fields)
    report.status = HANDLING[action]
    report.handled_by = admin
    report.handled_at = utcnow()
    session.commit()
    problem_handled.send(
        current_app._get_current_object(),
        report=report,
        action=action,
        actor=admin,
        changes=audit.diff(before, audit.snapshot(report, fields)),
    )

""" "Report wrong details": the visitor's form on a listing, and the admin's handling.

The rules are in :mod:`referral.reports`; the form is CSRF-protected and its submissions
are rate-limited per client address (``REFERRAL_REPORT_RATE_LIMIT``; a form sent back for
corrections does not count).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_limiter import Limiter
from flask_login import current_user

from referral import reports
from referral.auth import admin_required
from referral.db import get_session
from referral.errors import InvalidInput
from referral.forms import ActionForm, ReportForm
from referral.listings import public_listing
from referral.models import ProblemReport
from referral.views.referrals import csrf_failed_page, message_page


def register(bp: Blueprint, limiter: Limiter | None = None) -> None:
    view = report_problem
    if limiter is not None:
        view = limiter.limit(
            lambda: current_app.config["REFERRAL_REPORT_RATE_LIMIT"],
            methods=["POST"],
            # only a report that was stored counts (a form sent back is a 400)
            deduct_when=lambda response: response.status_code == 200,
            error_message=_too_many_reports,
        )(report_problem)
    bp.add_url_rule(
        "/practitioners/<rowid:practitioner_id>/report",
        "report_problem",
        view,
        methods=["GET", "POST"],
    )
    for action in reports.HANDLING:
        bp.add_url_rule(
            f"/admin/reports/<rowid:report_id>/{action}",
            f"admin_report_{action}",
            admin_required(handle),
            methods=["POST"],
            defaults={"action": action},
        )


def _too_many_reports() -> str:
    return (
        "You have sent several reports from this connection in a short time (at most "
        f"{current_app.config['REFERRAL_REPORT_RATE_LIMIT']}), so this one was not sent. "
        "Please try again later."
    )


def report_problem(practitioner_id: int) -> Any:
    session = get_session()
    practitioner = public_listing(session, practitioner_id)
    if practitioner is None:
        abort(404)
    form = ReportForm()
    status = 200
    if form.is_submitted():
        valid = form.validate()
        if form.csrf_failed():
            return csrf_failed_page()
        if valid:
            try:
                reports.file_report(
                    session, practitioner, form.kind.data, form.note.data, form.email.data
                )
            except InvalidInput as exc:
                session.rollback()
                field = {"missing_note": form.note, "note_too_long": form.note}.get(
                    exc.code, form.email if exc.code == "invalid_email" else form.kind
                )
                field.errors = [*field.errors, exc.message]
            else:
                return message_page(
                    "Thank you",
                    "Your report has been sent to the directory's team, who will check the "
                    "listing, and the practitioner has been told which details may be wrong.",
                    200,
                )
        status = 400
    return render_template(
        "referral/report_problem.html", practitioner=practitioner, form=form
    ), status


def handle(report_id: int, action: str) -> Any:
    session = get_session()
    report = session.get(ProblemReport, report_id)
    if report is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        return csrf_failed_page()
    admin = getattr(current_user, "email", None) or str(current_user.get_id())
    try:
        reports.handle(session, report, action, admin)
    except InvalidInput as exc:
        session.rollback()
        flash(exc.message, "error")
    else:
        flash(f"Report on {report.practitioner.name}: {report.status}.")
    return redirect(url_for("referral.admin_queue"))

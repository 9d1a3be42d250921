"""Moderation for admins: the queue, one listing with its credentials, and the decisions.

The rules (which state may follow which, who is emailed) are in :mod:`referral.moderation`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import selectinload

from referral import funnel, moderation, outbox, reports
from referral.auth import admin_required
from referral.db import get_session
from referral.errors import InvalidInput
from referral.forms import ActionForm, ReasonForm
from referral.models import LISTING_STATUSES, Practitioner
from referral.paging import page_number


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/admin/listings", "admin_queue", admin_required(queue))
    bp.add_url_rule("/admin/outbox", "admin_outbox", admin_required(failed_messages))
    bp.add_url_rule("/admin/funnel", "admin_funnel", admin_required(referral_funnel))
    bp.add_url_rule(
        "/admin/listings/<rowid:practitioner_id>", "admin_listing", admin_required(detail)
    )
    for action in moderation.ADMIN_ACTIONS:
        bp.add_url_rule(
            f"/admin/listings/<rowid:practitioner_id>/{action}",
            f"admin_{action}",
            admin_required(decide),
            methods=["POST"],
            defaults={"action": action},
        )


#: listings on one page of the queue
QUEUE_PAGE_SIZE = 25


def queue() -> Any:
    """The listings in one status, a page at a time, searched by name or postcode; above
    them, the open problem reports."""
    status = request.args.get("status", "pending")
    if status not in LISTING_STATUSES:
        status = "pending"
    search = request.args.get("q", "").strip()[:100]
    session = get_session()
    return render_template(
        "referral/admin/queue.html",
        listings=moderation.listings(
            session, status, search, page_number(request.args.get("page")), QUEUE_PAGE_SIZE
        ),
        status=status,
        search=search,
        statuses=LISTING_STATUSES,
        open_reports=reports.open_reports(session),
        report_words=reports.KIND_WORDS,
        post_form=ActionForm(),
    )


def failed_messages() -> Any:
    """Emails and webhooks that no attempt will deliver, with the server's reason."""
    return render_template(
        "referral/admin/outbox.html",
        messages=outbox.failed(get_session()),
        waiting=outbox.waiting(get_session()),
    )


def referral_funnel() -> Any:
    """How referrals fare (counts only): :mod:`referral.funnel`."""
    session = get_session()
    return render_template(
        "referral/admin/funnel.html",
        reports=funnel.reports(session),
        stages=funnel.STAGES,
        duration_words=funnel.duration_words,
        chart_bars=funnel.chart_bars,
    )


def _load(practitioner_id: int) -> Practitioner:
    found = get_session().get(
        Practitioner,
        practitioner_id,
        options=[
            selectinload(Practitioner.locations),
            selectinload(Practitioner.funds),
            selectinload(Practitioner.modalities),
            selectinload(Practitioner.conditions),
        ],
    )
    if found is None:
        abort(404)
    return found


def detail(practitioner_id: int, reason_form: ReasonForm | None = None, status: int = 200) -> Any:
    practitioner = _load(practitioner_id)
    return render_template(
        "referral/admin/listing.html",
        practitioner=practitioner,
        post_form=ActionForm(),
        reason_form=reason_form or ReasonForm(formdata=None),
        failed_action=request.view_args.get("action") if reason_form else None,
        actions=moderation.actions_for(practitioner),
        reports=reports.for_listing(get_session(), practitioner.id),
        report_words=reports.KIND_WORDS,
    ), status


def decide(practitioner_id: int, action: str) -> Any:
    session = get_session()
    practitioner = _load(practitioner_id)
    admin = getattr(current_user, "email", None) or str(current_user.get_id())
    needs_reason = action in ("reject", "suspend")
    form = ReasonForm() if needs_reason else ActionForm()
    if not form.validate_on_submit():
        return detail(practitioner_id, form if needs_reason else None, 400)
    try:
        if not needs_reason:
            getattr(moderation, action)(session, practitioner, admin)
        else:
            getattr(moderation, action)(session, practitioner, admin, form.reason.data)
    except InvalidInput as exc:
        session.rollback()
        flash(exc.message, "error")
        return detail(practitioner_id, None, exc.status)
    flash(f"{practitioner.name}: {practitioner.status}.")
    return redirect(url_for("referral.admin_queue"))

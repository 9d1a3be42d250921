"""The practitioner's inbox: referrals received (by status), one referral, its answer
buttons and export, and the referrals they sent to others.

Who may read or answer is decided by :func:`referral.referrals.can_read` and
:func:`referral.referrals.can_answer`; a referral the visitor may not read is a 404, so
its existence is not revealed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, url_for
from flask_login import current_user

from referral.auth import current_practitioner, is_admin, practitioner_required
from referral.db import get_session
from referral.errors import InvalidInput
from referral.forms import ActionForm, DeclineForm
from referral.headers import private
from referral.models import Practitioner, ReferralRequest
from referral.referrals import (
    STATUSES,
    admin_actor,
    can_answer,
    can_read,
    export,
    inbox,
    practitioner_actor,
    record_event,
    sent_by,
    transition,
)
from referral.signals import referral_status_changed
from referral.views.referrals import csrf_failed_page, message_page

#: URL word -> the status it moves to
ANSWERS = {"accept": "accepted", "decline": "declined", "complete": "completed"}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/inbox", "inbox", inbox_page)
    bp.add_url_rule("/inbox/sent", "sent_referrals", sent_page)
    bp.add_url_rule("/inbox/<referral_id>", "inbox_referral", referral_page)
    bp.add_url_rule("/inbox/<referral_id>/export.json", "export_referral", export_referral)
    bp.add_url_rule(
        "/inbox/<referral_id>/<any(accept, decline, complete):answer>",
        "answer_referral",
        answer_referral,
        methods=["POST"],
    )


@practitioner_required
def inbox_page(practitioner: Practitioner) -> str:
    groups = inbox(get_session(), practitioner)
    return render_template(
        "referral/inbox.html", practitioner=practitioner, groups=groups, statuses=STATUSES
    )


@practitioner_required
def sent_page(practitioner: Practitioner) -> str:
    referrals = sent_by(get_session(), practitioner)
    return render_template(
        "referral/sent_referrals.html", practitioner=practitioner, referrals=referrals
    )


def _readable(referral_id: str) -> tuple[ReferralRequest, Practitioner | None, str]:
    """The referral if the signed-in user may read it, with their practitioner and actor
    name; 404 otherwise (another practitioner's id reveals nothing)."""
    if not current_user.is_authenticated:
        abort(current_app.login_manager.unauthorized())
    practitioner = current_practitioner()
    admin = is_admin()
    referral = get_session().get(ReferralRequest, referral_id)
    if referral is None or not can_read(referral, practitioner, admin):
        abort(404)
    if can_answer(referral, practitioner):
        return referral, practitioner, practitioner_actor(practitioner)
    return referral, practitioner, admin_actor(current_user)


@private
def referral_page(referral_id: str) -> Any:
    referral, practitioner, actor = _readable(referral_id)
    session = get_session()
    old = None
    if referral.status == "sent" and can_answer(referral, practitioner):
        old = transition(session, referral, "viewed", actor)
    else:
        record_event(session, referral, actor, "opened")
    session.commit()
    if old is not None:
        _changed(referral, old, actor)
    return render_template(
        "referral/inbox_referral.html",
        referral=referral,
        may_answer=can_answer(referral, practitioner),
        action_form=ActionForm(),
        decline_form=DeclineForm(),
    )


@private
def export_referral(referral_id: str) -> Any:
    referral, _practitioner, actor = _readable(referral_id)
    session = get_session()
    record_event(session, referral, actor, "exported")
    session.commit()
    response = jsonify(export(referral))
    response.headers["Content-Disposition"] = f'attachment; filename="referral-{referral.id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@private
def answer_referral(referral_id: str, answer: str) -> Any:
    referral, practitioner, actor = _readable(referral_id)
    if not can_answer(referral, practitioner):
        abort(403)
    form = DeclineForm() if answer == "decline" else ActionForm()
    valid = form.validate_on_submit()
    if form.csrf_failed():
        return csrf_failed_page()
    session = get_session()
    if not valid:
        return (
            render_template(
                "referral/inbox_referral.html",
                referral=referral,
                may_answer=True,
                action_form=ActionForm(formdata=None),
                decline_form=form,
            ),
            400,
        )
    reason = form.reason.data if answer == "decline" else None
    category = (form.category.data or None) if answer == "decline" else None
    try:
        old = transition(
            session, referral, ANSWERS[answer], actor, reason=reason, category=category
        )
    except InvalidInput as exc:
        session.rollback()
        return message_page("That did not work", exc.message, exc.status)
    session.commit()
    _changed(referral, old, actor)
    return redirect(url_for("referral.inbox_referral", referral_id=referral.id))


def _changed(referral: ReferralRequest, old: str, actor: str) -> None:
    referral_status_changed.send(
        current_app._get_current_object(),
        referral=referral,
        old_status=old,
        new_status=referral.status,
        actor=actor,
    )

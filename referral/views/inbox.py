"""The practitioner's inbox: referrals received (by status), one referral, its answer
buttons, its FHIR export, referring the patient on, and the referrals they sent to others.

Who may read or answer is decided by :func:`referral.referrals.can_read` and
:func:`referral.referrals.can_answer`; a referral the visitor may not read is a 404, so
its existence is not revealed.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from referral import consent, fhir, referon
from referral.auth import current_practitioner, is_admin, practitioner_required
from referral.db import get_session
from referral.errors import InvalidInput
from referral.forms import ActionForm, DeclineForm, OutcomeForm, ReferOnForm
from referral.headers import private
from referral.models import Condition, Modality, Practitioner, ReferralRequest
from referral.referrals import (
    STATUSES,
    admin_actor,
    can_answer,
    can_read,
    inbox,
    practitioner_actor,
    record_event,
    sent_by,
    transition,
)
from referral.signals import referral_created, referral_status_changed
from referral.views.referrals import csrf_failed_page, message_page
from referral.wording import status_words

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
    bp.add_url_rule("/inbox/<referral_id>/refer-on", "refer_on", refer_on_page)
    bp.add_url_rule(
        "/inbox/<referral_id>/refer-on/<rowid:practitioner_id>",
        "refer_on_confirm",
        refer_on_confirm,
        methods=["GET", "POST"],
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
    if practitioner is not None and practitioner.id in (
        referral.practitioner_id,
        referral.referrer_id,
    ):
        return referral, practitioner, practitioner_actor(practitioner)
    return referral, practitioner, admin_actor(current_user)


def _detail(referral: ReferralRequest, practitioner: Practitioner | None, **forms: Any) -> str:
    """The referral page, with the forms its reader may use (``forms`` keeps one sent back
    with errors)."""
    onward = [r for r in referral.referred_to if can_read(r, practitioner, is_admin())]
    earlier = referral.referred_from
    return render_template(
        "referral/inbox_referral.html",
        referral=referral,
        may_answer=can_answer(referral, practitioner),
        may_refer_on=referon.may_refer_on(referral, practitioner),
        is_referrer=practitioner is not None and practitioner.id == referral.referrer_id,
        consent_text=consent.text_for(referral.consent_version, current_app.config),
        onward=onward,
        earlier=earlier if earlier and can_read(earlier, practitioner, is_admin()) else None,
        action_form=forms.get("action_form") or ActionForm(formdata=None),
        decline_form=forms.get("decline_form") or DeclineForm(formdata=None),
        outcome_form=forms.get("outcome_form") or OutcomeForm(formdata=None),
    )


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
    return _detail(referral, practitioner)


@private
def export_referral(referral_id: str) -> Any:
    referral, _practitioner, actor = _readable(referral_id)
    session = get_session()
    record_event(session, referral, actor, "exported")
    session.commit()
    response = jsonify(fhir.bundle(referral))
    response.mimetype = "application/fhir+json"
    response.headers["Content-Disposition"] = f'attachment; filename="referral-{referral.id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@private
def answer_referral(referral_id: str, answer: str) -> Any:
    referral, practitioner, actor = _readable(referral_id)
    if not can_answer(referral, practitioner):
        abort(403)
    form = {"decline": DeclineForm, "complete": OutcomeForm}.get(answer, ActionForm)()
    valid = form.validate_on_submit()
    if form.csrf_failed():
        return csrf_failed_page()
    session = get_session()
    if not valid:
        name = {"decline": "decline_form", "complete": "outcome_form"}.get(answer, "action_form")
        return _detail(referral, practitioner, **{name: form}), 400
    try:
        if answer == "complete":
            old = referon.complete(
                session, referral, actor, form.outcome.data, form.outcome_note.data
            )
        else:
            reason = form.reason.data if answer == "decline" else None
            category = (form.category.data or None) if answer == "decline" else None
            old = transition(
                session, referral, ANSWERS[answer], actor, reason=reason, category=category
            )
            session.commit()
    except InvalidInput as exc:
        session.rollback()
        return message_page("That did not work", exc.message, exc.status)
    _changed(referral, old, actor)
    return redirect(url_for("referral.inbox_referral", referral_id=referral.id))


def _referable(referral_id: str) -> tuple[ReferralRequest, Practitioner]:
    """The referral if the signed-in practitioner may refer its patient on: 404 for one
    they may not read, 403 for a reader who is not its recipient, and
    :class:`InvalidInput` (409) for one not opened yet or already ended."""
    referral, practitioner, _actor = _readable(referral_id)
    if not can_answer(referral, practitioner):
        abort(403)
    assert practitioner is not None
    if not referon.may_refer_on(referral, practitioner):
        raise InvalidInput(
            "cannot_refer_on",
            f"This referral is {status_words(referral.status).lower()}: only one you have "
            "opened or accepted, and not yet completed or closed, can be referred on.",
            status=409,
        )
    return referral, practitioner


def _not_referable(exc: InvalidInput) -> tuple[str, int]:
    return message_page("This referral cannot be referred on", exc.message, exc.status)


@private
def refer_on_page(referral_id: str) -> Any:
    """Step one: search the directory for someone to refer the patient on to."""
    try:
        referral, _practitioner = _referable(referral_id)
    except InvalidInput as exc:
        return _not_referable(exc)
    session = get_session()
    args = (
        request.args
        if request.args.get("postcode")
        else MultiDict(referon.search_defaults(referral))
    )
    context: dict[str, Any] = {
        "referral": referral,
        "args": args,
        "modalities": session.scalars(select(Modality).order_by(Modality.name)).all(),
        "conditions": session.scalars(select(Condition).order_by(Condition.name)).all(),
        "found": None,
        "error": None,
    }
    if not args.get("postcode"):
        return render_template("referral/refer_on.html", **context)
    try:
        context["found"] = referon.candidates(session, referral, args, current_app.config)
    except InvalidInput as exc:
        context["error"] = exc.message
        return render_template("referral/refer_on.html", **context), exc.status
    return render_template("referral/refer_on.html", **context)


@private
def refer_on_confirm(referral_id: str, practitioner_id: int) -> Any:
    """Step two: confirm, with an optional note; the POST refers the patient on."""
    try:
        referral, practitioner = _referable(referral_id)
    except InvalidInput as exc:
        return _not_referable(exc)
    session = get_session()
    try:
        to = referon.target(session, referral, practitioner_id)
    except InvalidInput as exc:
        return message_page("This practitioner cannot be chosen", exc.message, exc.status)
    needs_agreement = referon.needs_agreement(referral, current_app.config)
    form = ReferOnForm()
    if not needs_agreement:
        del form.patient_agreed
    status = 200
    if form.is_submitted():
        valid = form.validate()
        if form.csrf_failed():
            return csrf_failed_page()
        if valid:
            old = referral.status
            try:
                onward = referon.refer_on(
                    session,
                    referral,
                    to,
                    config=current_app.config,
                    note=form.note.data,
                    patient_agreed=needs_agreement and bool(form.patient_agreed.data),
                )
            except InvalidInput as exc:
                session.rollback()
                return message_page("The patient was not referred on", exc.message, exc.status)
            app = current_app._get_current_object()
            referral_created.send(app, referral=onward)
            _changed(referral, old, practitioner_actor(practitioner))
            return redirect(url_for("referral.inbox_referral", referral_id=referral.id), 303)
        status = 400
    page = render_template(
        "referral/refer_on_confirm.html",
        referral=referral,
        to=to,
        form=form,
        needs_agreement=needs_agreement,
        back=request.args.get("back"),
    )
    return page, status


def _changed(referral: ReferralRequest, old: str, actor: str) -> None:
    referral_status_changed.send(
        current_app._get_current_object(),
        referral=referral,
        old_status=old,
        new_status=referral.status,
        actor=actor,
    )

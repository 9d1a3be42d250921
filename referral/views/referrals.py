"""The referral form's target, the confirmation page, and the patient's cancel link."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter import Limiter
from sqlalchemy import select

from referral import embed
from referral.auth import current_practitioner
from referral.db import get_session
from referral.errors import InvalidInput
from referral.forms import ActionForm, ReferralForm
from referral.headers import private
from referral.listings import public_listing
from referral.models import Condition, Practitioner, ReferralRequest
from referral.referrals import (
    PATIENT_ACTOR,
    ReferralData,
    create_referral,
    read_sent_token,
    referral_id_from_cancel_token,
    sent_token,
    transition,
)
from referral.signals import referral_created, referral_status_changed
from referral.status import searched_modality


def register(bp: Blueprint, limiter: Limiter | None = None) -> None:
    view = refer
    if limiter is not None:
        # only a request that went through counts: a form sent back for corrections does not
        view = limiter.limit(
            lambda: current_app.config["REFERRAL_REFERRAL_RATE_LIMIT"],
            methods=["POST"],
            deduct_when=lambda response: response.status_code == 303,
            error_message=_too_many_referrals,
        )(refer)
    bp.add_url_rule(
        "/practitioners/<rowid:practitioner_id>/referrals",
        "refer",
        view,
        methods=["GET", "POST"],
    )
    bp.add_url_rule("/referrals/sent/<token>", "referral_sent", sent)
    bp.add_url_rule("/referrals/cancel/<token>", "cancel", cancel, methods=["GET", "POST"])
    bp.context_processor(_form_context)


def _too_many_referrals() -> str:
    return (
        "You have sent several requests from this connection in a short time (at most "
        f"{current_app.config['REFERRAL_REFERRAL_RATE_LIMIT']}), so this one was not sent and "
        "nothing was saved. Please try again later. If you need to reach a practitioner "
        "sooner, phone them: their number is on their listing."
    )


def _form_context() -> dict[str, Any]:
    return {"referral_form_for": referral_form, "referral_referrer": current_practitioner}


def referral_form() -> ReferralForm:
    """A referral form offering the condition taxonomy, bound to the request's data."""
    conditions = get_session().scalars(select(Condition).order_by(Condition.name)).all()
    return ReferralForm(conditions=[(c.slug, c.name) for c in conditions])


def _listing(practitioner_id: int) -> Practitioner:
    found = public_listing(get_session(), practitioner_id)
    if found is None:
        abort(404)
    return found


def message_page(title: str, text: str, status: int) -> tuple[str, int]:
    return (
        render_template("referral/message.html", title=title, message=text, error=status >= 400),
        status,
    )


def csrf_failed_page() -> tuple[str, int]:
    return message_page(
        "Please try again",
        "This form could not be checked: it may have been open too long, or it was sent "
        "from another site. Please go back, reload the page and send it again. "
        "Nothing was saved.",
        400,
    )


def refer(practitioner_id: int) -> Any:
    practitioner = _listing(practitioner_id)
    form = referral_form()
    if not form.is_submitted():
        return redirect(url_for("referral.practitioner", practitioner_id=practitioner.id))
    valid = form.validate()
    referrer = current_practitioner()
    if form.csrf_failed():
        # in a frame on another site our session cookie does not come back: the embedded
        # form's signed token stands in, for a patient's request (see referral.embed)
        if not embed.accepts_form_token(practitioner.id):
            return csrf_failed_page()
        form.csrf_token.errors = []
        valid, referrer = not form.errors, None
    if form.is_bot():
        # a bot gets what a person gets, without anything being stored or sent
        return _redirect_to_sent(practitioner.id, None)
    if not valid:
        page = render_template(
            "referral/practitioner.html", practitioner=practitioner, referral_form=form
        )
        return page, 400
    session = get_session()
    condition = (
        session.scalars(select(Condition).where(Condition.slug == form.condition.data)).first()
        if form.condition.data
        else None
    )
    data = ReferralData(
        patient_name=form.patient_name.data.strip(),
        email=form.email.data,
        phone=form.phone.data or None,
        postcode=(form.postcode.data or "").strip().upper() or None,
        condition_id=condition.id if condition else None,
        message=form.message.data or "",
        consent_version=current_app.config["REFERRAL_CONSENT_VERSION"],
        idempotency_key=form.idempotency_key.data or None,
        searched_modality=searched_modality(request.args.get("back"), practitioner),
    )
    try:
        referral, created = create_referral(session, practitioner, data, referrer=referrer)
    except InvalidInput as exc:
        return message_page("Your request was not sent", exc.message, exc.status)
    if created:
        referral_created.send(current_app._get_current_object(), referral=referral)
    return _redirect_to_sent(practitioner.id, referral.id)


def _redirect_to_sent(practitioner_id: int, referral_id: str | None) -> Any:
    """Post/redirect/get: the confirmation is a page of its own, so reloading it or going
    Back never offers to send the form again. 303 makes the browser GET it."""
    token = sent_token(practitioner_id, referral_id)
    back = request.args.get("back") or None  # the search the patient came from, kept
    return redirect(url_for("referral.referral_sent", token=token, back=back), code=303)


def sent(token: str) -> Any:
    """The confirmation page of a sent request (what a signed token names, for a day)."""
    try:
        practitioner_id, referral_id = read_sent_token(token)
    except InvalidInput as exc:
        return message_page("This page has expired", exc.message, exc.status)
    practitioner = _listing(practitioner_id)
    referral = get_session().get(ReferralRequest, referral_id) if referral_id else None
    return render_template(
        "referral/referral_sent.html", practitioner=practitioner, referral=referral
    )


@private
def cancel(token: str) -> Any:
    """The patient's signed link: a page with a button, so a mail scanner fetching the
    link does not cancel anything."""
    try:
        referral_id = referral_id_from_cancel_token(token)
    except InvalidInput as exc:
        return message_page("This link does not work", exc.message, exc.status)
    session = get_session()
    referral = session.get(ReferralRequest, referral_id)
    if referral is None:
        return message_page(
            "This link does not work", "We could not find this request any more.", 404
        )
    form = ActionForm()
    if form.is_submitted():
        if not form.validate():
            return csrf_failed_page()
        if referral.status != "cancelled":
            try:
                old = transition(session, referral, "cancelled", PATIENT_ACTOR)
            except InvalidInput as exc:
                return message_page("This request cannot be cancelled", exc.message, exc.status)
            session.commit()
            referral_status_changed.send(
                current_app._get_current_object(),
                referral=referral,
                old_status=old,
                new_status="cancelled",
                actor=PATIENT_ACTOR,
            )
        return message_page(
            "Your request is cancelled",
            f"We have told {referral.practitioner.name}. You do not need to do anything else.",
            200,
        )
    return render_template("referral/cancel.html", referral=referral, form=form)

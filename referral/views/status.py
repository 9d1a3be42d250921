"""The patient's status page (the signed link in their emails) and the one-step re-send
of a declined or expired request to a practitioner offered instead.

Neither needs an account: the signed link is the patient's key (see :mod:`referral.status`).
A forged or altered link is a 404 page, an old one a 410 page, and neither shows anything
of the request.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, url_for

from referral import capacity
from referral.db import get_session
from referral.errors import InvalidInput
from referral.forms import ActionForm
from referral.headers import private
from referral.listings import public_listing
from referral.models import ReferralRequest
from referral.referrals import DECLINE_CATEGORIES, cancel_token
from referral.signals import referral_created
from referral.status import (
    OFFER_AFTER,
    OPEN,
    alternatives,
    booking_link,
    read_resend_token,
    referral_id_from_status_token,
    resend,
    resend_token,
    resent,
    status_token,
)
from referral.views.referrals import csrf_failed_page, message_page


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/referrals/status/<token>", "request_status", request_status)
    bp.add_url_rule("/referrals/resend/<token>", "resend", resend_page, methods=["GET", "POST"])
    bp.add_app_template_global(capacity.of, "referral_capacity")
    bp.add_app_template_global(capacity.instead_words, "referral_capacity_instead")


def _not_working(exc: InvalidInput) -> tuple[str, int]:
    return message_page("This link does not work", exc.message, exc.status)


def _gone() -> tuple[str, int]:
    return message_page("This link does not work", "We could not find this request any more.", 404)


@private
def request_status(token: str) -> Any:
    """Where the request is, in plain words; the practitioner's contact details and
    "Book a time" once accepted; others to send it to once declined or expired."""
    try:
        referral_id = referral_id_from_status_token(token)
    except InvalidInput as exc:
        return _not_working(exc)
    session = get_session()
    referral = session.get(ReferralRequest, referral_id)
    if referral is None:
        return _gone()
    offered = []
    if referral.status in OFFER_AFTER:
        offered = [
            (a, url_for("referral.resend", token=resend_token(referral, a.practitioner_id)))
            for a in alternatives(session, referral, current_app.config)
        ]
    return render_template(
        "referral/request_status.html",
        referral=referral,
        practitioner=referral.practitioner,
        booking_url=booking_link(referral),
        cancel_url=(
            url_for("referral.cancel", token=cancel_token(referral))
            if referral.status in OPEN
            else None
        ),
        offered=offered,
        decline_text=(
            DECLINE_CATEGORIES.get(referral.decline_category or "other")
            if referral.status == "declined"
            else None
        ),
    )


@private
def resend_page(token: str) -> Any:
    """GET: what will be sent, and to whom, with one button; POST: send it (once)."""
    try:
        referral_id, practitioner_id = read_resend_token(token)
    except InvalidInput as exc:
        return _not_working(exc)
    session = get_session()
    referral = session.get(ReferralRequest, referral_id)
    if referral is None:
        return _gone()
    practitioner = public_listing(session, practitioner_id)
    if practitioner is None:
        return message_page(
            "This practitioner is no longer listed",
            "Please choose another practitioner from your request's page, or search again.",
            404,
        )
    earlier = resent(session, referral, practitioner.id)
    if earlier is not None:  # confirmed before: its page, not a second request
        return redirect(url_for("referral.request_status", token=status_token(earlier)), code=303)
    if referral.status not in OFFER_AFTER:
        return message_page(
            "Your request is still open",
            f"Your request is still with {referral.practitioner.name}, so it was not sent "
            "again. Cancel it first if you would rather see someone else.",
            409,
        )
    if not capacity.of(practitioner).takes_referrals:
        return message_page(
            "Your request was not sent",
            f"{practitioner.name} has stopped taking new patients since we suggested them. "
            "Please choose another practitioner from your request's page, or search again.",
            409,
        )
    form = ActionForm()
    if form.is_submitted():
        if not form.validate():
            return csrf_failed_page()
        try:
            new, created = resend(session, referral, practitioner)
        except InvalidInput as exc:
            return message_page("Your request was not sent", exc.message, exc.status)
        if created:
            referral_created.send(current_app._get_current_object(), referral=new)
        return redirect(url_for("referral.request_status", token=status_token(new)), code=303)
    return render_template(
        "referral/resend.html", referral=referral, practitioner=practitioner, form=form
    )

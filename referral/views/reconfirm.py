"""The practitioner's "my details are still right" link (see :mod:`referral.reconfirm`).

The link opens a page with one button: a GET never changes anything, because mail
scanners open links, so the click that counts is the button's POST (CSRF-protected).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from referral import moderation, reconfirm
from referral.db import get_session
from referral.errors import InvalidInput
from referral.forms import ActionForm
from referral.views.referrals import csrf_failed_page, message_page
from referral.wording import month_year


def register(bp: Blueprint) -> None:
    bp.add_url_rule(
        "/listing/confirm/<token>", "reconfirm_listing", confirm, methods=["GET", "POST"]
    )
    bp.context_processor(lambda: {"referral_is_stale": reconfirm.is_stale})


def confirm(token: str) -> Any:
    session = get_session()
    try:
        practitioner = reconfirm.read_token(session, token)
    except InvalidInput as exc:
        title = "Already confirmed" if exc.code == "token_used" else "This link does not work"
        return message_page(title, exc.message, exc.status)
    form = ActionForm()
    if form.is_submitted():
        if not form.validate():
            return csrf_failed_page()
        actor = moderation.recipient(practitioner) or f"practitioner {practitioner.id}"
        moderation.reconfirm(session, practitioner, actor)
        return message_page(
            "Thank you",
            f"Your listing now says its details were confirmed in "
            f"{month_year(practitioner.verified_at)}.",
            200,
        )
    return render_template("referral/reconfirm.html", practitioner=practitioner, form=form)

"""The blueprint: pages and API routes, mounted at ``REFERRAL_URL_PREFIX``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException

from referral import embed, headers, theme, wording
from referral.auth import current_practitioner, is_admin
from referral.db import get_session, open_session
from referral.geo.distance import to_unit
from referral.mail import QUEUED
from referral.models import Practitioner, ReferralRequest
from referral.referrals import reference

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def make_blueprint(state: Any = None) -> Blueprint:
    """A fresh blueprint per app, so each host app gets its own registration.

    ``state`` is the app's ``app.extensions["referral"]``: its limiter guards sign-in and
    referral submissions, and the built-in account pages exist only when the plugin owns
    the login manager.
    """
    bp = Blueprint(
        "referral",
        __name__,
        template_folder=str(PACKAGE_DIR / "templates"),
        static_folder=str(PACKAGE_DIR / "static" / "referral"),
        static_url_path="/static",
    )
    bp.context_processor(_template_context)
    bp.add_app_template_filter(format_distance, "distance")
    bp.add_app_template_filter(reference, "reference")
    for name in (
        "localtime",
        "month_year",
        "phone",
        "status_words",
        "outcome_words",
        "actor_words",
        "trail_words",
    ):
        bp.add_app_template_filter(getattr(wording, name), name)

    from referral.views import (
        accounts,
        admin,
        api,
        audit,
        embeds,
        inbox,
        opendata,
        practitioner,
        public,
        reconfirm,
        referrals,
        reports,
    )
    from referral.views import status as request_status

    public.register(bp)
    referrals.register(bp, state.limiter if state is not None else None)
    request_status.register(bp)
    inbox.register(bp)
    if state is not None and state.builtin_accounts:
        accounts.register(bp, state.limiter)
    practitioner.register(bp)
    admin.register(bp)
    embeds.register(bp)
    audit.register(bp)
    reports.register(bp, state.limiter if state is not None else None)
    reconfirm.register(bp)
    opendata.register(bp)
    api.register(bp)
    embed.register(bp)  # last: it copies the embeddable pages' rules
    bp.context_processor(embed.template_context)
    bp.register_error_handler(429, _too_many_requests)
    for status in ERROR_PAGES:
        bp.register_error_handler(status, error_page)
    headers.register(bp)
    bp.after_request(_wake_sender)
    return bp


def _wake_sender(response: Response) -> Response:
    """Messages a view queued leave a moment later from the background sender (when it is
    on), not inside this request: a slow mail server never holds up a page."""
    session = open_session()
    if session is not None and session.info.pop(QUEUED, None):
        current_app.extensions["referral"].sender.wake()
    return response


#: status -> (title, what happened and what to do), in the site's layout with a way back
ERROR_PAGES: dict[int, tuple[str, str]] = {
    403: (
        "This page is not for your account",
        "You are signed in, but this page belongs to another kind of account.",
    ),
    404: (
        "Page not found",
        "We could not find that page. The practitioner may have left the directory, or the "
        "address may be mistyped.",
    ),
    500: (
        "Something went wrong",
        "Sorry, something went wrong on our side; nothing you did caused it. Please try again "
        "in a few minutes. If you were sending a request, check your email for our "
        "acknowledgement before sending it again.",
    ),
}


def error_page(exc: HTTPException) -> tuple[str, int]:
    """403, 404 and 500 as pages of the site, each with a way on: the search, and for a
    signed-in account its own pages."""
    status = exc.code or 500
    title, text = ERROR_PAGES[status]
    links = [(url_for("referral.index"), "Find a therapist")]
    if status == 403 and current_user.is_authenticated:
        if current_practitioner() is not None:
            links.insert(0, (url_for("referral.listing"), "Your listing"))
        if is_admin():
            text = "Admins have no listing of their own; the moderation queue is yours."
            links.insert(0, (url_for("referral.admin_queue"), "Listings to check"))
    html = render_template(
        "referral/message.html", title=title, message=text, error=True, links=links
    )
    return html, status


def _too_many_requests(exc: HTTPException) -> tuple[str, int]:
    """Rate limits answer with a page saying what happened and what to do."""
    html = render_template(
        "referral/message.html",
        title="Please wait",
        message=exc.description or "Too many requests. Please try again later.",
        error=True,
    )
    return html, 429


def _template_context() -> dict[str, Any]:
    config = current_app.config
    return {
        "referral_base_template": embed.base_template(),
        "referral_site_name": config["REFERRAL_SITE_NAME"],
        "referral_theme_style": theme.style_block(config["REFERRAL_THEME"]),
        "referral_map": {
            "tiles": config["REFERRAL_MAP_TILE_URL"],
            "attribution": config["REFERRAL_MAP_ATTRIBUTION"],
        },
        "referral_builtin_accounts": current_app.extensions["referral"].builtin_accounts,
        "referral_account_links": account_links,
    }


def account_links() -> list[tuple[str, str, str]]:
    """The signed-in account's own pages as ``(endpoint, url, label)``: a practitioner's
    inbox (with how many are new), sent referrals and listing; an admin's queue (with how
    many wait), undelivered messages, the websites that embed the finder and the referral
    funnel. Empty for a visitor."""
    if not current_user.is_authenticated:
        return []
    session = get_session()
    links = []
    practitioner = current_practitioner()
    if practitioner is not None:
        new = session.scalar(
            select(func.count())
            .select_from(ReferralRequest)
            .where(
                ReferralRequest.practitioner_id == practitioner.id,
                ReferralRequest.status == "sent",
            )
        )
        links += [
            ("inbox", url_for("referral.inbox"), f"Inbox ({new} new)" if new else "Inbox"),
            ("sent_referrals", url_for("referral.sent_referrals"), "Referrals you sent"),
            ("listing", url_for("referral.listing"), "Your listing"),
        ]
    if is_admin():
        waiting = session.scalar(
            select(func.count()).select_from(Practitioner).where(Practitioner.status == "pending")
        )
        links += [
            ("admin_queue", url_for("referral.admin_queue"), f"Listings to check ({waiting})"),
            ("admin_outbox", url_for("referral.admin_outbox"), "Undelivered messages"),
            ("admin_embeds", url_for("referral.admin_embeds"), "Websites that embed the finder"),
            ("admin_funnel", url_for("referral.admin_funnel"), "Referral funnel"),
            ("admin_audit", url_for("referral.admin_audit"), "Audit log"),
        ]
    return links


def format_distance(km: float) -> str:
    """Kilometres as the visitor reads them, in ``REFERRAL_DISTANCE_UNIT``."""
    unit = current_app.config["REFERRAL_DISTANCE_UNIT"]
    return f"{to_unit(km, unit):.1f} {unit}"

"""The blueprint: pages and API routes, mounted at ``REFERRAL_URL_PREFIX``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template
from werkzeug.exceptions import HTTPException

from referral import embed, headers, theme
from referral.db import open_session
from referral.geo.distance import to_unit
from referral.mail import QUEUED
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

    from referral.views import (
        accounts,
        admin,
        api,
        inbox,
        opendata,
        practitioner,
        public,
        referrals,
    )

    public.register(bp)
    referrals.register(bp, state.limiter if state is not None else None)
    inbox.register(bp)
    if state is not None and state.builtin_accounts:
        accounts.register(bp, state.limiter)
    practitioner.register(bp)
    admin.register(bp)
    opendata.register(bp)
    api.register(bp)
    embed.register(bp)  # last: it copies the embeddable pages' rules
    bp.context_processor(embed.template_context)
    bp.register_error_handler(429, _too_many_requests)
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
    }


def format_distance(km: float) -> str:
    """Kilometres as the visitor reads them, in ``REFERRAL_DISTANCE_UNIT``."""
    unit = current_app.config["REFERRAL_DISTANCE_UNIT"]
    return f"{to_unit(km, unit):.1f} {unit}"

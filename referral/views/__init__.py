"""The blueprint: pages and API routes, mounted at ``REFERRAL_URL_PREFIX``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app

from referral.geo.distance import to_unit

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def make_blueprint() -> Blueprint:
    """A fresh blueprint per app, so each host app gets its own registration."""
    bp = Blueprint(
        "referral",
        __name__,
        template_folder=str(PACKAGE_DIR / "templates"),
        static_folder=str(PACKAGE_DIR / "static" / "referral"),
        static_url_path="/static",
    )
    bp.context_processor(_template_context)
    bp.add_app_template_filter(format_distance, "distance")

    from referral.views import inbox, public, referrals

    public.register(bp)
    referrals.register(bp)
    inbox.register(bp)
    return bp


def _template_context() -> dict[str, Any]:
    config = current_app.config
    return {
        "referral_base_template": config["REFERRAL_BASE_TEMPLATE"],
        "referral_site_name": config["REFERRAL_SITE_NAME"],
    }


def format_distance(km: float) -> str:
    """Kilometres as the visitor reads them, in ``REFERRAL_DISTANCE_UNIT``."""
    unit = current_app.config["REFERRAL_DISTANCE_UNIT"]
    return f"{to_unit(km, unit):.1f} {unit}"

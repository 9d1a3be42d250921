"""The blueprint: pages and API routes, mounted at ``REFERRAL_URL_PREFIX``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app

from referral import embed, theme
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

    from referral.views import api, inbox, public, referrals

    public.register(bp)
    referrals.register(bp)
    inbox.register(bp)
    api.register(bp)
    embed.register(bp)  # last: it copies the embeddable pages' rules
    bp.context_processor(embed.template_context)
    return bp


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
    }


def format_distance(km: float) -> str:
    """Kilometres as the visitor reads them, in ``REFERRAL_DISTANCE_UNIT``."""
    unit = current_app.config["REFERRAL_DISTANCE_UNIT"]
    return f"{to_unit(km, unit):.1f} {unit}"

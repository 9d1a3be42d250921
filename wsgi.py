"""The demo clinic site: a small host app that mounts the referral plugin.

``flask --app wsgi run`` or ``gunicorn wsgi:app``. Settings come from ``FLASK_``-prefixed
environment variables too, e.g. ``FLASK_REFERRAL_DATABASE_URL=postgresql+psycopg://...``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, redirect, render_template, send_from_directory, url_for

from referral import Referral


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.path.join(os.path.dirname(__file__), "instance"))
    app.config.update(
        SECRET_KEY="demo-only-change-me",
        REFERRAL_BASE_TEMPLATE="clinic/layout.html",
        REFERRAL_SITE_NAME="Find a therapist near you",
        # the demo is served over plain HTTP; a real site keeps the default (True)
        REFERRAL_SECURE_COOKIES=False,
    )
    app.config.from_prefixed_env()
    if test_config:
        app.config.update(test_config)
    Referral(app)

    @app.get("/")
    def home() -> Any:
        return render_template("clinic/home.html")

    @app.get("/for-websites")
    def for_websites() -> Any:
        """The snippet another website pastes to show the finder (see referral/embed.py)."""
        return render_template("clinic/embed.html")

    @app.get("/clinic.css")
    def clinic_css() -> Any:
        """The layout's stylesheet, kept beside it in ``templates/clinic/``."""
        folder = os.path.join(app.root_path, "templates", "clinic")
        return send_from_directory(folder, "clinic.css", max_age=3600)

    @app.get("/about")
    def about() -> Any:
        return redirect(url_for("referral.index"))

    return app


app = create_app()

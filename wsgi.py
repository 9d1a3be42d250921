"""The demo clinic site: a small host app that mounts the referral plugin.

``flask --app wsgi run`` or ``gunicorn 'wsgi:create_app()'`` (``wsgi:app`` works too).
Settings come from ``FLASK_``-prefixed environment variables, e.g.
``FLASK_SECRET_KEY=...``, ``FLASK_REFERRAL_PUBLIC_URL=https://clinic.example`` and
``FLASK_REFERRAL_DATABASE_URL=postgresql+psycopg://...``, over ``instance/demo.cfg``, which
``make demo`` writes once (``python wsgi.py demo-settings``) with a random secret key and the
demo's address. No key is in the code: outside debug and testing the plugin refuses to start
without a real one and a public URL.
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, redirect, render_template, send_from_directory, url_for

from referral import Referral

INSTANCE = Path(__file__).resolve().parent / "instance"
DEMO_SETTINGS = "demo.cfg"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(INSTANCE))
    app.config.update(
        REFERRAL_BASE_TEMPLATE="clinic/layout.html",
        REFERRAL_SITE_NAME="Find a therapist near you",
    )
    # from_pyfile joins a relative name to the root path, not the instance folder
    app.config.from_pyfile(os.path.join(app.instance_path, DEMO_SETTINGS), silent=True)
    app.config.from_prefixed_env()
    if test_config:
        app.config.update(test_config)
    # Secure cookies unless the site is served over plain HTTP (the demo on 127.0.0.1)
    public = str(app.config.get("REFERRAL_PUBLIC_URL") or "")
    app.config.setdefault("REFERRAL_SECURE_COOKIES", not public.startswith("http://"))
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


def write_demo_settings(public_url: str, instance: Path = INSTANCE) -> Path:
    """Write ``instance/demo.cfg``: a random ``SECRET_KEY`` made the first time and kept
    after, and the demo's public URL. Returns the file's path."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / DEMO_SETTINGS
    settings: dict[str, Any] = {}
    if path.exists():
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), {}, settings)
    key = settings.get("SECRET_KEY") or secrets.token_hex(32)
    text = (
        "# Written by `make demo` (python wsgi.py demo-settings): the demo's own settings.\n"
        "# Keep this file private; a real site sets its own key and address.\n"
        f"SECRET_KEY = {key!r}\n"
        f"REFERRAL_PUBLIC_URL = {public_url!r}\n"
        "# The demo runs offline: the shipped gazetteer answers postcodes and places, and\n"
        "# the remote geocoder (which would need a user agent naming you) stays off.\n"
        "REFERRAL_GEOCODER = None\n"
    )
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o600)
    return path


def __getattr__(name: str) -> Any:
    """``wsgi.app`` for ``gunicorn wsgi:app`` and ``flask --app wsgi``, made on first use
    (importing this module to call :func:`create_app` with a test config builds nothing)."""
    if name == "app":
        globals()["app"] = made = create_app()
        return made
    raise AttributeError(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The demo clinic site's own settings.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo-settings", help="write instance/demo.cfg")
    demo.add_argument("--public-url", required=True, help="e.g. http://127.0.0.1:5000")
    args = parser.parse_args()
    print(f"Wrote {write_demo_settings(args.public_url)}")

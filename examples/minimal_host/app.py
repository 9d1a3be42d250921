"""A minimal Flask host: its own URL prefix, layout, database engine and tables.

The smallest real integration, to copy from. Run it from this folder::

    flask --app app referral upgrade     # the plugin's tables, beside the host's own
    flask --app app referral demo        # optional: demo practitioners and postcodes
    flask --app app --debug run          # http://127.0.0.1:5000/therapists/

Outside debug the plugin needs a real secret key and the site's public address:
``MINIMAL_HOST_SECRET_KEY`` (32 random bytes or more) and ``MINIMAL_HOST_PUBLIC_URL``
(``https://clinic.example``).

``MINIMAL_HOST_DATABASE_URL`` picks the database (default: ``minimal.sqlite`` in the
instance folder). Both the host and the plugin use the one engine made here.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, render_template
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event, select

from referral import Referral

#: the host's own tables live in the same database; the plugin's are all named referral_*
metadata = MetaData()
opening_hours = Table(
    "clinic_opening_hours",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("day", String(10), nullable=False),
    Column("hours", String(40), nullable=False),
)


def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA foreign_keys=ON")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("MINIMAL_HOST_SECRET_KEY"),
        REFERRAL_PUBLIC_URL=os.environ.get("MINIMAL_HOST_PUBLIC_URL"),
        REFERRAL_URL_PREFIX="/therapists",
        REFERRAL_BASE_TEMPLATE="minimal/layout.html",
        REFERRAL_SITE_NAME="Therapists near you",
        REFERRAL_THEME={"accent": "#7a3e00", "radius": "2px"},
    )
    app.config.update(config or {})
    url = app.config.pop("MINIMAL_HOST_DATABASE_URL", None) or os.environ.get(
        "MINIMAL_HOST_DATABASE_URL",
        "sqlite:///" + os.path.join(app.instance_path, "minimal.sqlite"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_foreign_keys)
    metadata.create_all(engine)
    app.extensions["minimal_host.engine"] = engine

    Referral(app, engine=engine)

    @app.get("/")
    def home() -> str:
        with engine.connect() as conn:
            hours = conn.execute(select(opening_hours).order_by(opening_hours.c.id)).all()
        return render_template("minimal/home.html", hours=hours)

    return app

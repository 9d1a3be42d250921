"""The ``Referral`` extension object: what a host site instantiates."""

from __future__ import annotations

import logging
import os
import re
import sys
from datetime import timedelta

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from referral import config as cfg
from referral import db, embed, headers, routing, theme, urls, wording
from referral.auth import init_login
from referral.geo.geocode import provider_class
from referral.headers import Policy
from referral.sender import BackgroundSender

log = logging.getLogger(__name__)
#: gunicorn's worker count on its command line: ``-w 4``, ``-w4``, ``--workers 4``, ``--workers=4``
_GUNICORN_WORKERS = re.compile(r"(?:^|\s)(?:-w\s*|--workers[=\s]\s*)(\d+)")


class Referral:
    """Mount the therapist directory and referral plugin on a Flask app.

    ``Referral(app)`` or, with an app factory, ``ext = Referral(); ext.init_app(app)``.
    Pass ``engine=`` to share a host's SQLAlchemy engine; otherwise the plugin makes its
    own from ``REFERRAL_DATABASE_URL``. Settings are listed in :mod:`referral.config`.
    """

    def __init__(self, app: Flask | None = None, *, engine: Engine | None = None) -> None:
        self._engine_arg = engine
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if "referral" in app.extensions:
            raise RuntimeError("Referral is already set up on this app: call init_app once.")
        routing.install(app)  # first: a clash with the host's converters changes nothing
        cfg.apply_defaults(app.config)
        if app.config["REFERRAL_DISTANCE_UNIT"] not in ("km", "mi"):
            raise ValueError("REFERRAL_DISTANCE_UNIT must be 'km' or 'mi'.")
        if app.config["REFERRAL_GEOCODER"]:
            provider_class(app.config["REFERRAL_GEOCODER"])  # a typo fails at start-up
        _check_embedding(app.config)
        wording.zone(app.config["REFERRAL_TIMEZONE"])  # a misspelt zone fails at start-up
        app.config["REFERRAL_PUBLIC_URL"] = urls.check_public_url(app.config["REFERRAL_PUBLIC_URL"])
        urls.check_deployment(app)
        if app.config["REFERRAL_RECIPIENT_DAILY_LIMIT"]:
            parse(app.config["REFERRAL_RECIPIENT_DAILY_LIMIT"])  # a typo fails at start-up

        engine = self._engine_arg
        if engine is None:
            url = app.config["REFERRAL_DATABASE_URL"] or db.default_database_url(app)
            engine = db.make_engine(url, app.config["REFERRAL_ENGINE_OPTIONS"])
        state = _State(self, engine, db.make_sessionmaker(engine))
        state.sender = BackgroundSender(app)
        state.headers = headers.build(app.config)
        app.extensions["referral"] = state
        app.teardown_appcontext(db.close_session)
        # a host with its own LoginManager keeps its accounts: the built-in ones stay off
        state.builtin_accounts = getattr(app, "login_manager", None) is None
        init_login(app)
        _secure_cookies(app)
        state.limiter = Limiter(
            get_remote_address,
            app=app,
            storage_uri=app.config["REFERRAL_RATELIMIT_STORAGE_URL"],
            key_prefix=app.config["REFERRAL_RATELIMIT_KEY_PREFIX"],
        )
        # Flask-Limiter checks every request of the app; the plugin limits only submissions
        # (sign-in, sign-up, password reset, referrals: all POST), so reads skip the check
        state.limiter.request_filter(_is_read)
        _warn_about_memory_limits(app.config["REFERRAL_RATELIMIT_STORAGE_URL"])

        from referral import audit, digest  # noqa: F401 - their signal receivers connect
        from referral.cli import referral_cli
        from referral.views import make_blueprint

        app.register_blueprint(make_blueprint(state), url_prefix=app.config["REFERRAL_URL_PREFIX"])
        app.cli.add_command(referral_cli)

    @property
    def engine(self) -> Engine:
        """The engine of the current app."""
        return current_app.extensions["referral"].engine

    @property
    def session(self) -> Session:
        """The session of the current app context."""
        return db.get_session()


def worker_processes() -> int | None:
    """How many worker processes the server running this app says it has, if it says.

    What is seen: uWSGI's ``uwsgi.numproc`` (the module exists only inside uWSGI);
    gunicorn, recognised by the ``SERVER_SOFTWARE=gunicorn/...`` its master puts in the
    environment, with ``-w``/``--workers`` on its command line or in ``GUNICORN_CMD_ARGS``;
    and ``WEB_CONCURRENCY``, which gunicorn reads as its default and platforms set. Not
    seen: workers set only in a gunicorn config file, other servers, and several servers
    started separately behind one proxy. ``None`` when nothing says.
    """
    counts: list[int] = []
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is not None and isinstance(getattr(uwsgi, "numproc", None), int):
        counts.append(uwsgi.numproc)
    if os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        command = " ".join([*sys.argv[1:], os.environ.get("GUNICORN_CMD_ARGS", "")])
        counts += [int(n) for n in _GUNICORN_WORKERS.findall(command)]
    if os.environ.get("WEB_CONCURRENCY", "").strip().isdigit():
        counts.append(int(os.environ["WEB_CONCURRENCY"]))
    return max(counts) if counts else None


def _warn_about_memory_limits(storage_url: str) -> None:
    """Log a warning when several workers would each count the limits in their own memory:
    with 4 workers, "5 sign-ins a minute" would allow 20."""
    workers = worker_processes()
    if storage_url.startswith("memory://") and workers is not None and workers > 1:
        log.warning(
            "REFERRAL_RATELIMIT_STORAGE_URL is memory:// but this server runs %d worker "
            "processes: each counts the sign-in, email and referral limits on its own, so "
            "they allow %d times as many. Share one storage: pip install 'referral[redis]' "
            "and set REFERRAL_RATELIMIT_STORAGE_URL=redis://host:6379/0.",
            workers,
            workers,
        )


def _is_read() -> bool:
    return request.method in ("GET", "HEAD", "OPTIONS")


def _check_embedding(config: dict) -> None:
    """Normalise the settings that reach headers, styles and scripts, refusing bad ones."""
    config["REFERRAL_EMBED_ORIGINS"] = embed.parse_origins(config["REFERRAL_EMBED_ORIGINS"])
    config["REFERRAL_THEME"] = theme.check(config["REFERRAL_THEME"])
    tiles = str(config["REFERRAL_MAP_TILE_URL"])
    if not all(part in tiles for part in ("{z}", "{x}", "{y}")):
        raise ValueError("REFERRAL_MAP_TILE_URL must contain {z}, {x} and {y}.")


def _secure_cookies(app: Flask) -> None:
    """Session and remember-me cookies: HttpOnly and SameSite=Lax unless the host chose
    otherwise, Secure when ``REFERRAL_SECURE_COOKIES`` is on, and "remember me" for
    ``REFERRAL_REMEMBER_DAYS`` (not Flask-Login's 365) unless the host set a duration."""
    config = app.config
    if config.get("SESSION_COOKIE_SAMESITE") is None:
        config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    config.setdefault("REMEMBER_COOKIE_DURATION", timedelta(days=config["REFERRAL_REMEMBER_DAYS"]))
    if config["REFERRAL_SECURE_COOKIES"]:
        config["SESSION_COOKIE_SECURE"] = True
        config["REMEMBER_COOKIE_SECURE"] = True


class _State:
    """What ``app.extensions["referral"]`` holds for one app."""

    builtin_accounts: bool
    limiter: Limiter
    sender: BackgroundSender
    #: the security headers of the plugin's responses (:mod:`referral.headers`)
    headers: Policy

    def __init__(self, ext: Referral, engine: Engine, maker: sessionmaker[Session]) -> None:
        self.ext = ext
        self.engine = engine
        self.sessionmaker = maker

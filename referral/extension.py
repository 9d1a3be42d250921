"""The ``Referral`` extension object: what a host site instantiates."""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from referral import config as cfg
from referral import db, embed, headers, theme
from referral.auth import init_login
from referral.geo.geocode import provider_class
from referral.headers import Policy


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
        cfg.apply_defaults(app.config)
        if app.config["REFERRAL_DISTANCE_UNIT"] not in ("km", "mi"):
            raise ValueError("REFERRAL_DISTANCE_UNIT must be 'km' or 'mi'.")
        if app.config["REFERRAL_GEOCODER"]:
            provider_class(app.config["REFERRAL_GEOCODER"])  # a typo fails at start-up
        _check_embedding(app.config)

        engine = self._engine_arg
        if engine is None:
            url = app.config["REFERRAL_DATABASE_URL"] or db.default_database_url(app)
            engine = db.make_engine(url, app.config["REFERRAL_ENGINE_OPTIONS"])
        state = _State(self, engine, db.make_sessionmaker(engine))
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
            key_prefix="referral",
        )
        # Flask-Limiter checks every request of the app; the plugin limits only submissions
        # (sign-in, sign-up, password reset, referrals: all POST), so reads skip the check
        state.limiter.request_filter(_is_read)

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
    otherwise, and Secure when ``REFERRAL_SECURE_COOKIES`` is on."""
    config = app.config
    if config.get("SESSION_COOKIE_SAMESITE") is None:
        config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    if config["REFERRAL_SECURE_COOKIES"]:
        config["SESSION_COOKIE_SECURE"] = True
        config["REMEMBER_COOKIE_SECURE"] = True


class _State:
    """What ``app.extensions["referral"]`` holds for one app."""

    builtin_accounts: bool
    limiter: Limiter
    #: the security headers of the plugin's responses (:mod:`referral.headers`)
    headers: Policy

    def __init__(self, ext: Referral, engine: Engine, maker: sessionmaker[Session]) -> None:
        self.ext = ext
        self.engine = engine
        self.sessionmaker = maker

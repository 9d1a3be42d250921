"""Engine and request-scoped session.

The plugin owns an engine unless the host hands one in, and one session per app
context, closed at teardown, so a view, a CLI command and a test all use the same call.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def default_database_url(app: Flask) -> str:
    os.makedirs(app.instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(app.instance_path, "referral.sqlite")


def make_engine(url: str, options: dict[str, Any] | None = None) -> Engine:
    """Create an engine, with the pragmas SQLite needs for integrity and concurrency."""
    options = dict(options or {})
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def get_engine() -> Engine:
    return current_app.extensions["referral"].engine


def get_session() -> Session:
    """The session of the current app context, opened on first use."""
    if "_referral_session" not in g:
        g._referral_session = current_app.extensions["referral"].sessionmaker()
    return g._referral_session


def read_session() -> Session:
    """The current app context's session for a view that only reads: unless it has
    already begun a transaction, it reads in autocommit mode, so there is no ``BEGIN``
    to send and no ``ROLLBACK`` at the end (two of a PostgreSQL search's round trips).
    Each statement then reads its own snapshot; the search copes with a listing that
    changes between its statements."""
    session = get_session()
    if not session.in_transaction():
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return session


def open_session() -> Session | None:
    """The current app context's session if one was opened, without opening one."""
    return g.get("_referral_session")


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("_referral_session", None)
    if session is not None:
        session.close()

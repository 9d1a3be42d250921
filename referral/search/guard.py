"""The time limit every search runs under: past it, :class:`SearchTimeout` (a 503)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from referral.search.records import SearchTimeout
from referral.search.sql import _driver


@contextmanager
def _time_limit(session: Session, ms: float | None) -> Iterator[None]:
    """Run the statements inside under a time limit; past it, :class:`SearchTimeout`.

    PostgreSQL: ``statement_timeout`` set transaction-locally. A view's read session is in
    autocommit mode (each statement its own transaction, where ``SET LOCAL`` would not
    last), so there the search becomes one short transaction: ``BEGIN``, the setting, the
    search, ``COMMIT``. Inside a caller's transaction the setting is put back after.
    SQLite: a progress handler that interrupts the statement once the time is up.
    """
    if not ms:
        yield
        return
    connection = _driver(session)
    if session.get_bind().dialect.name == "postgresql":
        import psycopg

        try:
            if connection.autocommit:
                with connection.transaction():
                    connection.execute(
                        "SELECT set_config('statement_timeout', %s, true)", (f"{int(ms)}ms",)
                    )
                    yield
            else:
                (old,) = connection.execute(
                    "SELECT current_setting('statement_timeout'),"
                    " set_config('statement_timeout', %s, true)",
                    (f"{int(ms)}ms",),
                ).fetchone()[:1]
                yield
                connection.execute("SELECT set_config('statement_timeout', %s, true)", (old,))
        except psycopg.errors.QueryCanceled:
            raise SearchTimeout() from None
        return
    deadline = time.monotonic() + ms / 1000
    connection.set_progress_handler(lambda: time.monotonic() > deadline, 20_000)
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise SearchTimeout() from None
        raise
    finally:
        connection.set_progress_handler(None, 0)

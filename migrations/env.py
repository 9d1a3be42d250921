"""Alembic environment for the plugin's tables.

Run through ``flask referral upgrade`` (which hands in a connection), or with the
``alembic`` command and ``-x url=...``. The version table is ``referral_alembic_version``
so the plugin's history never collides with a host's own Alembic history.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from referral.migrate import VERSION_TABLE, include_object
from referral.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
            "sqlalchemy.url"
        )
        with create_engine(url).connect() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) mode is not supported; use flask referral upgrade.")
run_migrations_online()

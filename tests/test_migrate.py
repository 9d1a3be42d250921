from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from referral import migrate
from referral.db import make_engine
from referral.models import Base
from tests.conftest import PG_URL


def _drift(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": migrate.include_object, "compare_type": True}
        )
        return compare_metadata(context, Base.metadata)


def test_models_and_migrations_agree(app):
    engine = app.extensions["referral"].engine
    assert _drift(engine) == []


def test_upgrade_creates_every_table_on_an_empty_sqlite_database(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    migrate.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert migrate.VERSION_TABLE in tables
    assert all(name.startswith("referral_") for name in tables if name != "sqlite_sequence")
    assert _drift(engine) == []
    engine.dispose()


def test_downgrade_to_base_and_back(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/roundtrip.db")
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert not any(n.startswith("referral_practitioner") for n in inspect(engine).get_table_names())
    migrate.upgrade(engine)
    assert "referral_practitioner" in inspect(engine).get_table_names()
    engine.dispose()


def test_upgrade_command_syncs_taxonomy(runner, session):
    from sqlalchemy import select

    from referral.models import Modality

    result = runner.invoke(args=["referral", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "Database at head" in result.output
    slugs = set(session.scalars(select(Modality.slug)))
    assert {"remedial-massage", "myotherapy", "physiotherapy", "osteopathy", "yoga"} <= slugs


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (REFERRAL_TEST_DATABASE_URL)")
def test_unit_vector_columns_come_and_go_with_migration_0003(app):
    engine = app.extensions["referral"].engine

    def columns(table):
        return {c["name"] for c in inspect(engine).get_columns(table)}

    assert {"geog_x", "geog_y", "geog_z"} <= columns("referral_search_point")
    migrate.downgrade(engine, "0002")
    assert not {"geog_x", "geog_y", "geog_z"} & columns("referral_location")
    assert not {"geog_x", "geog_y", "geog_z"} & columns("referral_search_point")
    migrate.upgrade(engine)
    assert {"geog_x", "geog_y", "geog_z"} <= columns("referral_location")
    assert _drift(engine) == []

"""Fixtures: ``app``, ``client``, ``runner``, ``session`` and data builders.

The database is real: a SQLite file per test (copied from one migrated template), or
PostgreSQL + PostGIS when ``REFERRAL_TEST_DATABASE_URL`` is set (migrated once, tables
emptied between tests).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from referral import migrate
from referral.config import DEFAULT_CONDITIONS, DEFAULT_FUNDS, DEFAULT_MODALITIES
from referral.db import make_engine
from referral.geo import postcodes
from referral.models import Base, Condition, Location, Modality, Practitioner
from wsgi import create_app

DATA = Path(__file__).parent / "data"
PG_URL = os.environ.get("REFERRAL_TEST_DATABASE_URL")
TAXONOMY = {
    "REFERRAL_MODALITIES": DEFAULT_MODALITIES,
    "REFERRAL_CONDITIONS": DEFAULT_CONDITIONS,
    "REFERRAL_FUNDS": DEFAULT_FUNDS,
}


def _seed(engine: Engine) -> None:
    with Session(engine) as session:
        migrate.sync_taxonomy(session, TAXONOMY)
        with (DATA / "geonames_sample.txt").open(encoding="utf-8") as stream:
            postcodes.load_centroids(session, postcodes.parse_geonames(stream), source="test")


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, seeded database made once per run."""
    if PG_URL:
        engine = make_engine(PG_URL)
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
            conn.execute(text(f"DROP TABLE IF EXISTS {migrate.VERSION_TABLE}"))
            for name in migrate.SPATIAL_TABLES:
                conn.execute(text(f"DROP TABLE IF EXISTS {name} CASCADE"))
        migrate.upgrade(engine)
        engine.dispose()
        yield PG_URL
    else:
        path = tmp_path_factory.mktemp("template") / "referral.sqlite"
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        _seed(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        yield str(path)


@pytest.fixture
def database_url(_template_db: str, tmp_path: Path) -> str:
    """A fresh, migrated and seeded database for one test."""
    if PG_URL:
        engine = make_engine(PG_URL)
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        _seed(engine)
        engine.dispose()
        return PG_URL
    path = tmp_path / "referral.sqlite"
    shutil.copy(_template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build the demo host app with extra config; engines are disposed afterwards."""
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        settings = {
            "TESTING": True,
            "SECRET_KEY": "test",
            "REFERRAL_DATABASE_URL": database_url,
            **config,
        }
        app = create_app(settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["referral"].engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """The plugin's own session inside an app context."""
    with app.app_context():
        yield app.extensions["referral"].ext.session


@pytest.fixture
def add_practitioner(session: Session) -> Callable[..., Practitioner]:
    """Create a practitioner with one location per ``(lat, lon)`` and commit."""

    def build(
        name: str,
        *points: tuple[float, float],
        modalities: tuple[str, ...] = ("remedial-massage",),
        conditions: tuple[str, ...] = (),
        status: str = "active",
        **fields: Any,
    ) -> Practitioner:
        practitioner = Practitioner(
            name=name,
            status=status,
            modalities=list(session.scalars(select(Modality).where(Modality.slug.in_(modalities)))),
            conditions=list(
                session.scalars(select(Condition).where(Condition.slug.in_(conditions)))
            ),
            locations=[
                Location(lat=lat, lon=lon, country="AU", suburb=f"{name} suburb")
                for lat, lon in points
            ],
            **fields,
        )
        session.add(practitioner)
        session.commit()
        return practitioner

    return build

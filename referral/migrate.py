"""Bring a database to the current schema, and keep the taxonomies in step with config."""

from __future__ import annotations

import contextlib
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from referral.models import Condition, HealthFund, Modality

with contextlib.suppress(ImportError):  # the postgres extra: reflection knows PostGIS types
    import geoalchemy2  # noqa: F401

VERSION_TABLE = "referral_alembic_version"
#: tables the migrations make on one backend only, for the spatial index
SPATIAL_TABLES = ("referral_location_rtree", "referral_search_point", "referral_search_term")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
    """Compare only the plugin's own tables, and leave out the spatial indexes the
    migrations create on one backend only (SQLite R*Tree, PostGIS geography and the
    per-modality search table)."""
    name = name or ""
    if type_ == "table":
        return (
            name.startswith("referral_")
            and name != VERSION_TABLE
            and not name.startswith(SPATIAL_TABLES)
        )
    if type_ == "column":
        return not name.startswith("geog")  # geog and its unit vector geog_x/y/z
    if type_ == "index":
        return "geog" not in name
    return True


def migrations_path() -> Path:
    """Where the Alembic scripts are: inside the wheel, or the repository's migrations/."""
    try:
        return Path(str(resources.files("referral.migrations")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    if engine is not None:
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(command.upgrade, engine, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(command.downgrade, engine, revision)


def _run(step: Any, engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        step(config, revision)


def sync_taxonomy(session: Session, config: dict[str, Any]) -> None:
    """Insert or rename the configured modalities, conditions and funds.

    Entries removed from config stay in the database: listings may still use them.
    """
    for model, key in (
        (Modality, "REFERRAL_MODALITIES"),
        (Condition, "REFERRAL_CONDITIONS"),
        (HealthFund, "REFERRAL_FUNDS"),
    ):
        existing = {row.slug: row for row in session.scalars(select(model))}
        for slug, name in config[key]:
            row = existing.get(slug)
            if row is None:
                session.add(model(slug=slug, name=name))
            elif row.name != name:
                row.name = name
    session.commit()

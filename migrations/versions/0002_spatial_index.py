"""spatial index on locations: SQLite R*Tree, PostGIS geography

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 16:30:00

SQLite: an R*Tree virtual table ``referral_location_rtree`` (id = location id, with the
practitioner id beside it) kept in
step with ``referral_location`` by triggers, so every write path (ORM, bulk SQL, foreign
key cascades) updates it. PostgreSQL: a generated ``geog`` geography column, a GiST
index for ``ORDER BY geog <-> point`` and ``ST_DWithin``. Neither is in the models:
``referral.migrate.include_object`` leaves them out of the autogenerate comparison.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_UP = [
    # +practitioner_id: an auxiliary column, so filters run before the location is read
    "CREATE VIRTUAL TABLE referral_location_rtree USING rtree("
    "id, min_lat, max_lat, min_lon, max_lon, +practitioner_id)",
    "INSERT INTO referral_location_rtree (id, min_lat, max_lat, min_lon, max_lon, practitioner_id)"
    " SELECT id, lat, lat, lon, lon, practitioner_id FROM referral_location",
    """CREATE TRIGGER referral_location_rtree_insert AFTER INSERT ON referral_location
    BEGIN
        INSERT INTO referral_location_rtree
            (id, min_lat, max_lat, min_lon, max_lon, practitioner_id)
        VALUES (new.id, new.lat, new.lat, new.lon, new.lon, new.practitioner_id);
    END""",
    """CREATE TRIGGER referral_location_rtree_update AFTER UPDATE OF id, lat, lon, practitioner_id
    ON referral_location
    BEGIN
        DELETE FROM referral_location_rtree WHERE id = old.id;
        INSERT INTO referral_location_rtree
            (id, min_lat, max_lat, min_lon, max_lon, practitioner_id)
        VALUES (new.id, new.lat, new.lat, new.lon, new.lon, new.practitioner_id);
    END""",
    """CREATE TRIGGER referral_location_rtree_delete AFTER DELETE ON referral_location
    BEGIN
        DELETE FROM referral_location_rtree WHERE id = old.id;
    END""",
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS referral_location_rtree_delete",
    "DROP TRIGGER IF EXISTS referral_location_rtree_update",
    "DROP TRIGGER IF EXISTS referral_location_rtree_insert",
    "DROP TABLE IF EXISTS referral_location_rtree",
]

POSTGRES_UP = [
    "CREATE EXTENSION IF NOT EXISTS postgis",
    "ALTER TABLE referral_location ADD COLUMN geog geography(Point, 4326) "
    "GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography) STORED",
    "CREATE INDEX ix_referral_location_geog ON referral_location USING gist (geog)",
]

POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_referral_location_geog",
    "ALTER TABLE referral_location DROP COLUMN IF EXISTS geog",
]


def _run(statements: dict[str, list[str]]) -> None:
    dialect = op.get_bind().dialect.name
    for statement in statements.get(dialect, []):
        op.execute(statement)


def upgrade() -> None:
    _run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP})


def downgrade() -> None:
    _run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN})

"""spatial index on locations: SQLite R*Tree, PostGIS geography

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 16:30:00

SQLite: an R*Tree virtual table ``referral_location_rtree`` (id = location id, with the
practitioner id beside it) kept in
step with ``referral_location`` by triggers, so every write path (ORM, bulk SQL, foreign
key cascades) updates it. PostgreSQL: a generated ``geog`` geography column, a GiST
index for ``ORDER BY geog <-> point`` and ``ST_DWithin``, and ``referral_search_point``
(location x modality of active practitioners, a partial GiST index per modality) kept
by triggers. None of it is in the models:
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
    # One row per (location, modality) of every active practitioner, with a GiST index per
    # modality (partial), so "nearest yoga teachers" walks only yoga teachers. Triggers
    # keep it exact on every change to a location, a status or a practitioner's modalities.
    """CREATE TABLE referral_search_point (
        location_id integer NOT NULL REFERENCES referral_location (id) ON DELETE CASCADE,
        modality_id integer NOT NULL REFERENCES referral_modality (id) ON DELETE CASCADE,
        practitioner_id integer NOT NULL,
        geog geography(Point, 4326) NOT NULL,
        PRIMARY KEY (location_id, modality_id)
    )""",
    "CREATE INDEX ix_referral_search_point_practitioner ON referral_search_point (practitioner_id)",
    """CREATE OR REPLACE FUNCTION referral_search_refresh(pid integer) RETURNS void
    LANGUAGE sql AS $$
        DELETE FROM referral_search_point WHERE practitioner_id = pid;
        INSERT INTO referral_search_point (location_id, modality_id, practitioner_id, geog)
        SELECT l.id, pm.modality_id, l.practitioner_id, l.geog
        FROM referral_location l
        JOIN referral_practitioner p ON p.id = l.practitioner_id
        JOIN referral_practitioner_modality pm ON pm.practitioner_id = p.id
        WHERE p.id = pid AND p.status = 'active';
    $$""",
    """CREATE OR REPLACE FUNCTION referral_search_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'referral_practitioner' THEN
            PERFORM referral_search_refresh(NEW.id);
        ELSE
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                PERFORM referral_search_refresh(OLD.practitioner_id);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                PERFORM referral_search_refresh(NEW.practitioner_id);
            END IF;
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER referral_search_location AFTER INSERT OR DELETE OR UPDATE OF"
    " practitioner_id, lat, lon ON referral_location"
    " FOR EACH ROW EXECUTE FUNCTION referral_search_changed()",
    "CREATE TRIGGER referral_search_status AFTER UPDATE OF status ON referral_practitioner"
    " FOR EACH ROW EXECUTE FUNCTION referral_search_changed()",
    "CREATE TRIGGER referral_search_modality AFTER INSERT OR DELETE OR UPDATE"
    " ON referral_practitioner_modality FOR EACH ROW EXECUTE FUNCTION referral_search_changed()",
    # a partial index for every modality, now and whenever one is added
    """CREATE OR REPLACE FUNCTION referral_search_index_modality() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS ix_referral_search_point_geog_%s'
            ' ON referral_search_point USING gist (geog) WHERE modality_id = %s',
            NEW.id, NEW.id);
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER referral_search_new_modality AFTER INSERT ON referral_modality"
    " FOR EACH ROW EXECUTE FUNCTION referral_search_index_modality()",
    """DO $$
    DECLARE m integer;
    BEGIN
        FOR m IN SELECT id FROM referral_modality LOOP
            EXECUTE format(
                'CREATE INDEX ix_referral_search_point_geog_%s'
                ' ON referral_search_point USING gist (geog) WHERE modality_id = %s', m, m);
        END LOOP;
    END $$""",
    """INSERT INTO referral_search_point (location_id, modality_id, practitioner_id, geog)
    SELECT l.id, pm.modality_id, l.practitioner_id, l.geog
    FROM referral_location l
    JOIN referral_practitioner p ON p.id = l.practitioner_id
    JOIN referral_practitioner_modality pm ON pm.practitioner_id = p.id
    WHERE p.status = 'active'""",
]

POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS referral_search_new_modality ON referral_modality",
    "DROP TRIGGER IF EXISTS referral_search_modality ON referral_practitioner_modality",
    "DROP TRIGGER IF EXISTS referral_search_status ON referral_practitioner",
    "DROP TRIGGER IF EXISTS referral_search_location ON referral_location",
    "DROP FUNCTION IF EXISTS referral_search_index_modality()",
    "DROP FUNCTION IF EXISTS referral_search_changed()",
    "DROP FUNCTION IF EXISTS referral_search_refresh(integer)",
    "DROP TABLE IF EXISTS referral_search_point",
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

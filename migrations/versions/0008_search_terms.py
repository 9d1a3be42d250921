"""search terms on a grid: every filter value's locations, nearest-first by B-tree

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:45:00

``referral_search_term`` holds one row per (filter value, location) of every active
practitioner: the value as a short term (``*`` every location, ``m:<modality id>``,
``c:<condition id>``, ``f:<fund id>``, ``l:<language code>``, ``h`` visits at home with a
radius), the location's grid cell (0.01 degree squares, numbered row by row), its point, its
home-visit radius when the practitioner visits, and the accepting and telehealth flags.
The primary key (term, cell, location) makes "this value's locations in these cells" a few
B-tree range reads on both databases (a box is one range per row of cells), so a rare value
is walked nearest-first among its own locations and counted without reading anyone else.

Triggers keep it exact on every write path (ORM, bulk SQL, foreign-key cascades): any change
to a location, a practitioner's status or flags, or one of their modality, condition, fund
or language links rewrites that practitioner's rows. Like the spatial index it is not in the
models (``referral.migrate.include_object`` leaves it out of the comparison).
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: every trigger that rewrites a practitioner's rows: (name, table, event, practitioner ids)
TRIGGERS = [
    ("location_insert", "referral_location", "INSERT", ("NEW.practitioner_id",)),
    ("location_delete", "referral_location", "DELETE", ("OLD.practitioner_id",)),
    (
        "location_update",
        "referral_location",
        "UPDATE OF practitioner_id, lat, lon, home_visit_radius_km",
        ("OLD.practitioner_id", "NEW.practitioner_id"),
    ),
    (
        "practitioner_update",
        "referral_practitioner",
        "UPDATE OF status, accepting_new_patients, telehealth, home_visits",
        ("NEW.id",),
    ),
    ("practitioner_delete", "referral_practitioner", "DELETE", ("OLD.id",)),
] + [
    (f"{short}_{event.lower()}", table, event, ids)
    for short, table in (
        ("modality", "referral_practitioner_modality"),
        ("condition", "referral_practitioner_condition"),
        ("fund", "referral_practitioner_fund"),
        ("language", "referral_practitioner_language"),
    )
    for event, ids in (
        ("INSERT", ("NEW.practitioner_id",)),
        ("DELETE", ("OLD.practitioner_id",)),
        ("UPDATE", ("OLD.practitioner_id", "NEW.practitioner_id")),
    )
]


def cell_sql(dialect: str) -> str:
    """The grid cell of location ``l``; the same arithmetic as ``referral.search.grid``."""
    if dialect == "postgresql":
        return (
            "LEAST(floor((l.lat + 90.0) * 100)::integer, 17999) * 36000"
            " + LEAST(floor((l.lon + 180.0) * 100)::integer, 35999)"
        )
    return (
        "min(CAST((l.lat + 90.0) * 100 AS INTEGER), 17999) * 36000"
        " + min(CAST((l.lon + 180.0) * 100 AS INTEGER), 35999)"
    )


def fill_sql(dialect: str, practitioner: str | None = None) -> str:
    """INSERT the rows of every active practitioner, or of the one ``practitioner`` (SQL)."""
    only = f" AND practitioner_id = {practitioner}" if practitioner else ""
    only_p = f" AND p.id = {practitioner}" if practitioner else ""
    only_id = f" WHERE id = {practitioner}" if practitioner else ""
    visits = "WHERE home_visits" + (f" AND id = {practitioner}" if practitioner else "")
    return (
        "INSERT INTO referral_search_term (term, cell, location_id, practitioner_id,"
        " lat, lon, visit_km, accepting, telehealth)"
        f" SELECT x.term, {cell_sql(dialect)}, l.id, l.practitioner_id, l.lat, l.lon,"
        " CASE WHEN p.home_visits THEN l.home_visit_radius_km END,"
        " p.accepting_new_patients, p.telehealth"
        " FROM ("
        f"SELECT '*' AS term, id AS pid FROM referral_practitioner{only_id}"
        " UNION ALL SELECT 'm:' || modality_id, practitioner_id"
        f" FROM referral_practitioner_modality WHERE 1 = 1{only}"
        " UNION ALL SELECT 'c:' || condition_id, practitioner_id"
        f" FROM referral_practitioner_condition WHERE 1 = 1{only}"
        " UNION ALL SELECT 'f:' || fund_id, practitioner_id"
        f" FROM referral_practitioner_fund WHERE 1 = 1{only}"
        " UNION ALL SELECT 'l:' || code, practitioner_id"
        f" FROM referral_practitioner_language WHERE 1 = 1{only}"
        f" UNION ALL SELECT 'h', id FROM referral_practitioner {visits}"
        ") AS x"
        " JOIN referral_practitioner AS p ON p.id = x.pid"
        " JOIN referral_location AS l ON l.practitioner_id = p.id"
        f" WHERE p.status = 'active'{only_p}"
        " AND (x.term <> 'h' OR l.home_visit_radius_km IS NOT NULL)"
    )


def _table(dialect: str) -> list[str]:
    real = "double precision" if dialect == "postgresql" else "REAL"
    flag = "boolean" if dialect == "postgresql" else "BOOLEAN"
    key = "PRIMARY KEY (term, cell, location_id)"
    if dialect == "postgresql":  # index-only scans: the walk reads nothing but the index
        key += " INCLUDE (practitioner_id, lat, lon, visit_km, accepting, telehealth)"
    return [
        "CREATE TABLE referral_search_term ("
        " term varchar(24) NOT NULL, cell integer NOT NULL,"
        " location_id integer NOT NULL REFERENCES referral_location (id) ON DELETE CASCADE,"
        f" practitioner_id integer NOT NULL, lat {real} NOT NULL, lon {real} NOT NULL,"
        f" visit_km {real}, accepting {flag} NOT NULL, telehealth {flag} NOT NULL, {key})"
        + (" WITHOUT ROWID" if dialect == "sqlite" else ""),
        "CREATE INDEX ix_referral_search_term_practitioner"
        " ON referral_search_term (practitioner_id)",
    ]


def _refresh(dialect: str, practitioner: str) -> list[str]:
    return [
        f"DELETE FROM referral_search_term WHERE practitioner_id = {practitioner}",
        fill_sql(dialect, practitioner),
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _table(dialect):
        op.execute(statement)
    if dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION referral_search_term_refresh(pid integer) RETURNS void"
            " LANGUAGE sql AS $$ " + "; ".join(_refresh(dialect, "pid")) + " $$"
        )
        op.execute(
            """CREATE OR REPLACE FUNCTION referral_search_term_changed() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_TABLE_NAME = 'referral_practitioner' THEN
                    IF TG_OP = 'DELETE' THEN
                        PERFORM referral_search_term_refresh(OLD.id);
                    ELSE
                        PERFORM referral_search_term_refresh(NEW.id);
                    END IF;
                ELSE
                    IF TG_OP IN ('UPDATE', 'DELETE') THEN
                        PERFORM referral_search_term_refresh(OLD.practitioner_id);
                    END IF;
                    IF TG_OP IN ('INSERT', 'UPDATE') THEN
                        PERFORM referral_search_term_refresh(NEW.practitioner_id);
                    END IF;
                END IF;
                RETURN NULL;
            END $$"""
        )
        for name, table, event, _ in TRIGGERS:
            op.execute(
                f"CREATE TRIGGER referral_search_term_{name} AFTER {event}"
                f" ON {table} FOR EACH ROW EXECUTE FUNCTION referral_search_term_changed()"
            )
    else:
        for name, table, event, ids in TRIGGERS:
            body = " ".join(f"{s};" for pid in ids for s in _refresh(dialect, pid))
            op.execute(
                f"CREATE TRIGGER referral_search_term_{name} AFTER {event} ON {table}"
                f" BEGIN {body} END"
            )
    op.execute(fill_sql(dialect))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, table, _, _ in TRIGGERS:
        suffix = f" ON {table}" if dialect == "postgresql" else ""
        op.execute(f"DROP TRIGGER IF EXISTS referral_search_term_{name}{suffix}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS referral_search_term_changed()")
        op.execute("DROP FUNCTION IF EXISTS referral_search_term_refresh(integer)")
    op.execute("DROP TABLE IF EXISTS referral_search_term")

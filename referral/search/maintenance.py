"""Keeping the search's structures fit after bulk writes, and what the form offers."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from referral.languages import codes_of, display_name
from referral.search import grid
from referral.search.sql import _driver, _marker


def optimize(session: Session) -> None:
    """Lay the index out for reading and refresh the planner's statistics; commits.

    PostgreSQL: ``referral_search_point`` is rewritten in modality, then geohash order,
    so the matches around a point share a few pages instead of one page each (the 25 km
    count at 100,000 listings: 1.8 -> 1.0 ms). Rows written later go at the end: run it
    after a bulk import. The rewrite locks the table, so searches wait for it (a second
    or two per 100,000 listings). SQLite: ``PRAGMA optimize``.
    """
    connection = _driver(session)
    if session.get_bind().dialect.name == "postgresql":
        connection.execute("LOCK TABLE referral_search_point IN ACCESS EXCLUSIVE MODE")
        connection.execute(
            "CREATE TEMP TABLE referral_search_sorted ON COMMIT DROP AS"
            " SELECT * FROM referral_search_point"
            " ORDER BY modality_id, ST_GeoHash(geog::geometry, 12), location_id"
        )
        connection.execute("TRUNCATE referral_search_point")
        columns = "location_id, modality_id, practitioner_id, geog"  # the rest are generated
        connection.execute(
            f"INSERT INTO referral_search_point ({columns})"
            f" SELECT {columns} FROM referral_search_sorted"
        )
        connection.execute("ANALYZE referral_search_point")
    else:
        connection.execute("PRAGMA optimize")
    session.commit()


def listed_languages(session: Session) -> list[dict[str, str]]:
    """The languages practitioners with an active listing speak, as ``{"code", "name"}``
    sorted by name: what the search form offers."""
    rows = _driver(session).execute(
        "SELECT DISTINCT pl.code FROM referral_practitioner_language AS pl"
        " JOIN referral_practitioner AS p ON p.id = pl.practitioner_id"
        " WHERE p.status = 'active'"
    )
    languages = [{"code": code, "name": display_name(code)} for (code,) in rows]
    return sorted(languages, key=lambda language: (language["name"].casefold(), language["code"]))


def refresh_after_bulk_load(session: Session) -> None:
    """Rebuild what the ORM and the triggers keep on every write, for a bulk load that
    wrote around them: the language codes from every practitioner's language names (only
    when they differ), then the search-term grid (:func:`referral.search.grid.rebuild`).
    Commits."""
    connection = _driver(session)
    rows = connection.execute("SELECT id, languages FROM referral_practitioner").fetchall()
    mark = _marker(session.get_bind().dialect.name)
    links = []
    for practitioner_id, languages in rows:
        if isinstance(languages, str):
            languages = json.loads(languages)
        links += [(practitioner_id, code) for code in codes_of(languages or [])]
    existing = connection.execute(
        "SELECT practitioner_id, code FROM referral_practitioner_language"
    ).fetchall()
    if set(map(tuple, existing)) != set(links):
        connection.execute("DELETE FROM referral_practitioner_language")
        cursor = connection.cursor()
        params = [{"p": p, "c": c} for p, c in links]
        cursor.executemany(
            "INSERT INTO referral_practitioner_language (practitioner_id, code)"
            f" VALUES ({mark('p')}, {mark('c')})",
            params,
        )
    grid.rebuild(session)
    session.commit()

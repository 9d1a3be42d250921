"""A page's hits: what each result card shows, read in one statement and ranked."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from sqlalchemy.orm import Session

from referral.search.records import Cards, Hit, LocationSummary, PractitionerSummary, Ranked, Term
from referral.search.sql import _driver


def _page(session: Session, ranked: Ranked, cards: Cards | None) -> list[Hit]:
    """The hits of ``ranked``: from the cards the index brought, else loaded now."""
    return _hits(ranked, cards) if cards is not None else _load(session, ranked)


def _load(session: Session, ranked: Ranked) -> list[Hit]:
    """A page's hits from one statement (when the index did not bring the cards)."""
    if not ranked:
        return []
    dialect = session.get_bind().dialect.name
    params: dict[str, Any] = {}
    if dialect == "postgresql":
        params["ids"] = [location_id for _, _, location_id in ranked]
        where = "l.id = ANY(%(ids)s)"
    else:
        for n, (_, _, location_id) in enumerate(ranked):
            params[f"id{n}"] = location_id
        where = f"l.id IN ({', '.join(f':id{n}' for n in range(len(ranked)))})"
    sql = (
        f"SELECT {_card_columns(dialect, 'l')} FROM referral_location AS l"
        f" JOIN referral_practitioner AS p ON p.id = l.practitioner_id WHERE {where}"
    )
    return _hits(ranked, {row[0]: row for row in _driver(session).execute(sql, params)})


@cache  # the same few strings every search
def _card_columns(dialect: str, location: str) -> str:
    """What a hit shows: the location (alias ``location``), its practitioner (``p``), and
    the practitioner's modalities, conditions and funds as ``[slug, name]`` pairs: a 2-D text
    array on PostgreSQL (psycopg reads it in C; JSON took a tenth of a search's Python),
    a JSON array on SQLite."""
    if dialect == "postgresql":
        terms = "array_agg(ARRAY[t.slug, t.name])"
    else:
        terms = "json_group_array(json_array(t.slug, t.name))"
    loc = location
    return (
        f"{loc}.id, {loc}.name, {loc}.suburb, {loc}.state, {loc}.postcode, {loc}.country,"
        f" {loc}.lat, {loc}.lon, {loc}.home_visit_radius_km,"
        " p.id, p.name, p.accepting_new_patients, p.home_visits, p.telehealth,"
        f" (SELECT {terms} FROM referral_practitioner_modality AS pm"
        "  JOIN referral_modality AS t ON t.id = pm.modality_id"
        "  WHERE pm.practitioner_id = p.id),"
        f" (SELECT {terms} FROM referral_practitioner_condition AS pc"
        "  JOIN referral_condition AS t ON t.id = pc.condition_id"
        "  WHERE pc.practitioner_id = p.id),"
        " p.business_name, p.languages,"
        f" (SELECT {terms} FROM referral_practitioner_fund AS pf"
        "  JOIN referral_health_fund AS t ON t.id = pf.fund_id"
        "  WHERE pf.practitioner_id = p.id),"
        " p.capacity_status, p.waitlist_weeks, p.capacity_confirmed_at"
    )


def _hits(ranked: Ranked, cards: Cards) -> list[Hit]:
    """Hits in ``ranked`` order from rows of :func:`_card_columns`."""
    hits = []
    for distance, _, location_id in ranked:
        row = cards.get(location_id)
        if row is None:  # deleted between the index look-up and the page's statement
            continue
        location = LocationSummary(*row[:6], float(row[6]), float(row[7]), row[8])
        practitioner = PractitionerSummary(
            row[9],
            row[10],
            bool(row[11]),
            bool(row[12]),
            _terms(row[14]),
            _terms(row[15]),
            bool(row[13]),
            row[16],
            _names(row[17]),
            _terms(row[18]),
            *row[19:22],
        )
        hits.append(Hit(practitioner, location, distance))
    return hits


def _names(stored: str | list[str] | None) -> tuple[str, ...]:
    """A JSON list of names (text from SQLite, a list from psycopg's ``json``)."""
    if isinstance(stored, str):
        stored = json.loads(stored)
    return tuple(stored or ())


def _terms(aggregated: str | list[list[str]] | None) -> tuple[Term, ...]:
    """Terms from ``[slug, name]`` pairs (JSON text from SQLite, lists from psycopg),
    sorted by name here, not by the database: collations differ."""
    if isinstance(aggregated, str):
        aggregated = json.loads(aggregated)
    terms = (Term(slug, name) for slug, name in aggregated or ())
    return tuple(sorted(terms, key=lambda t: (t.name.casefold(), t.slug)))


def _first_per_practitioner(rows: Any, need: int | None = None) -> Ranked:
    """Keep each practitioner's nearest row, ranked by (distance, practitioner, location)."""
    best: dict[int, tuple[float, int, int]] = {}
    for distance, practitioner_id, location_id in rows:
        key = (distance, practitioner_id, location_id)
        current = best.get(practitioner_id)
        if current is None or key < current:
            best[practitioner_id] = key
    ranked = sorted(best.values())
    return ranked if need is None else ranked[:need]

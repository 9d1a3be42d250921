"""The SQL every plan and backend shares: the DB-API connection, placeholders in the
driver's style, the filters as WHERE conditions, and the modality ids.

Only fixed fragments go into the SQL text; every value is a bound parameter except
integers our code computes (modality ids read from the database, row limits).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

from geopy.distance import EARTH_RADIUS
from sqlalchemy.orm import Session

from referral.languages import code_for, matching_codes
from referral.search.records import Filters

#: half the earth's circumference: no two points are farther apart
EARTH_HALF_KM = math.pi * EARTH_RADIUS
#: the sphere PostGIS measures geography on when told not to use the spheroid (WGS84's
#: mean radius, (2a + b) / 3), so a unit-vector test agrees with ``ST_DWithin(..., false)``
POSTGIS_SPHERE_M = 6371008.7714
#: the search point as PostGIS geography, from the ``lat``/``lon`` parameters
POSTGIS_POINT = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography"


def _filter_sql(
    filters: Filters, params: dict[str, Any], dialect: str, practitioner_id: str
) -> list[str]:
    """WHERE conditions on ``p`` (practitioner) and ``l`` (location) for the filters,
    the cheapest-to-refuse first; ``practitioner_id`` is the column to correlate on.

    Only these fixed fragments go into the SQL text; every value is a parameter.
    """
    mark = _marker(dialect)
    where = []
    if filters.modalities:
        names = []
        for n, slug in enumerate(filters.modalities):
            params[f"modality{n}"] = slug
            names.append(mark(f"modality{n}"))
        where.append(
            "EXISTS (SELECT 1 FROM referral_practitioner_modality pm"
            f" WHERE pm.practitioner_id = {practitioner_id} AND pm.modality_id IN"
            f" (SELECT m.id FROM referral_modality m WHERE m.slug IN ({', '.join(names)})))"
        )
    if filters.condition:
        params["condition"] = filters.condition
        where.append(
            "EXISTS (SELECT 1 FROM referral_practitioner_condition pc"
            " JOIN referral_condition c ON c.id = pc.condition_id"
            f" WHERE pc.practitioner_id = {practitioner_id} AND c.slug = {mark('condition')})"
        )
    if filters.fund:
        params["fund"] = filters.fund
        where.append(
            "EXISTS (SELECT 1 FROM referral_practitioner_fund pf"
            " JOIN referral_health_fund f ON f.id = pf.fund_id"
            f" WHERE pf.practitioner_id = {practitioner_id} AND f.slug = {mark('fund')})"
        )
    where.append(f"p.status = {mark('status')}")
    params["status"] = "active"
    if filters.accepting:
        params["accepting"] = True
        where.append(f"p.accepting_new_patients = {mark('accepting')}")
    if filters.home_visits:
        params["home_visits"] = True
        where.append(
            f"p.home_visits = {mark('home_visits')} AND l.home_visit_radius_km IS NOT NULL"
        )
    if filters.telehealth:
        params["telehealth"] = True
        where.append(f"p.telehealth = {mark('telehealth')}")
    if filters.language:
        marks = []
        for n, code in enumerate(_language_codes(filters.language)):
            params[f"language{n}"] = code
            marks.append(mark(f"language{n}"))
        where.append(
            "EXISTS (SELECT 1 FROM referral_practitioner_language pl"
            f" WHERE pl.practitioner_id = {practitioner_id} AND pl.code IN ({', '.join(marks)}))"
        )
    return where


def _language_codes(language: str) -> tuple[str, ...]:
    """The codes a language filter matches (an unknown name matches only itself)."""
    code = code_for(language)
    return matching_codes(code) if code else (language.strip().lower(),)


def _marker(dialect: str) -> Callable[[str], str]:
    """A named placeholder in the driver's own style (sqlite3 ``:x``, psycopg ``%(x)s``)."""
    if dialect == "postgresql":
        return lambda name: f"%({name})s"
    return lambda name: f":{name}"


def _driver(session: Session) -> Any:
    """The DB-API connection of the session's transaction: the id query skips
    SQLAlchemy's result machinery, which would cost as much as the query."""
    return session.connection().connection.driver_connection


def modality_ids(session: Session, slugs: tuple[str, ...]) -> dict[str, int]:
    """The ids of the modalities with these slugs (unknown slugs are left out).

    Modalities are only ever added (:func:`referral.migrate.sync_taxonomy` inserts or
    renames, never deletes or re-keys), so a slug's id, once found, holds for the life of
    the process: it is remembered per engine, and a search by modality asks the database
    only about slugs it has not seen. Unknown slugs are asked every time, so a modality
    added later is found at once.
    """
    bind = session.get_bind()
    known = _MODALITY_IDS.setdefault(getattr(bind, "engine", bind), {})
    missing = [slug for slug in slugs if slug not in known]
    if missing:
        mark = _marker(bind.dialect.name)
        params = {f"slug{n}": slug for n, slug in enumerate(missing)}
        marks = ", ".join(mark(name) for name in params)
        rows = _driver(session).execute(
            f"SELECT slug, id FROM referral_modality WHERE slug IN ({marks})", params
        )
        known.update({slug: int(id_) for slug, id_ in rows})
    return {slug: known[slug] for slug in slugs if slug in known}


_MODALITY_IDS: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()


def postgis_params(lat: float, lon: float, radius_km: float) -> dict[str, Any]:
    """The point and radius, and for the PostGIS unit-vector radius test the point's unit
    vector and the cosine of the radius's angle at the earth's centre."""
    phi, lam = math.radians(lat), math.radians(lon)
    angle = min(radius_km * 1000 / POSTGIS_SPHERE_M, math.pi)
    return {
        "lat": lat,
        "lon": lon,
        "radius_m": radius_km * 1000,
        "ux": math.cos(phi) * math.cos(lam),
        "uy": math.cos(phi) * math.sin(lam),
        "uz": math.sin(phi),
        "cos_r": math.cos(angle),
    }

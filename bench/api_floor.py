"""The ceiling for the API throughput figure: the same search with nothing else.

One Flask route, one autocommit psycopg connection per worker and one SQL statement that
walks the modality's index for the nearest 14, joins the card fields and counts the
matches in the radius (as ``referral.search`` does on PostgreSQL) — no SQLAlchemy, no
transaction, no validation, no rate limiter, no login or embedding hooks, fewer fields.
What gunicorn serves from this on a machine is as fast as a Flask search API can go
there; ``bench/README.md`` compares the plugin with it in the same run.

    FLOOR_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/referral_bench \\
        .venv/bin/gunicorn -w 3 -b 127.0.0.1:8001 --chdir bench api_floor:app &
    REFERRAL_URL_PREFIX=/floor wrk -t2 -c32 -d20s -s bench/wrk_search.lua http://127.0.0.1:8001
"""

from __future__ import annotations

import math
import os
from typing import Any

import psycopg
from flask import Flask, jsonify, request

app = Flask(__name__)
POINT = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography"
SPHERE_M = 6371008.7714
_state: dict[str, Any] = {}


def _sql(modality_id: int) -> str:
    m = int(modality_id)
    return (
        "WITH near AS MATERIALIZED (SELECT s.location_id, s.practitioner_id, s.geog"
        f" FROM referral_search_point s WHERE s.modality_id = {m}"
        f" ORDER BY s.geog <-> {POINT} LIMIT 14)"
        f" SELECT ST_Distance(n.geog, {POINT}, false) / 1000, l.id, l.suburb, l.lat, l.lon,"
        " p.id, p.name, (SELECT json_agg(t.slug) FROM referral_practitioner_modality pm"
        "  JOIN referral_modality t ON t.id = pm.modality_id WHERE pm.practitioner_id = p.id),"
        " (SELECT count(DISTINCT s.practitioner_id) FROM referral_search_point s"
        f"  WHERE s.modality_id = {m} AND s.geog && _ST_Expand({POINT}, %(r)s)"
        "  AND s.geog_x * %(ux)s + s.geog_y * %(uy)s + s.geog_z * %(uz)s >= %(c)s)"
        " FROM near n JOIN referral_location l ON l.id = n.location_id"
        " JOIN referral_practitioner p ON p.id = n.practitioner_id ORDER BY 1"
    )


@app.get("/floor/api/v1/practitioners")
def practitioners() -> Any:
    if "conn" not in _state:
        conn = psycopg.connect(os.environ["FLOOR_DATABASE_URL"], autocommit=True)
        _state["conn"] = conn
        _state["ids"] = dict(conn.execute("SELECT slug, id FROM referral_modality").fetchall())
    lat, lon = float(request.args["lat"]), float(request.args["lon"])
    radius_m = float(request.args.get("radius_km", 25)) * 1000
    phi, lam = math.radians(lat), math.radians(lon)
    params = {
        "lat": lat,
        "lon": lon,
        "r": radius_m,
        "ux": math.cos(phi) * math.cos(lam),
        "uy": math.cos(phi) * math.sin(lam),
        "uz": math.sin(phi),
        "c": math.cos(radius_m / SPHERE_M),
    }
    sql = _sql(_state["ids"][request.args["modality"]])
    rows = [r for r in _state["conn"].execute(sql, params) if r[0] <= radius_m / 1000][:10]
    return jsonify(
        total=rows[0][-1] if rows else 0,
        results=[
            {
                "id": r[5],
                "name": r[6],
                "modalities": r[7] or [],
                "distance_km": round(r[0], 3),
                "location": {"id": r[1], "suburb": r[2], "lat": r[3], "lon": r[4]},
            }
            for r in rows
        ],
    )

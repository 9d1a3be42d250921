"""Benchmark nearest-10 search with a modality filter at directory scale.

Builds ``--rows`` locations (one practitioner each, one of five modalities, points
clustered around Australian cities), then times ``--queries`` random searches through
``referral.search.search`` against two references from the same run: the naive scan a
user would write first (load the modality's rows, haversine in Python, sort) and an
in-memory scipy cKDTree (the near-limit). The last line printed is one JSON object.

    python bench/search.py --rows 100000 --backend sqlite
    python bench/search.py --rows 1000000 --backend postgresql \\
        --url postgresql+psycopg://postgres@127.0.0.1:5432/referral_bench

The database is built in a child process, so the peak RSS reported for the search phase
is the searching process's own; ``--reuse`` keeps a database that already holds the rows.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from referral import migrate
from referral.config import DEFAULT_CONDITIONS, DEFAULT_FUNDS, DEFAULT_MODALITIES
from referral.db import make_engine
from referral.geo.distance import great_circle_km
from referral.models import Location, Modality, practitioner_modality
from referral.search import Filters, _index_for, optimize, search

MODALITIES = ["remedial-massage", "physiotherapy", "myotherapy", "osteopathy", "yoga"]
#: (name, lat, lon, share of listings, spread in km)
CITIES = [
    ("Sydney", -33.8688, 151.2093, 0.25, 25.0),
    ("Melbourne", -37.8136, 144.9631, 0.24, 25.0),
    ("Brisbane", -27.4698, 153.0251, 0.12, 20.0),
    ("Perth", -31.9523, 115.8613, 0.10, 18.0),
    ("Adelaide", -34.9285, 138.6007, 0.06, 14.0),
    ("Gold Coast", -28.0167, 153.4000, 0.03, 10.0),
    ("Canberra", -35.2809, 149.1300, 0.02, 8.0),
    ("Newcastle", -32.9283, 151.7817, 0.02, 8.0),
    ("Hobart", -42.8821, 147.3272, 0.01, 6.0),
    ("Darwin", -12.4634, 130.8456, 0.01, 6.0),
]
RURAL_SHARE = 0.14  # the rest: anywhere in the continent's box
AU_BOX = (-39.0, -11.0, 114.0, 153.0)
CHUNK = 50_000
#: status, created_at, updated_at of every bench listing
FIXED = ("active", "now", "now")


def random_point(rng: random.Random) -> tuple[float, float]:
    """A point where people live: mostly around cities, some anywhere in Australia."""
    r = rng.random()
    for _, lat, lon, share, spread in CITIES:
        if r < share:
            dlat = rng.gauss(0, spread) / 111.2
            dlon = rng.gauss(0, spread) / (111.2 * math.cos(math.radians(lat)))
            return lat + dlat, lon + dlon
        r -= share
    return rng.uniform(*AU_BOX[:2]), rng.uniform(*AU_BOX[2:])


def listings(rows: int, seed: int, modality_ids: list[int]) -> Iterator[tuple]:
    """(id, lat, lon, modality_id, accepting) for every listing, generated lazily."""
    rng = random.Random(seed)
    for n in range(1, rows + 1):
        lat, lon = random_point(rng)
        yield n, lat, lon, modality_ids[n % len(modality_ids)], rng.random() < 0.8


def build(url: str, rows: int, seed: int) -> None:
    """Empty the directory and bulk-load ``rows`` listings, as fast as the driver allows."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as session:
        migrate.sync_taxonomy(
            session,
            {
                "REFERRAL_MODALITIES": DEFAULT_MODALITIES,
                "REFERRAL_CONDITIONS": DEFAULT_CONDITIONS,
                "REFERRAL_FUNDS": DEFAULT_FUNDS,
            },
        )
        ids = dict(session.execute(select(Modality.slug, Modality.id)).all())
    modality_ids = [ids[slug] for slug in MODALITIES]
    data = listings(rows, seed, modality_ids)
    if engine.dialect.name == "postgresql":
        _build_postgres(engine, data)
    else:
        _build_sqlite(engine, data)
    engine.dispose()


def _build_sqlite(engine: Engine, data: Iterator[tuple]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("DELETE FROM referral_practitioner")  # cascades to locations, R*Tree
        while chunk := [next(data, None) for _ in range(CHUNK)]:
            chunk = [row for row in chunk if row is not None]
            if not chunk:
                break
            cur.executemany(
                "INSERT INTO referral_practitioner (id, name, bio, languages,"
                " accepting_new_patients, telehealth, home_visits, status, created_at,"
                " updated_at) VALUES (?, 'Bench ' || ?, '', '[\"English\"]', ?, 0, 0,"
                " 'active', datetime('now'), datetime('now'))",
                [(n, n, accepting) for n, _, _, _, accepting in chunk],
            )
            cur.executemany(
                "INSERT INTO referral_location (id, practitioner_id, country, lat, lon)"
                " VALUES (?, ?, 'AU', ?, ?)",
                [(n, n, lat, lon) for n, lat, lon, _, _ in chunk],
            )
            cur.executemany(
                "INSERT INTO referral_practitioner_modality (practitioner_id, modality_id)"
                " VALUES (?, ?)",
                [(n, m) for n, _, _, m, _ in chunk],
            )
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def _build_postgres(engine: Engine, data: Iterator[tuple]) -> None:
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            cur.execute("TRUNCATE referral_practitioner RESTART IDENTITY CASCADE")
            # bulk load: no per-row triggers; the search table is filled in one go below
            cur.execute("SET session_replication_role = replica")
            rows = list(data)
            with cur.copy(
                "COPY referral_practitioner (id, name, bio, languages, accepting_new_patients,"
                " telehealth, home_visits, status, created_at, updated_at) FROM STDIN"
            ) as copy:
                for n, _, _, _, accepting in rows:
                    name = f"Bench {n}"
                    copy.write_row((n, name, "", '["English"]', accepting, False, False, *FIXED))
            with cur.copy(
                "COPY referral_location (id, practitioner_id, country, lat, lon) FROM STDIN"
            ) as copy:
                for n, lat, lon, _, _ in rows:
                    copy.write_row((n, n, "AU", lat, lon))
            with cur.copy(
                "COPY referral_practitioner_modality (practitioner_id, modality_id) FROM STDIN"
            ) as copy:
                for n, _, _, m, _ in rows:
                    copy.write_row((n, m))
            cur.execute("SET session_replication_role = DEFAULT")
            finish_postgres_load(cur)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE referral_practitioner")
        conn.execute("VACUUM ANALYZE referral_location")
        conn.execute("VACUUM ANALYZE referral_practitioner_modality")
        conn.execute("VACUUM ANALYZE referral_search_point")
        conn.autocommit = False
    finally:
        raw.close()


def finish_postgres_load(cur: Any) -> None:
    """After the COPY: fill the per-modality search table from the copied rows and move
    the id sequences past the copied ids (shared by bench/search.py and bench/filters.py)."""
    cur.execute(
        "INSERT INTO referral_search_point"
        " (location_id, modality_id, practitioner_id, geog)"
        " SELECT l.id, pm.modality_id, l.practitioner_id, l.geog"
        " FROM referral_location l"
        " JOIN referral_practitioner p ON p.id = l.practitioner_id"
        " JOIN referral_practitioner_modality pm ON pm.practitioner_id = p.id"
        " WHERE p.status = 'active'"
    )
    for table in ("referral_practitioner", "referral_location"):
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )


def rss_mb() -> float:
    """Resident set size now (Linux), in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def nearest10(session: Session, lat: float, lon: float, modality: str, radius_km: float):
    """The measured query: nearest 10 of one modality through the package's search()."""
    return search(
        session,
        lat,
        lon,
        radius_km=radius_km,
        filters=Filters((modality,)),
        per_page=10,
        fallback=0,
    )


def naive_nearest(session: Session, lat: float, lon: float, modality: str) -> list[int]:
    """What a user writes first: every location of the modality, distance in Python."""
    rows = session.execute(
        select(Location.id, Location.lat, Location.lon)
        .join(
            practitioner_modality,
            practitioner_modality.c.practitioner_id == Location.practitioner_id,
        )
        .join(Modality, Modality.id == practitioner_modality.c.modality_id)
        .where(Modality.slug == modality)
    ).all()
    ranked = sorted((great_circle_km(lat, lon, plat, plon), i) for i, plat, plon in rows)
    return [i for _, i in ranked[:10]]


def unit_vectors(points: list[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """Points on the unit sphere: straight-line order there is great-circle order."""
    out = []
    for lat, lon in points:
        p, lam = math.radians(lat), math.radians(lon)
        out.append((math.cos(p) * math.cos(lam), math.cos(p) * math.sin(lam), math.sin(p)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--naive-queries", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="database URL (default: a SQLite file under bench/)")
    parser.add_argument("--radius-km", type=float, default=500.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reuse", action="store_true", help="keep a database of --rows rows")
    parser.add_argument(
        "--optimize",
        action="store_true",
        help="run referral.search.optimize first, as the README advises after a bulk import",
    )
    args = parser.parse_args(argv)

    url = args.url
    if args.backend == "sqlite" and not url:
        url = f"sqlite:///{Path(__file__).parent / f'.data-{args.rows}.sqlite'}"
    if not url or not url.startswith(args.backend):
        parser.error(f"--url must be a {args.backend} URL")

    engine = make_engine(url)
    existing = 0
    if args.reuse:
        migrate.upgrade(engine)  # a database kept from an earlier run gets today's schema
        try:
            with engine.connect() as conn:
                existing = conn.scalar(text("SELECT count(*) FROM referral_location"))
        except Exception:  # no schema yet
            existing = 0
    build_s = None
    if existing != args.rows:
        started = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=build, args=(url, args.rows, args.seed)
        )
        child.start()
        child.join()
        if child.exitcode:
            return child.exitcode
        build_s = round(time.perf_counter() - started, 1)
        print(f"built {args.rows} rows in {build_s} s", file=sys.stderr)

    optimize_s = None
    if args.optimize:
        started = time.perf_counter()
        with Session(engine) as session:
            optimize(session)
        optimize_s = round(time.perf_counter() - started, 1)

    rng = random.Random(args.seed + 1)
    queries = [(*random_point(rng), rng.choice(MODALITIES)) for _ in range(args.queries)]
    rss_before = rss_mb()
    with Session(engine) as session:
        for lat, lon, modality in queries[: min(50, len(queries))]:  # warm caches
            nearest10(session, lat, lon, modality, args.radius_km)
        session.expunge_all()
        times = []
        for lat, lon, modality in queries:
            started = time.perf_counter()
            results = nearest10(session, lat, lon, modality, args.radius_km)
            times.append((time.perf_counter() - started) * 1000)
            assert len(results.hits) == 10, (lat, lon, modality)
            session.expunge_all()  # no help from the identity map
        # the id + distance step alone, before any ORM object is built
        index = _index_for(session)
        index_times = []
        for lat, lon, modality in queries:
            started = time.perf_counter()
            index.nearest(session, lat, lon, args.radius_km, Filters((modality,)), 10)
            index_times.append((time.perf_counter() - started) * 1000)
        count_times = []
        for lat, lon, modality in queries[:20]:
            results = nearest10(session, lat, lon, modality, 25)
            started = time.perf_counter()
            results.total  # noqa: B018 - counted on first read
            count_times.append((time.perf_counter() - started) * 1000)
            session.expunge_all()
        rss_search = rss_mb()
        peak_search = peak_rss_mb()

        # naive reference, and a correctness check of the first answers against it
        naive_times = []
        for lat, lon, modality in queries[: args.naive_queries]:
            started = time.perf_counter()
            expected = naive_nearest(session, lat, lon, modality)
            naive_times.append((time.perf_counter() - started) * 1000)
            got = nearest10(session, lat, lon, modality, args.radius_km)
            assert [h.location.id for h in got.hits] == expected, "search disagrees with naive"
        peak_naive = peak_rss_mb()

        # in-memory KD-tree on unit vectors, one per modality
        from scipy.spatial import cKDTree

        rows = session.execute(
            select(Location.lat, Location.lon, Modality.slug)
            .join(
                practitioner_modality,
                practitioner_modality.c.practitioner_id == Location.practitioner_id,
            )
            .join(Modality, Modality.id == practitioner_modality.c.modality_id)
        ).all()
        trees = {
            m: cKDTree(unit_vectors([(la, lo) for la, lo, s in rows if s == m])) for m in MODALITIES
        }
        del rows
        kd_times = []
        for lat, lon, modality in queries:
            (vector,) = unit_vectors([(lat, lon)])
            started = time.perf_counter()
            trees[modality].query(vector, k=10)
            kd_times.append((time.perf_counter() - started) * 1000)
        total_rows = session.scalar(select(func.count()).select_from(Location))

    engine.dispose()
    p50 = statistics.median(times)
    naive_p50 = statistics.median(naive_times) if naive_times else None
    figures = {
        "rows": total_rows,
        "backend": args.backend,
        "queries": len(times),
        "p50_ms": round(p50, 3),
        "p95_ms": round(percentile(times, 0.95), 3),
        "index_p50_ms": round(statistics.median(index_times), 3),
        "naive_p50_ms": round(naive_p50, 1) if naive_p50 else None,
        "naive_queries": len(naive_times),
        "speedup_vs_naive": round(naive_p50 / p50) if naive_p50 else None,
        "kdtree_p50_ms": round(statistics.median(kd_times), 4),
        "count_25km_p50_ms": round(statistics.median(count_times), 2),
        "rss_before_search_mb": round(rss_before, 1),
        "rss_after_search_mb": round(rss_search, 1),
        "peak_rss_search_mb": round(peak_search, 1),
        "peak_rss_after_naive_mb": round(peak_naive, 1),
        "build_s": build_s,
        "optimized": args.optimize,
        "optimize_s": optimize_s,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark every filter shape a patient can ask for, rare and hostile ones included.

Builds ``--rows`` listings like ``bench/search.py`` (one location per practitioner, points
clustered around Australian cities) enriched with realistic shares: one to three of five
modalities each, a condition half of them treat and one 0.5% treat, a fund 0.2% take, a
language 5% speak and one 0.02% speak, home visits (10%, with a visit radius), telehealth,
accepting new patients. Then times ``--queries`` nearest-10 searches from random points
where people live for each shape of :data:`SHAPES`, without and with the total a page
shows, and in the same run the baseline a user would write first (the filters in SQL,
every matching location read, distance in Python, sorted) on a few of those points, each
checked to give the same ten. One JSON line per shape and total, then a summary line.

    python bench/filters.py --rows 100000 --backend sqlite
    python bench/filters.py --rows 100000 --backend postgresql \\
        --url postgresql+psycopg://postgres@127.0.0.1:5432/referral_bench
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.search import MODALITIES, finish_postgres_load, percentile, random_point
from referral import migrate
from referral import search as search_module
from referral.config import DEFAULT_CONDITIONS, DEFAULT_FUNDS, DEFAULT_MODALITIES
from referral.db import make_engine
from referral.geo.distance import great_circle_km
from referral.models import Condition, HealthFund, Modality
from referral.search import Filters, optimize, search

CHUNK = 50_000
COMMON_CONDITION, RARE_CONDITION, OTHER_CONDITION = "low-back-pain", "pregnancy", "neck-pain"
COMMON_FUND, RARE_FUND = "bupa", "hcf"
COMMON_LANGUAGE, RARE_LANGUAGE, NOBODY_LANGUAGE = "Greek", "Cantonese", "Welsh"
#: (share of practitioners, what they have)
SHARES = {
    "common_condition": 0.50,
    "rare_condition": 0.005,
    "other_condition": 0.20,
    "common_fund": 0.30,
    "rare_fund": 0.002,
    "common_language": 0.05,
    "rare_language": 0.0002,
    "home_visits": 0.10,
    "telehealth": 0.20,
    "accepting": 0.80,
}


@dataclasses.dataclass(frozen=True)
class Listing:
    id: int
    lat: float
    lon: float
    modalities: tuple[int, ...]
    conditions: tuple[int, ...]
    funds: tuple[int, ...]
    languages: tuple[str, ...]
    accepting: bool
    telehealth: bool
    home_visits: bool
    visit_km: float | None


def listings(rows: int, seed: int, ids: dict[str, dict[str, int]]) -> Iterator[Listing]:
    rng = random.Random(seed)
    modality_ids = [ids["modality"][slug] for slug in MODALITIES]
    for n in range(1, rows + 1):
        lat, lon = random_point(rng)
        modalities = tuple(sorted(rng.sample(modality_ids, rng.choice((1, 1, 2, 3)))))
        conditions = tuple(
            ids["condition"][slug]
            for slug, share in (
                (COMMON_CONDITION, SHARES["common_condition"]),
                (RARE_CONDITION, SHARES["rare_condition"]),
                (OTHER_CONDITION, SHARES["other_condition"]),
            )
            if rng.random() < share
        )
        funds = tuple(
            ids["fund"][slug]
            for slug, share in (
                (COMMON_FUND, SHARES["common_fund"]),
                (RARE_FUND, SHARES["rare_fund"]),
            )
            if rng.random() < share
        )
        languages = ["English"]
        if rng.random() < SHARES["common_language"]:
            languages.append(COMMON_LANGUAGE)
        if rng.random() < SHARES["rare_language"]:
            languages.append(RARE_LANGUAGE)
        home = rng.random() < SHARES["home_visits"]
        yield Listing(
            n,
            lat,
            lon,
            modalities,
            conditions,
            funds,
            tuple(languages),
            rng.random() < SHARES["accepting"],
            rng.random() < SHARES["telehealth"],
            home,
            round(rng.uniform(5, 30), 1) if home else None,
        )


def taxonomy_ids(session: Session) -> dict[str, dict[str, int]]:
    return {
        "modality": dict(session.execute(select(Modality.slug, Modality.id)).all()),
        "condition": dict(session.execute(select(Condition.slug, Condition.id)).all()),
        "fund": dict(session.execute(select(HealthFund.slug, HealthFund.id)).all()),
    }


def build(url: str, rows: int, seed: int) -> None:
    """Empty the directory and bulk-load ``rows`` enriched listings."""
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
        ids = taxonomy_ids(session)
    data = listings(rows, seed, ids)
    if engine.dialect.name == "postgresql":
        _build_postgres(engine, data)
    else:
        _build_sqlite(engine, data)
    with Session(engine) as session:
        after_bulk_load(session)
    if engine.dialect.name == "postgresql":  # the grid's index-only scans need it
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE referral_search_term")
    engine.dispose()


def after_bulk_load(session: Session) -> None:
    """What a bulk load that skipped the ORM must run before searching (see the README)."""
    refresh = getattr(search_module, "refresh_after_bulk_load", None)
    if refresh is not None:
        refresh(session)
    optimize(session)


def _rows(listing: Listing) -> dict[str, list[tuple]]:
    n = listing.id
    return {
        "practitioner": [
            (
                n,
                f"Bench {n}",
                json.dumps(list(listing.languages)),
                listing.accepting,
                listing.telehealth,
                listing.home_visits,
            )
        ],
        "location": [(n, n, listing.lat, listing.lon, listing.visit_km)],
        "modality": [(n, m) for m in listing.modalities],
        "condition": [(n, c) for c in listing.conditions],
        "fund": [(n, f) for f in listing.funds],
    }


TABLES = {
    "practitioner": (
        "referral_practitioner",
        "id, name, languages, accepting_new_patients, telehealth, home_visits",
    ),
    "location": ("referral_location", "id, practitioner_id, lat, lon, home_visit_radius_km"),
    "modality": ("referral_practitioner_modality", "practitioner_id, modality_id"),
    "condition": ("referral_practitioner_condition", "practitioner_id, condition_id"),
    "fund": ("referral_practitioner_fund", "practitioner_id, fund_id"),
}
#: columns every row of a table gets the same value in
FIXED = {
    "practitioner": (
        ("bio", "''"),
        ("status", "'active'"),
        ("created_at", "now"),
        ("updated_at", "now"),
    ),
    "location": (("country", "'AU'"),),
}


def _build_sqlite(engine: Engine, data: Iterator[Listing]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("DELETE FROM referral_practitioner")  # cascades to locations, R*Tree
        while chunk := [row for row in (next(data, None) for _ in range(CHUNK)) if row]:
            batches: dict[str, list[tuple]] = {key: [] for key in TABLES}
            for listing in chunk:
                for key, rows in _rows(listing).items():
                    batches[key].extend(rows)
            for key, (table, columns) in TABLES.items():
                fixed = FIXED.get(key, ())
                names = columns + "".join(f", {name}" for name, _ in fixed)
                values = ", ".join("?" for _ in columns.split(", ")) + "".join(
                    ", datetime('now')" if value == "now" else f", {value}" for _, value in fixed
                )
                cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({values})", batches[key])
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def _build_postgres(engine: Engine, data: Iterator[Listing]) -> None:
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            cur.execute("TRUNCATE referral_practitioner RESTART IDENTITY CASCADE")
            cur.execute("SET session_replication_role = replica")  # no per-row triggers
            everything = list(data)
            for key, (table, columns) in TABLES.items():
                fixed = FIXED.get(key, ())
                names = columns + "".join(f", {name}" for name, _ in fixed)
                values = tuple("now" if value == "now" else value.strip("'") for _, value in fixed)
                with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for listing in everything:
                        for row in _rows(listing)[key]:
                            copy.write_row((*row, *values))
            cur.execute("SET session_replication_role = DEFAULT")
            finish_postgres_load(cur)
        conn.commit()
        conn.autocommit = True
        for _, (table, _) in TABLES.items():
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("VACUUM ANALYZE referral_search_point")
        conn.autocommit = False
    finally:
        raw.close()


def _filters(**fields) -> Filters | None:
    """Filters with these fields, or None when this version of the search lacks one."""
    names = {f.name for f in dataclasses.fields(Filters)}
    if not set(fields) <= names:
        return None
    return Filters(**fields)


#: shape name -> (radius km, filters); the modality is drawn per query where given as "*"
SHAPES = {
    "one_modality": (50.0, {"modalities": "*"}),
    "one_modality_25km": (25.0, {"modalities": "*"}),
    "no_filter": (50.0, {}),
    "common_condition_50pct": (50.0, {"condition": COMMON_CONDITION}),
    "rare_condition_0.5pct": (50.0, {"condition": RARE_CONDITION}),
    "rare_fund_0.2pct": (50.0, {"fund": RARE_FUND}),
    "language_5pct": (50.0, {"language": COMMON_LANGUAGE}),
    "language_0.02pct": (50.0, {"language": RARE_LANGUAGE}),
    "language_nobody_lists": (50.0, {"language": NOBODY_LANGUAGE}),
    "home_visits_10pct": (50.0, {"home_visits": True}),
    "telehealth_20pct": (50.0, {"telehealth": True}),
    "modality_accepting_condition": (
        50.0,
        {"modalities": "*", "accepting": True, "condition": COMMON_CONDITION},
    ),
    "four_filters_nobody_matches": (
        50.0,
        {
            "fund": RARE_FUND,
            "language": RARE_LANGUAGE,
            "condition": RARE_CONDITION,
            "home_visits": True,
        },
    ),
}


def shape_filters(fields: dict, modality: str) -> Filters | None:
    fields = {k: ((modality,) if v == "*" else v) for k, v in fields.items()}
    return _filters(**fields)


def naive(session: Session, lat: float, lon: float, radius_km: float, filters: Filters) -> list:
    """What a user writes first: every matching location, distance in Python, sorted."""
    dialect = session.get_bind().dialect.name
    params: dict = {}
    where = search_module._filter_sql(filters, params, dialect, "p.id")
    sql = (
        "SELECT l.practitioner_id, l.id, l.lat, l.lon, l.home_visit_radius_km"
        " FROM referral_practitioner AS p JOIN referral_location AS l ON l.practitioner_id = p.id"
        f" WHERE {' AND '.join(where)}"
    )
    best: dict[int, tuple] = {}
    for pid, lid, plat, plon, visit_km in session.connection().exec_driver_sql(sql, params):
        d = great_circle_km(lat, lon, plat, plon)
        if d > radius_km or (filters.home_visits and (visit_km is None or d > visit_km)):
            continue
        key = (d, pid, lid)
        if pid not in best or key < best[pid]:
            best[pid] = key
    return [pid for _, pid, _ in sorted(best.values())[:10]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--naive-queries", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="database URL (default: a SQLite file under bench/)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep a database of --rows rows")
    parser.add_argument("--shapes", help="comma-separated shape names (default: all)")
    args = parser.parse_args(argv)

    url = args.url
    if args.backend == "sqlite" and not url:
        url = f"sqlite:///{Path(__file__).parent / f'.filters-{args.rows}.sqlite'}"
    if not url or not url.startswith(args.backend):
        parser.error(f"--url must be a {args.backend} URL")

    engine = make_engine(url)
    existing = 0
    if args.reuse:
        migrate.upgrade(engine)
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
    else:  # the build ran after_bulk_load; the migrations fill what they add
        with Session(engine) as session:
            optimize(session)

    rng = random.Random(args.seed + 1)
    points = [(*random_point(rng), rng.choice(MODALITIES)) for _ in range(args.queries)]
    wanted = args.shapes.split(",") if args.shapes else list(SHAPES)
    lines = []
    with Session(engine) as session:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        for name in wanted:
            radius_km, fields = SHAPES[name]
            if shape_filters(fields, MODALITIES[0]) is None:
                print(f"skipped {name}: this search has no such filter", file=sys.stderr)
                continue
            naive_times, speedup = [], None
            for lat, lon, modality in points[: args.naive_queries]:
                filters = shape_filters(fields, modality)
                started = time.perf_counter()
                expected = naive(session, lat, lon, radius_km, filters)
                naive_times.append((time.perf_counter() - started) * 1000)
                got = search(session, lat, lon, radius_km=radius_km, filters=filters, per_page=10)
                assert [h.practitioner.id for h in got.hits] == expected, (name, lat, lon)
            for with_total in (False, True):
                for lat, lon, modality in points[:5]:  # warm up this shape's plans
                    filters = shape_filters(fields, modality)
                    search(session, lat, lon, radius_km=radius_km, filters=filters, per_page=10)
                times, totals, capped = [], [], 0
                for lat, lon, modality in points:
                    filters = shape_filters(fields, modality)
                    started = time.perf_counter()
                    results = search(
                        session,
                        lat,
                        lon,
                        radius_km=radius_km,
                        filters=filters,
                        per_page=10,
                        with_total=with_total,
                    )
                    if with_total:
                        totals.append(results.total)
                        capped += bool(getattr(results, "total_capped", False))
                    times.append((time.perf_counter() - started) * 1000)
                p50 = statistics.median(times)
                naive_p50 = statistics.median(naive_times) if naive_times else None
                speedup = round(naive_p50 / p50) if naive_p50 and p50 else None
                line = {
                    "shape": name,
                    "with_total": with_total,
                    "radius_km": radius_km,
                    "rows": args.rows,
                    "backend": args.backend,
                    "queries": len(times),
                    "p50_ms": round(p50, 3),
                    "p95_ms": round(percentile(times, 0.95), 3),
                    "max_ms": round(max(times), 3),
                    "naive_p50_ms": round(naive_p50, 1) if naive_p50 else None,
                    "speedup_vs_naive": speedup,
                    "median_total": statistics.median(totals) if totals else None,
                    "capped_totals": capped if with_total else None,
                }
                lines.append(line)
                print(json.dumps(line), flush=True)
    engine.dispose()
    worst = max(lines, key=lambda line: line["p95_ms"])
    one = next((line for line in lines if line["shape"] == "one_modality"), None)
    summary = {
        "summary": True,
        "rows": args.rows,
        "backend": args.backend,
        "shapes": len(lines),
        "worst_p95_ms": worst["p95_ms"],
        "worst_shape": f"{worst['shape']}{' +total' if worst['with_total'] else ''}",
        "shapes_p95_le_5ms": sum(line["p95_ms"] <= 5 for line in lines),
        "one_modality_p50_ms": one["p50_ms"] if one else None,
        "slowest_naive_p50_ms": max((line["naive_p50_ms"] or 0) for line in lines),
        "build_s": build_s,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

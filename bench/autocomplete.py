"""Benchmark the place autocomplete and resolution on the full shipped gazetteer.

Loads the Australian gazetteer (GeoNames, 18,514 rows) into a fresh SQLite file (or the
PostgreSQL database at ``--url``, emptied of postcodes first), then times
``referral.geo.postcodes.suggest`` (what ``/api/v1/places`` calls) and ``lookup`` for
typed prefixes and places, through a real session as a request would. The first call
builds the in-memory gazetteer: reported on its own (``build_ms``). The last line printed
is one JSON object.

    python bench/autocomplete.py
    python bench/autocomplete.py --url postgresql+psycopg://postgres@127.0.0.1:5432/referral_bench
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from referral import migrate
from referral.db import make_engine
from referral.geo import LocationNotFound
from referral.geo.postcodes import SHIPPED_SOURCE, load_centroids, lookup, shipped_centroids
from referral.geo.postcodes import suggest as complete

PREFIXES = ["sy", "syd", "hob", "new", "surry h", "hills", "mount", "st k", "20", "3", "b", "p"]
PLACES = ["Hobart", "2000", "Surry Hills 2010", "Manly NSW", "Newtown", "Parramatta", "0000"]


def timed(fn, items, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        for item in items:
            started = time.perf_counter()
            fn(item)
            out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL URL; default a temporary SQLite file")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.sqlite'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as session:
        rows = load_centroids(session, shipped_centroids("AU"), source=SHIPPED_SOURCE)
    with Session(engine) as session:
        started = time.perf_counter()
        complete(session, "syd", "AU")
        build_ms = (time.perf_counter() - started) * 1000

        def place(text: str) -> None:
            with contextlib.suppress(LocationNotFound):
                lookup(session, text, "AU")

        suggest_ms = timed(lambda q: complete(session, q, "AU", 10), PREFIXES, args.rounds)
        lookup_ms = timed(place, PLACES, args.rounds)
    engine.dispose()

    def q(values: list[float], p: float) -> float:
        return round(statistics.quantiles(values, n=100)[int(p) - 1], 3)

    print(
        json.dumps(
            {
                "bench": "autocomplete",
                "backend": engine.dialect.name,
                "rows": rows,
                "build_ms": round(build_ms, 1),
                "suggest_p50_ms": q(suggest_ms, 50),
                "suggest_p95_ms": q(suggest_ms, 95),
                "suggest_max_ms": round(max(suggest_ms), 3),
                "lookup_p50_ms": q(lookup_ms, 50),
                "lookup_p95_ms": q(lookup_ms, 95),
                "calls": len(suggest_ms) + len(lookup_ms),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()

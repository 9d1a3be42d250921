"""What reading the allowed embed origins costs an ``/embed/`` page: cached or every time.

Builds the demo app on a fresh SQLite file (or the PostgreSQL database at ``--url``, which
must already be migrated; its ``referral_embed_origin`` rows are replaced), stores 20 origins,
then times, in one run, (a) the table read alone (:meth:`OriginCache.origins` with nothing
cached), (b) ``allowed()`` from a warm cache, and (c) a whole ``/embed/`` page (the empty
search form) through the test client with ``REFERRAL_EMBED_ORIGINS_REFRESH`` 30 (cached) and
0 (read on every page). The last line printed is one JSON object.

    python bench/embed_origins.py
    python bench/embed_origins.py --url postgresql+psycopg://postgres@127.0.0.1:5432/DB
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from referral import embed_origins, migrate
from referral.db import make_engine
from referral.models import EmbedOrigin
from wsgi import create_app


def timed(fn, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100)[int(q) - 1], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a migrated PostgreSQL URL; default a temporary SQLite file")
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    url = args.url or f"sqlite:///{folder}/bench.sqlite"
    engine = make_engine(url)
    if not args.url:
        migrate.upgrade(engine)
    with Session(engine) as session:
        session.execute(delete(EmbedOrigin))
        session.add_all(EmbedOrigin(origin=f"https://clinic{i}.example") for i in range(20))
        session.commit()

    figures: dict[str, object] = {"bench": "embed_origins", "backend": engine.dialect.name}
    for refresh in (30, 0):
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "bench",
                "REFERRAL_DATABASE_URL": url,
                "REFERRAL_GEOCODER": None,
                "REFERRAL_BACKGROUND_SENDER": False,
                "REFERRAL_EMBED_ORIGINS_REFRESH": refresh,
            }
        )
        client = app.test_client()
        assert client.get("/find-a-therapist/embed/").status_code == 200
        page = timed(lambda c=client: c.get("/find-a-therapist/embed/"), args.rounds)
        figures[f"page_refresh{refresh}_p50_ms"] = p(page, 50)
        figures[f"page_refresh{refresh}_p95_ms"] = p(page, 95)
        if refresh == 0:
            with app.app_context():
                cache = embed_origins.cache()
                read = timed(cache.origins, args.rounds)
            figures["read_p50_ms"], figures["read_p95_ms"] = p(read, 50), p(read, 95)
        else:
            with app.app_context():
                embed_origins.allowed()
                warm = timed(embed_origins.allowed, args.rounds)
            figures["cached_p50_ms"], figures["cached_p95_ms"] = p(warm, 50), p(warm, 95)
        app.extensions["referral"].engine.dispose()
    with Session(engine) as session:
        session.execute(delete(EmbedOrigin))
        session.commit()
    engine.dispose()
    figures.update(origins=20, rounds=args.rounds, python=platform.python_version())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

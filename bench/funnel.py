"""Benchmark the operator's referral funnel page (``referral.funnel``) on many referrals.

Builds ``--rows`` referrals over the last 120 days to 2,000 practitioners (one to three
of five modalities, a state each), each with the events its status implies (about three
a referral), then times what the admin page computes: :func:`referral.funnel.report` for
30 and 90 days (overall, by modality, by region), the two statements of
:func:`referral.funnel.reports`.
In the same run, the baseline a user would write first: every referral and event of the
window read into Python and counted there (overall only), checked to give the same row.
Prints one JSON line.

    python bench/funnel.py --rows 100000 --backend sqlite
    python bench/funnel.py --rows 100000 --backend postgresql \\
        --url postgresql+psycopg://postgres@127.0.0.1:5432/referral_bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from referral import funnel, migrate
from referral.config import DEFAULT_CONDITIONS, DEFAULT_FUNDS, DEFAULT_MODALITIES
from referral.db import make_engine
from referral.models import (
    Base,
    Location,
    Modality,
    Practitioner,
    ReferralEvent,
    ReferralRequest,
    practitioner_modality,
    utcnow,
)
from referral.referrals import MILESTONES

PRACTITIONERS = 2_000
STATES = ("NSW", "VIC", "QLD", "WA", "SA", "TAS", "ACT", "NT")
#: status -> (share, the events after "created" with hours since sending)
LIVES = {
    "sent": (0.15, ()),
    "viewed": (0.10, (("viewed", 5),)),
    "accepted": (0.25, (("viewed", 3), ("accepted", 20))),
    "completed": (0.30, (("viewed", 2), ("accepted", 12), ("completed", 300))),
    "declined": (0.12, (("viewed", 6), ("declined", 30))),
    "cancelled": (0.08, ()),
}
CHUNK = 20_000


def build(url: str, rows: int, seed: int) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
            conn.execute(text(f"DROP TABLE IF EXISTS {migrate.VERSION_TABLE}"))
            for name in migrate.SPATIAL_TABLES:
                conn.execute(text(f"DROP TABLE IF EXISTS {name} CASCADE"))
    migrate.upgrade(engine)
    rng = random.Random(seed)
    now = utcnow()
    with Session(engine) as session:
        migrate.sync_taxonomy(
            session,
            {
                "REFERRAL_MODALITIES": DEFAULT_MODALITIES,
                "REFERRAL_CONDITIONS": DEFAULT_CONDITIONS,
                "REFERRAL_FUNDS": DEFAULT_FUNDS,
            },
        )
        modality_ids = list(session.scalars(select(Modality.id).order_by(Modality.id)))[:5]
    with engine.begin() as conn:
        conn.execute(
            insert(Practitioner),
            [{"id": i, "name": f"P{i}", "status": "active"} for i in range(1, PRACTITIONERS + 1)],
        )
        conn.execute(
            insert(Location),
            [
                {"practitioner_id": i, "lat": -33.0, "lon": 151.0, "state": rng.choice(STATES)}
                for i in range(1, PRACTITIONERS + 1)
            ],
        )
        conn.execute(
            insert(practitioner_modality),
            [
                {"practitioner_id": i, "modality_id": m}
                for i in range(1, PRACTITIONERS + 1)
                for m in rng.sample(modality_ids, rng.randint(1, 3))
            ],
        )
    statuses = list(LIVES)
    weights = [share for share, _ in LIVES.values()]
    done = 0
    while done < rows:
        requests, events = [], []
        for n in range(done, min(done + CHUNK, rows)):
            status = rng.choices(statuses, weights)[0]
            sent = now - timedelta(days=rng.uniform(0, 120))
            rid = f"r{n:08d}"
            requests.append(
                {
                    "id": rid,
                    "practitioner_id": rng.randint(1, PRACTITIONERS),
                    "patient_name": "Bench",
                    "email": "bench@example.com",
                    "message": "",
                    "urgency": "routine",
                    "consent_version": "2026-12",
                    "consent_at": sent,
                    "status": status,
                    "created_at": sent,
                    "updated_at": sent,
                }
            )
            events.append(
                {"referral_id": rid, "actor": "patient", "action": "created", "created_at": sent}
            )
            milestones = dict.fromkeys(MILESTONES)
            for action, hours in LIVES[status][1]:
                at = sent + timedelta(hours=hours * rng.uniform(0.2, 3))
                events.append(
                    {"referral_id": rid, "actor": "p", "action": action, "created_at": at}
                )
                for column, reached_by in MILESTONES.items():
                    if action in reached_by and milestones[column] is None:
                        milestones[column] = at
            requests[-1].update(milestones)
        with engine.begin() as conn:
            conn.execute(insert(ReferralRequest), requests)
            conn.execute(insert(ReferralEvent), events)
        done += len(requests)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def naive(session: Session, days: int, now) -> funnel.FunnelRow:
    """Every referral and event of the window into Python, counted there from the trail
    (which also checks the milestone columns the funnel reads)."""
    since = now - timedelta(days=days)
    referrals = {
        rid: (created, status)
        for rid, created, status in session.execute(
            select(ReferralRequest.id, ReferralRequest.created_at, ReferralRequest.status).where(
                ReferralRequest.created_at >= since
            )
        )
    }
    viewed, accepted, answered = set(), set(), {}
    for rid, action, at in session.execute(
        select(ReferralEvent.referral_id, ReferralEvent.action, ReferralEvent.created_at)
        .join(ReferralRequest, ReferralRequest.id == ReferralEvent.referral_id)
        .where(ReferralRequest.created_at >= since)
    ):
        if action in MILESTONES["viewed_at"]:
            viewed.add(rid)
        if action in MILESTONES["accepted_at"]:
            accepted.add(rid)
        if action in MILESTONES["answered_at"] and (rid not in answered or at < answered[rid]):
            answered[rid] = at
    waits = [(answered[r] - referrals[r][0]).total_seconds() for r in answered]
    statuses = [status for _created, status in referrals.values()]
    return funnel.FunnelRow(
        "All",
        len(referrals),
        len(viewed),
        len(accepted),
        statuses.count("completed"),
        statuses.count("declined"),
        statuses.count("expired"),
        statistics.median(waits) if waits else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="database URL (default: a SQLite file under bench/)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep a database of --rows rows")
    args = parser.parse_args(argv)
    url = args.url or f"sqlite:///{Path(__file__).parent / f'.data-funnel-{args.rows}.sqlite'}"
    engine = make_engine(url)
    build_s = None
    with Session(engine) as session:
        have = 0
        if args.reuse:
            try:
                have = session.scalar(select(func.count()).select_from(ReferralRequest))
            except Exception:  # no table yet
                session.rollback()
    if have != args.rows:
        engine.dispose()
        started = time.perf_counter()
        build(url, args.rows, args.seed)
        build_s = round(time.perf_counter() - started, 1)
        engine = make_engine(url)
    now = utcnow()
    page_ms, page_cpu_ms, naive_ms = [], [], []
    with Session(engine) as session:
        session.scalar(select(func.count()).select_from(ReferralEvent))  # warm the cache
        for _ in range(args.repeats):
            started, cpu = time.perf_counter(), time.process_time()
            reports = funnel.reports(session, now=now)
            page_ms.append((time.perf_counter() - started) * 1000)
            page_cpu_ms.append((time.process_time() - cpu) * 1000)
            session.expunge_all()
        for days, report in zip(funnel.WINDOWS, reports, strict=True):
            started = time.perf_counter()
            baseline = naive(session, days, now)
            naive_ms.append((time.perf_counter() - started) * 1000)
            got = report.total
            assert (got.sent, got.viewed, got.accepted, got.completed, got.declined) == (
                baseline.sent,
                baseline.viewed,
                baseline.accepted,
                baseline.completed,
                baseline.declined,
            ), (got, baseline)
            assert abs((got.median_response_s or 0) - (baseline.median_response_s or 0)) < 1
        events = session.scalar(select(func.count()).select_from(ReferralEvent))
    engine.dispose()
    print(
        json.dumps(
            {
                "rows": args.rows,
                "events": events,
                "backend": args.backend,
                "repeats": args.repeats,
                "page_p50_ms": round(statistics.median(page_ms), 1),
                "page_max_ms": round(max(page_ms), 1),
                # this process's CPU: on SQLite all of the work, and steadier than the wall
                # clock on a loaded machine; on PostgreSQL only the client's share
                "page_cpu_p50_ms": round(statistics.median(page_cpu_ms), 1),
                "naive_overall_only_ms": [round(ms, 1) for ms in naive_ms],
                "sent_90d": reports[-1].total.sent,
                "build_s": build_s,
                "loadavg_1m": round(os.getloadavg()[0], 2),
                "python": platform.python_version(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark the directory exports at scale: time and memory, streamed against all-in-memory.

Builds ``--rows`` listings like ``bench/filters.py`` (one location each, one to three
modalities, conditions, funds, languages, home visits and their radius, telehealth) and
fills in what a real listing also carries (business name, a bio of about 300 characters,
phone, website, accreditation, street, suburb, postcode, opening hours on five days). Then
runs each export in a process of its own, so each peak is its own:

- ``csv``: :func:`referral.export.write_csv`, what ``flask referral export --format csv``
  runs, streamed in batches (:func:`referral.export.iter_active_practitioners`);
- ``fhir``: :func:`referral.fhir.directory.bundle_chunks`, what ``--format fhir`` runs;
- ``hsds``: :func:`referral.hsds.document.chunks`, what ``--format hsds`` and
  ``GET {prefix}/api/v1/export/hsds.json`` write (the HSDS 3.0 file, streamed);
- ``fhir_http``: ``GET {prefix}/api/v1/export/fhir.json`` through the app (a streamed
  response, read piece by piece as a client would);
- and, as the baseline in the same run, ``csv_in_memory`` and ``fhir_in_memory``: the same
  rows and resources built the way the export did before it streamed (every listing loaded
  into one list, the whole file built in memory, then written).

Each line records seconds, rows, characters written, the process's RSS when the export
starts, the lowest and highest RSS sampled while it runs (``rss_growth_mb``: how much it
grew; flat means a few MB whatever ``--rows``) and its peak RSS. One JSON line per export,
then a summary line.

    python bench/export.py --rows 100000 --backend sqlite
    python bench/export.py --rows 100000 --backend postgresql \\
        --url postgresql+psycopg://postgres@127.0.0.1:5432/referral_bench
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.filters import build as build_listings
from bench.search import peak_rss_mb, rss_mb
from referral import migrate
from referral.db import make_engine

EXPORTS = ("csv", "fhir", "hsds", "fhir_http", "csv_in_memory", "fhir_in_memory")
BASE_URL = "https://clinic.example/find-a-therapist"
BIO = (
    "Remedial massage and myotherapy for desk workers, runners and anyone with a stiff neck "
    "or a sore back. Twenty years in practice; treatment plans agreed with your GP or "
    "physiotherapist where you have one. Health fund rebates on the spot. Evening and "
    "Saturday appointments; wheelchair access from the rear lane."
)
HOURS = json.dumps({day: [["09:00", "17:30"]] for day in ("mon", "tue", "wed", "thu", "fri")})


def build(url: str, rows: int, seed: int) -> None:
    """``bench/filters.py``'s listings, then the text a real listing carries as well."""
    build_listings(url, rows, seed)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE referral_practitioner SET business_name = 'Bench Practice ' || id,"
                " bio = :bio, phone = '02 9555 0101', website = 'https://bench.example/' || id,"
                " accreditation_body = 'Massage & Myotherapy Australia',"
                " membership_number = 'MMA-' || id"
            ),
            {"bio": BIO},
        )
        conn.execute(
            text(
                "UPDATE referral_location SET street = '1 Bench St', suburb = 'Benchville',"
                " postcode = '2000', state = 'NSW', opening_hours = :hours"
            ),
            {"hours": HOURS},
        )
    engine.dispose()


class Sink(io.TextIOBase):
    """Where an export writes: counts characters and samples the RSS about every 0.2 s."""

    def __init__(self) -> None:
        self.chars = 0
        self.samples: list[float] = []
        self._next = 0.0

    def write(self, data: str) -> int:  # type: ignore[override]
        self.chars += len(data)
        now = time.perf_counter()
        if now >= self._next:
            self.samples.append(rss_mb())
            self._next = now + 0.2
        return len(data)


def _in_memory_practitioners(session: Session) -> list[Any]:
    """Every active listing in one list: how the export read the directory before."""
    from referral.export import active_practitioners

    return active_practitioners(session)


def run_export(url: str, kind: str) -> dict[str, Any]:
    """One export, in this (fresh) process; what it cost."""
    import csv

    from referral.export import write_csv
    from referral.fhir.directory import bundle_chunks, listing_resources
    from referral.importer import COLUMNS, csv_record, escape_formula

    engine = make_engine(url)
    sink = Sink()
    app = None
    if kind == "fhir_http":
        from flask import Flask

        from referral import Referral

        app = Flask(__name__, root_path=str(Path(__file__).parent))
        app.config.update(
            TESTING=True,
            SECRET_KEY="bench",
            REFERRAL_DATABASE_URL=url,
            REFERRAL_PUBLIC_URL="https://clinic.example",
            REFERRAL_GEOCODER=None,
            REFERRAL_BACKGROUND_SENDER=False,
        )
        Referral(app)
        client = app.test_client()
    rows = 0
    with Session(engine) as session:
        session.connection()  # connect before the clock starts
        start_rss = rss_mb()
        started = time.perf_counter()
        if kind == "csv":
            rows = write_csv(session, sink)
        elif kind == "fhir":
            for chunk in bundle_chunks(session, BASE_URL):
                sink.write(chunk)
        elif kind == "hsds":
            from referral.hsds import document

            for chunk in document.chunks(session, base_url=BASE_URL):
                sink.write(chunk)
        elif kind == "fhir_http":
            response = client.get("/find-a-therapist/api/v1/export/fhir.json")
            assert response.status_code == 200 and response.is_streamed
            for piece in response.response:
                sink.write(piece.decode() if isinstance(piece, bytes) else piece)
            response.close()
        elif kind == "csv_in_memory":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            for p in _in_memory_practitioners(session):
                for loc in p.locations:
                    writer.writerow({k: escape_formula(v) for k, v in csv_record(p, loc).items()})
                    rows += 1
            sink.write(buffer.getvalue())
        elif kind == "fhir_in_memory":
            entries = [
                {"fullUrl": f"urn:uuid:{r['id']}", "resource": r}
                for p in _in_memory_practitioners(session)
                for r in listing_resources(p, BASE_URL)
            ]
            bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
            sink.write(json.dumps(bundle, ensure_ascii=False))
        else:
            raise ValueError(kind)
        seconds = time.perf_counter() - started
    sink.samples.append(rss_mb())
    engine.dispose()
    return {
        "export": kind,
        "seconds": round(seconds, 2),
        "rows": rows or None,
        "chars": sink.chars,
        "rss_start_mb": round(start_rss, 1),
        "rss_min_mb": round(min(sink.samples), 1),
        "rss_max_mb": round(max(sink.samples), 1),
        "rss_growth_mb": round(max(sink.samples) - start_rss, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="database URL (default: a SQLite file under bench/)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep a database of --rows rows")
    parser.add_argument("--exports", default=",".join(EXPORTS), help="comma-separated")
    args = parser.parse_args(argv)

    url = args.url
    if args.backend == "sqlite" and not url:
        url = f"sqlite:///{Path(__file__).parent / f'.export-{args.rows}.sqlite'}"
    if not url or not url.startswith(args.backend):
        parser.error(f"--url must be a {args.backend} URL")

    spawn = multiprocessing.get_context("spawn")
    existing = 0
    if args.reuse:
        engine = make_engine(url)
        migrate.upgrade(engine)
        with engine.connect() as conn:
            existing = conn.scalar(text("SELECT count(*) FROM referral_location"))
        engine.dispose()
    build_s = None
    if existing != args.rows:
        started = time.perf_counter()
        child = spawn.Process(target=build, args=(url, args.rows, args.seed))
        child.start()
        child.join()
        if child.exitcode:
            return child.exitcode
        build_s = round(time.perf_counter() - started, 1)
        print(f"built {args.rows} listings in {build_s} s", file=sys.stderr)

    lines = []
    for kind in args.exports.split(","):
        with spawn.Pool(1) as pool:
            line = pool.apply(run_export, (url, kind))
        line.update(rows_built=args.rows, backend=args.backend, loadavg_1m=os.getloadavg()[0])
        lines.append(line)
        print(json.dumps(line), flush=True)
    by_kind = {line["export"]: line for line in lines}
    summary: dict[str, Any] = {
        "summary": True,
        "rows_built": args.rows,
        "backend": args.backend,
        "build_s": build_s,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    for fmt in ("csv", "fhir"):
        streamed, baseline = by_kind.get(fmt), by_kind.get(f"{fmt}_in_memory")
        if streamed and baseline:
            summary[f"{fmt}_growth_mb_streamed_vs_in_memory"] = [
                streamed["rss_growth_mb"],
                baseline["rss_growth_mb"],
            ]
            summary[f"{fmt}_seconds_streamed_vs_in_memory"] = [
                streamed["seconds"],
                baseline["seconds"],
            ]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Publishing the active directory as open data: Open Referral HSDS 3.0 JSON, or CSV.

HSDS: the records of :mod:`referral.hsds.records` (the one mapping, which the HSDS API
serves too), streamed by :mod:`referral.hsds.document`. Contact emails are left out of the
HSDS export (the listing pages do not publish them; patients use the referral form); the
operator's CSV keeps them so export -> import round-trips.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from referral.hsds import document as hsds_stream
from referral.hsds.records import hsds_id
from referral.importer import COLUMNS, csv_record, escape_formula
from referral.models import Practitioner

__all__ = [
    "active_practitioners",
    "csv_rows",
    "hsds_document",
    "hsds_id",
    "iter_active_practitioners",
    "write_csv",
]


def _active() -> Select[tuple[Practitioner]]:
    """Every active listing, by id, with its locations, modalities, conditions and funds."""
    return (
        select(Practitioner)
        .where(Practitioner.status == "active")
        .options(
            selectinload(Practitioner.locations),
            selectinload(Practitioner.modalities),
            selectinload(Practitioner.conditions),
            selectinload(Practitioner.funds),
        )
        .order_by(Practitioner.id)
    )


def active_practitioners(session: Session) -> list[Practitioner]:
    """Every active listing at once (the benchmark's in-memory baseline; exports stream
    :func:`iter_active_practitioners`)."""
    return list(session.scalars(_active()))


#: listings read per query by :func:`iter_active_practitioners`
BATCH_SIZE = 500


def iter_active_practitioners(
    session: Session, *, batch_size: int = BATCH_SIZE
) -> Iterator[Practitioner]:
    """Every active listing, by id, with its locations, modalities, conditions and funds,
    read ``batch_size`` at a time (a server-side cursor on PostgreSQL) in a session of its
    own that forgets each batch once it is handed out: memory stays flat however large the
    directory, so an export can stream. Each listing is detached once the next batch is
    read: use what was loaded, nothing else."""
    stmt = _active().execution_options(yield_per=batch_size)
    with Session(bind=session.get_bind(), autoflush=False) as reader:
        for batch in reader.scalars(stmt).partitions():
            yield from batch
            for practitioner in batch:  # with its locations and funds (cascade)
                reader.expunge(practitioner)


def hsds_document(session: Session, *, base_url: str | None = None) -> dict[str, Any]:
    """The active directory as one HSDS 3.0 JSON document (:mod:`referral.hsds.document`,
    which streams the same text; this reads it whole). ``base_url`` (the site's root, e.g.
    ``https://clinic.example/find-a-therapist``) adds each listing's page as the service
    ``url``."""
    return json.loads("".join(hsds_stream.chunks(session, base_url=base_url)))


def csv_rows(session: Session) -> Iterator[dict[str, str]]:
    """One row per location of each active listing, in the import's columns
    (:func:`referral.importer.csv_record`), read in batches so memory stays flat however
    large the directory (:func:`iter_active_practitioners`). Each cell is safe to open in a
    spreadsheet: one that would run as a formula (a listing named ``=HYPERLINK(...)``, a
    suburb ``-2+3``) is written behind a ``'`` (:func:`referral.importer.escape_formula`;
    plain numbers such as a latitude stay as they are). The stored values are untouched,
    and importing the file gives them back."""
    for p in iter_active_practitioners(session):
        for loc in p.locations:
            yield {column: escape_formula(value) for column, value in csv_record(p, loc).items()}


def write_csv(session: Session, stream: io.TextIOBase | Any) -> int:
    """Write the CSV export to ``stream`` row by row; returns the number of rows."""
    writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in csv_rows(session):
        writer.writerow(row)
        count += 1
    return count

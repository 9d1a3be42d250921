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

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from referral.hsds import document as hsds_stream
from referral.hsds.records import hsds_id
from referral.importer import COLUMNS, escape_formula, site_id
from referral.models import Practitioner

__all__ = ["active_practitioners", "csv_rows", "hsds_document", "hsds_id", "write_csv"]


def active_practitioners(session: Session) -> list[Practitioner]:
    return list(
        session.scalars(
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
    )


def hsds_document(session: Session, *, base_url: str | None = None) -> dict[str, Any]:
    """The active directory as one HSDS 3.0 JSON document (:mod:`referral.hsds.document`,
    which streams the same text; this reads it whole). ``base_url`` (the site's root, e.g.
    ``https://clinic.example/find-a-therapist``) adds each listing's page as the service
    ``url``."""
    return json.loads("".join(hsds_stream.chunks(session, base_url=base_url)))


def csv_rows(session: Session) -> Iterator[dict[str, str]]:
    """One row per location of each active listing, in the import's columns, each cell
    safe to open in a spreadsheet: one that would run as a formula (a listing named
    ``=HYPERLINK(...)``, a suburb ``-2+3``) is written behind a ``'``
    (:func:`referral.importer.escape_formula`; plain numbers such as a latitude stay as
    they are). The stored values are untouched, and importing the file gives them back."""
    for row in _plain_rows(session):
        yield {column: escape_formula(value) for column, value in row.items()}


def _plain_rows(session: Session) -> Iterator[dict[str, str]]:
    for p in active_practitioners(session):
        listing = {
            "external_id": site_id(p),
            "name": p.name,
            "modalities": ";".join(sorted(m.slug for m in p.modalities)),
            "phone": p.phone or "",
            "email": p.email or "",
            "website": p.website or "",
            "funds": ";".join(
                f"{pf.fund.slug}:{pf.provider_number}" if pf.provider_number else pf.fund.slug
                for pf in sorted(p.funds, key=lambda pf: pf.fund.slug)
            ),
        }
        for loc in p.locations:
            yield {
                **listing,
                "street": loc.street or "",
                "suburb": loc.suburb or "",
                "postcode": loc.postcode or "",
                "state": loc.state or "",
                "country": loc.country,
                "lat": repr(loc.lat),
                "lon": repr(loc.lon),
            }


def write_csv(session: Session, stream: io.TextIOBase | Any) -> int:
    writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in csv_rows(session):
        writer.writerow(row)
        count += 1
    return count

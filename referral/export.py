"""Publishing the active directory as open data: Open Referral HSDS 3.0 JSON, or CSV.

HSDS: each practitioner is an ``organization`` with one ``service``; each of their
locations is a ``location`` (with latitude/longitude and address) joined to the service by
a ``service_at_location``; modalities and conditions are ``taxonomy_term``s attached to
the service as ``attribute``s. Identifiers are UUIDs derived from our ids (uuid5), so they
stay the same from one export to the next. Contact emails are left out of the HSDS export
(the listing pages do not publish them; patients use the referral form); the operator's
CSV keeps them so export -> import round-trips.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from referral.importer import COLUMNS, csv_record, escape_formula
from referral.models import Condition, Location, Modality, Practitioner

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://openreferral.org/hsds/referral-plugin")
DAY_CODES = {
    "mon": "MO",
    "tue": "TU",
    "wed": "WE",
    "thu": "TH",
    "fri": "FR",
    "sat": "SA",
    "sun": "SU",
}


def hsds_id(kind: str, key: object) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


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
    stmt = (
        select(Practitioner)
        .where(Practitioner.status == "active")
        .options(
            selectinload(Practitioner.locations),
            selectinload(Practitioner.modalities),
            selectinload(Practitioner.conditions),
            selectinload(Practitioner.funds),
        )
        .order_by(Practitioner.id)
        .execution_options(yield_per=batch_size)
    )
    with Session(bind=session.get_bind(), autoflush=False) as reader:
        for batch in reader.scalars(stmt).partitions():
            yield from batch
            for practitioner in batch:  # with its locations and funds (cascade)
                reader.expunge(practitioner)


def _taxonomies(session: Session) -> tuple[list[dict], list[dict], dict[tuple[str, str], dict]]:
    taxonomies, terms, by_key = [], [], {}
    for kind, model, name in (
        ("modality", Modality, "What the practitioner practises"),
        ("condition", Condition, "Conditions the practitioner treats"),
    ):
        taxonomy = {
            "id": hsds_id("taxonomy", kind),
            "name": f"referral {kind}",
            "description": name,
            "version": "1",
        }
        taxonomies.append(taxonomy)
        for row in session.scalars(select(model).order_by(model.slug)):
            term = {
                "id": hsds_id(kind, row.slug),
                "code": row.slug,
                "name": row.name,
                "description": f"{name}: {row.name}",
                "taxonomy": taxonomy["name"],
                "taxonomy_id": taxonomy["id"],
            }
            terms.append(term)
            by_key[(kind, row.slug)] = term
    return taxonomies, terms, by_key


def _location(p: Practitioner, loc: Location, org_id: str) -> dict[str, Any]:
    loc_id = hsds_id("location", loc.id)
    doc: dict[str, Any] = {
        "id": loc_id,
        "location_type": "physical",
        "organization_id": org_id,
        "name": loc.name or f"{p.name}, {loc.suburb or loc.postcode or ''}".strip(", "),
        "latitude": loc.lat,
        "longitude": loc.lon,
        "external_identifier": str(loc.id),
        "external_identifier_type": "referral location id",
        "addresses": [
            {
                "id": hsds_id("address", loc.id),
                "location_id": loc_id,
                "address_1": loc.street or "",
                "city": loc.suburb or "",
                "state_province": loc.state or "",
                "postal_code": loc.postcode or "",
                "country": loc.country,
                "address_type": "physical",
            }
        ],
        "schedules": [
            {
                "id": hsds_id("schedule", f"{loc.id}:{day}:{n}"),
                "location_id": loc_id,
                "freq": "WEEKLY",
                "wkst": "MO",
                "byday": DAY_CODES[day],
                "opens_at": opens,
                "closes_at": closes,
            }
            for day, intervals in (loc.opening_hours or {}).items()
            if day in DAY_CODES
            for n, (opens, closes) in enumerate(intervals)
        ],
    }
    return doc


def hsds_document(session: Session, *, base_url: str | None = None) -> dict[str, Any]:
    """The active directory as one HSDS 3.0 JSON document.

    ``base_url`` (the site's root, e.g. ``https://clinic.example/find-a-therapist``) adds each
    listing's page as the service ``url``.
    """
    taxonomies, terms, by_key = _taxonomies(session)
    organizations, services, locations, links = [], [], [], []
    for p in active_practitioners(session):
        org_id, service_id = hsds_id("organization", p.id), hsds_id("service", p.id)
        practises = ", ".join(m.name for m in p.modalities)
        description = p.bio or (f"{p.name}: {practises}." if practises else p.name)
        org: dict[str, Any] = {
            "id": org_id,
            "name": p.business_name or p.name,
            "description": description,
        }
        if p.website:
            org["website"] = p.website
        if p.phone:
            org["phones"] = [
                {
                    "id": hsds_id("phone", f"organization:{p.id}"),
                    "number": p.phone,
                    "organization_id": org_id,
                }
            ]
        organizations.append(org)

        service_locations = []
        for loc in p.locations:
            location = _location(p, loc, org_id)
            locations.append(location)
            link = {
                "id": hsds_id("service_at_location", loc.id),
                "service_id": service_id,
                "location_id": location["id"],
            }
            links.append(link)
            service_locations.append({**link, "location": location})
        attributes = [
            {
                "id": hsds_id("attribute", f"{p.id}:{kind}:{item.slug}"),
                "link_id": service_id,
                "link_type": kind,
                "link_entity": "service",
                "taxonomy_term_id": by_key[(kind, item.slug)]["id"],
                "taxonomy_term": by_key[(kind, item.slug)],
            }
            for kind, items in (("modality", p.modalities), ("condition", p.conditions))
            for item in items
            if (kind, item.slug) in by_key
        ]
        service: dict[str, Any] = {
            "id": service_id,
            "organization_id": org_id,
            "name": f"{p.name}" + (f" — {practises}" if practises else ""),
            "description": description,
            "status": "active",
            "phones": [
                {
                    "id": hsds_id("phone", f"service:{p.id}"),
                    "number": p.phone,
                    "service_id": service_id,
                }
            ]
            if p.phone
            else [],
            "languages": [
                {
                    "id": hsds_id("language", f"{p.id}:{lang}"),
                    "service_id": service_id,
                    "name": lang,
                }
                for lang in p.languages or []
            ],
            "service_at_locations": service_locations,
            "attributes": attributes,
        }
        if base_url:
            service["url"] = f"{base_url.rstrip('/')}/practitioners/{p.id}"
        if p.accreditation_body:
            service["accreditations"] = " ".join(
                filter(None, [p.accreditation_body, p.membership_number])
            )
        if p.verified_at is not None:
            service["assured_date"] = p.verified_at.date().isoformat()
        if p.updated_at is not None:
            service["last_modified"] = p.updated_at.isoformat() + "Z"
        fees = [pf.fund.name for pf in p.funds]
        if fees:
            service["fees_description"] = "Health fund rebates: " + ", ".join(fees) + "."
        services.append(service)
    return {
        "hsds_version": "3.0",
        "organizations": organizations,
        "services": services,
        "locations": locations,
        "service_at_locations": links,
        "taxonomies": taxonomies,
        "taxonomy_terms": terms,
    }


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

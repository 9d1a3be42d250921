"""Our listings as Open Referral HSDS 3.0 records: the one mapping, for the API and the export.

Each active practitioner is an ``organization`` with one ``service``; each of their locations
is a ``location`` (latitude/longitude, address, opening hours as weekly ``schedules``) joined to
the service by a ``service_at_location``. Modalities and conditions are the ``taxonomy_term``s
of two ``taxonomies``, attached to the service as ``attribute``s. Contact emails are never
published (the listing pages do not show them; patients use the referral form).

Identifiers are UUID strings, the same from one request to the next:

- the four records an API client asks for by id (organization, service, location,
  service_at_location) get :func:`record_id`: a version-8 UUID (RFC 9562, custom) whose first
  nine bytes name the kind and whose last seven carry our row id, so ``/services/{id}`` finds
  its row with one primary-key look-up and an organization's id is never a service's;
- everything else (taxonomies, terms, phones, addresses, schedules, languages, attributes) gets
  :func:`hsds_id`, a uuid5 of a name under :data:`NAMESPACE`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from referral.languages import code_for
from referral.models import Condition, Location, Modality, Practitioner
from referral.routing import MAX_ID

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://openreferral.org/hsds/referral-plugin")
#: the kinds that :func:`record_id` numbers, and the table each one's key is the id of
RECORD_KINDS = ("organization", "service", "location", "service_at_location")
#: the two taxonomies: kind, model, description
TAXONOMIES: tuple[tuple[str, type[Modality] | type[Condition], str], ...] = (
    ("modality", Modality, "What the practitioner practises"),
    ("condition", Condition, "Conditions the practitioner treats"),
)
DAY_CODES = {
    "mon": "MO",
    "tue": "TU",
    "wed": "WE",
    "thu": "TH",
    "fri": "FR",
    "sat": "SA",
    "sun": "SU",
}
#: what a full record needs loaded with each practitioner
FULL_LOAD = (
    selectinload(Practitioner.locations),
    selectinload(Practitioner.modalities),
    selectinload(Practitioner.conditions),
    selectinload(Practitioner.funds),
)
#: practitioners loaded per statement when a whole list or the export is streamed
BATCH_SIZE = 500
Kind = Literal["organization", "service", "location", "service_at_location"]


def hsds_id(kind: str, key: object) -> str:
    """The uuid5 of ``kind:key`` under :data:`NAMESPACE`."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


def _prefix(kind: str) -> bytes:
    head = bytearray(hashlib.sha1(NAMESPACE.bytes + kind.encode()).digest()[:9])
    head[6] = (head[6] & 0x0F) | 0x80  # version 8
    head[8] = (head[8] & 0x3F) | 0x80  # RFC 9562 variant
    return bytes(head)


_PREFIXES = {kind: _prefix(kind) for kind in RECORD_KINDS}


def record_id(kind: Kind, key: int) -> str:
    """The UUID of our row ``key`` as an HSDS ``kind`` (see the module's docstring)."""
    return str(uuid.UUID(bytes=_PREFIXES[kind] + int(key).to_bytes(7, "big")))


def record_key(kind: Kind, text: str) -> int | None:
    """Our row id in a UUID from :func:`record_id`, or None when ``text`` is not one of
    ``kind``'s (another kind's, a malformed string, any other UUID)."""
    try:
        raw = uuid.UUID(text.strip()).bytes
    except (ValueError, AttributeError):
        return None
    if raw[:9] != _PREFIXES[kind]:
        return None
    key = int.from_bytes(raw[9:], "big")
    return key if 1 <= key <= MAX_ID else None


@dataclass(frozen=True)
class Catalogue:
    """The two taxonomies and their terms, read once per request (a few dozen rows).

    ``keys`` maps each term's id to its ``(kind, slug)``; ``kinds`` each taxonomy's id to
    its kind (``modality`` or ``condition``)."""

    taxonomies: tuple[dict[str, Any], ...]
    terms: tuple[dict[str, Any], ...]
    keys: dict[str, tuple[str, str]]
    kinds: dict[str, str]

    @classmethod
    def load(cls, session: Session) -> Catalogue:
        taxonomies, terms, keys, kinds = [], [], {}, {}
        for kind, model, description in TAXONOMIES:
            taxonomy = {
                "id": hsds_id("taxonomy", kind),
                "name": f"referral {kind}",
                "description": description,
                "version": "1",
            }
            taxonomies.append(taxonomy)
            kinds[taxonomy["id"]] = kind
            for row in session.scalars(select(model).order_by(model.slug)):
                term = {
                    "id": hsds_id(kind, row.slug),
                    "code": row.slug,
                    "name": row.name,
                    "description": f"{description}: {row.name}",
                    "taxonomy": taxonomy["name"],
                    "taxonomy_id": taxonomy["id"],
                }
                terms.append(term)
                keys[term["id"]] = (kind, row.slug)
        return cls(tuple(taxonomies), tuple(terms), keys, kinds)

    @cached_property
    def _by_key(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {self.keys[t["id"]]: t for t in self.terms}

    def term(self, kind: str, slug: str) -> dict[str, Any] | None:
        return self._by_key.get((kind, slug))

    def detailed(self, term: dict[str, Any]) -> dict[str, Any]:
        """A term with its taxonomy nested (``taxonomy_detail``), as the API serves it."""
        taxonomy = next(t for t in self.taxonomies if t["id"] == term["taxonomy_id"])
        return {**term, "taxonomy_detail": taxonomy}


def load_practitioners(session: Session, ids: Sequence[int]) -> list[Practitioner]:
    """Active practitioners with these ids, with what full records need, in ``ids``' order."""
    if not ids:
        return []
    rows = session.scalars(
        select(Practitioner)
        .where(Practitioner.id.in_(ids), Practitioner.status == "active")
        .options(*FULL_LOAD)
    )
    by_id = {p.id: p for p in rows}
    return [by_id[i] for i in ids if i in by_id]


def in_batches(session: Session, ids: Iterable[int]) -> Iterator[Practitioner]:
    """Practitioners loaded :data:`BATCH_SIZE` at a time: memory stays flat over any number
    of ids (the session's identity map holds rows only while something refers to them)."""
    size = BATCH_SIZE
    batch: list[int] = []
    for key in ids:
        batch.append(key)
        if len(batch) == size:
            yield from load_practitioners(session, batch)
            batch = []
    yield from load_practitioners(session, batch)


def _description(p: Practitioner) -> str:
    practises = ", ".join(m.name for m in p.modalities)
    return p.bio or (f"{p.name}: {practises}." if practises else p.name)


def phones(p: Practitioner, owner: str, owner_id: str) -> list[dict[str, Any]]:
    if not p.phone:
        return []
    return [{"id": hsds_id("phone", f"{owner}:{p.id}"), "number": p.phone, f"{owner}_id": owner_id}]


def organization_brief(p: Practitioner) -> dict[str, Any]:
    """The organization's one-to-one fields (``organization_list``)."""
    doc: dict[str, Any] = {
        "id": record_id("organization", p.id),
        "name": p.business_name or p.name,
        "description": _description(p),
    }
    if p.website:
        doc["website"] = p.website
    return doc


def organization_record(
    p: Practitioner, catalogue: Catalogue, base_url: str | None, *, full_service: bool = False
) -> dict[str, Any]:
    """The fully nested organization: phones, locations and its service, brief (``id``,
    ``name``, ``status``, as the schema asks) or, with ``full_service``, whole."""
    doc = organization_brief(p)
    doc["phones"] = phones(p, "organization", doc["id"])
    doc["locations"] = [location_record(p, loc) for loc in p.locations]
    service = (
        service_record(p, catalogue, base_url)
        if full_service
        else {k: v for k, v in service_brief(p, base_url).items() if k in ("id", "name", "status")}
    )
    doc["services"] = [service]
    return doc


def location_brief(p: Practitioner, loc: Location) -> dict[str, Any]:
    """The location's one-to-one fields."""
    return {
        "id": record_id("location", loc.id),
        "location_type": "physical",
        "organization_id": record_id("organization", p.id),
        "name": loc.name or f"{p.name}, {loc.suburb or loc.postcode or ''}".strip(", "),
        "latitude": loc.lat,
        "longitude": loc.lon,
        "external_identifier": str(loc.id),
        "external_identifier_type": "referral location id",
    }


def location_record(p: Practitioner, loc: Location) -> dict[str, Any]:
    """The location with its address and opening hours."""
    doc = location_brief(p, loc)
    doc["addresses"] = [
        {
            "id": hsds_id("address", loc.id),
            "location_id": doc["id"],
            "address_1": loc.street or "",
            "city": loc.suburb or "",
            "state_province": loc.state or "",
            "postal_code": loc.postcode or "",
            "country": loc.country,
            "address_type": "physical",
        }
    ]
    doc["schedules"] = [
        {
            "id": hsds_id("schedule", f"{loc.id}:{day}:{n}"),
            "location_id": doc["id"],
            "freq": "WEEKLY",
            "wkst": "MO",
            "byday": DAY_CODES[day],
            "opens_at": opens,
            "closes_at": closes,
        }
        for day, intervals in (loc.opening_hours or {}).items()
        if day in DAY_CODES
        for n, (opens, closes) in enumerate(intervals)
    ]
    return doc


def service_brief(p: Practitioner, base_url: str | None) -> dict[str, Any]:
    """The service's one-to-one fields (``service_list``), its organization nested."""
    practises = ", ".join(m.name for m in p.modalities)
    doc: dict[str, Any] = {
        "id": record_id("service", p.id),
        "organization_id": record_id("organization", p.id),
        "name": f"{p.name}" + (f" — {practises}" if practises else ""),
        "description": _description(p),
        "status": "active",
    }
    if base_url:
        doc["url"] = f"{base_url.rstrip('/')}/practitioners/{p.id}"
    if p.accreditation_body:
        doc["accreditations"] = " ".join(filter(None, [p.accreditation_body, p.membership_number]))
    if p.verified_at is not None:
        doc["assured_date"] = p.verified_at.date().isoformat()
    if p.updated_at is not None:
        doc["last_modified"] = timestamp(p.updated_at)
    fees = [pf.fund.name for pf in p.funds]
    if fees:
        doc["fees_description"] = "Health fund rebates: " + ", ".join(fees) + "."
    doc["organization"] = organization_brief(p)
    return doc


def service_minimal(p: Practitioner) -> dict[str, Any]:
    """``minimal=true``: the id and when it changed, with the ``name`` and ``status`` that
    the ``service_list`` schema requires."""
    doc = {"id": record_id("service", p.id), "name": p.name, "status": "active"}
    if p.updated_at is not None:
        doc["last_modified"] = timestamp(p.updated_at)
    return doc


def service_record(p: Practitioner, catalogue: Catalogue, base_url: str | None) -> dict[str, Any]:
    """The fully nested service: phones, languages, its locations (through
    service_at_locations) and its modalities and conditions as attributes."""
    doc = service_brief(p, base_url)
    service_id = doc["id"]
    doc["phones"] = phones(p, "service", service_id)
    doc["languages"] = [
        {"id": hsds_id("language", f"{p.id}:{lang}"), "service_id": service_id, "name": lang}
        | ({"code": code} if (code := code_for(str(lang))) else {})
        for lang in p.languages or []
    ]
    doc["service_at_locations"] = [
        {**service_at_location_brief(p, loc), "location": location_record(p, loc)}
        for loc in p.locations
    ]
    doc["attributes"] = [
        {
            "id": hsds_id("attribute", f"{p.id}:{kind}:{item.slug}"),
            "link_id": service_id,
            "link_type": kind,
            "link_entity": "service",
            "taxonomy_term_id": term["id"],
            "taxonomy_term": term,
        }
        for kind, items in (("modality", p.modalities), ("condition", p.conditions))
        for item in items
        if (term := catalogue.term(kind, item.slug)) is not None
    ]
    return doc


def service_at_location_brief(p: Practitioner, loc: Location) -> dict[str, Any]:
    return {
        "id": record_id("service_at_location", loc.id),
        "service_id": record_id("service", p.id),
        "location_id": record_id("location", loc.id),
    }


def service_at_location_listed(
    p: Practitioner, loc: Location, base_url: str | None
) -> dict[str, Any]:
    """A list's service_at_location: the link with its location's and service's
    one-to-one fields nested (``service_at_location_list``)."""
    service = service_brief(p, base_url)
    del service["organization"]
    return {
        **service_at_location_brief(p, loc),
        "location": location_brief(p, loc),
        "service": service,
    }


def service_at_location_record(
    p: Practitioner, loc: Location, catalogue: Catalogue, base_url: str | None
) -> dict[str, Any]:
    """The fully nested service_at_location: the whole location and the whole service."""
    return {
        **service_at_location_brief(p, loc),
        "location": location_record(p, loc),
        "service": service_record(p, catalogue, base_url),
    }


def timestamp(moment: datetime) -> str:
    """A stored (naive UTC) time as RFC 3339."""
    return moment.isoformat() + "Z"

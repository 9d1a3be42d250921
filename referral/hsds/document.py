"""The whole active directory as one HSDS 3.0 JSON document, streamed.

``{"hsds_version": "3.0", "organizations": [...], "services": [...], "locations": [...],
"service_at_locations": [...], "taxonomies": [...], "taxonomy_terms": [...]}``: the records
of :mod:`referral.hsds.records`, the same the API serves (services fully nested). Each array is
written from practitioners read a batch at a time, so memory stays flat however large the
directory; the text is produced as it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy.orm import Session

from referral.hsds.queries import Criteria, every_practitioner_id
from referral.hsds.records import (
    Catalogue,
    in_batches,
    location_record,
    organization_brief,
    phones,
    service_at_location_brief,
    service_record,
)
from referral.models import Practitioner


def chunks(session: Session, *, base_url: str | None = None) -> Iterator[str]:
    """The document's text, piece by piece. ``base_url`` (the site's root) adds each
    listing's page as its service's ``url``."""
    catalogue = Catalogue.load(session)

    def organization(p: Practitioner) -> Iterator[dict[str, Any]]:
        org = organization_brief(p)
        if p.phone:
            org["phones"] = phones(p, "organization", org["id"])
        yield org

    sections: tuple[tuple[str, Callable[[Practitioner], Iterable[dict[str, Any]]]], ...] = (
        ("organizations", organization),
        ("services", lambda p: [service_record(p, catalogue, base_url)]),
        ("locations", lambda p: (location_record(p, loc) for loc in p.locations)),
        (
            "service_at_locations",
            lambda p: (service_at_location_brief(p, loc) for loc in p.locations),
        ),
    )
    yield '{"hsds_version": "3.0"'
    for name, records in sections:
        yield f', "{name}": ['
        first = True
        for p in in_batches(session, every_practitioner_id(session, Criteria())):
            for record in records(p):
                yield ("" if first else ", ") + _dumps(record)
                first = False
        yield "]"
    for name, items in (("taxonomies", catalogue.taxonomies), ("taxonomy_terms", catalogue.terms)):
        yield f', "{name}": [' + ", ".join(_dumps(item) for item in items) + "]"
    yield "}\n"


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)

"""The HSDS 3.0 API at ``{prefix}/api/hsds/``: read-only, following Open Referral's document.

A blueprint nested in the JSON API's (``referral.api.hsds``), so bad input and unknown ids
answer in the API's error shape. Open data: any site may read it from the browser. Every
list is a page in Open Referral's envelope, or with ``format=ndjson`` every matching record,
one JSON object a line, streamed (memory stays flat).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound

from referral.db import read_session
from referral.hsds import openapi, queries, records
from referral.hsds.params import ListRequest, parse_list
from referral.hsds.records import (
    Catalogue,
    load_practitioners,
    organization_brief,
    organization_record,
    record_key,
    service_at_location_listed,
    service_at_location_record,
    service_brief,
    service_minimal,
    service_record,
)
from referral.models import Location, Practitioner
from referral.query import _flag
from referral.urls import external_url

HSDS_VERSION = "3.0"
#: Open Referral's description of HSDS itself: we publish no profile of it
PROFILE = "https://docs.openreferral.org/en/latest/hsds/overview.html"
NDJSON = "application/x-ndjson"
K = TypeVar("K")

COMMON = frozenset({"search", "page", "per_page", "format"})
SERVICE_FILTERS = frozenset(
    {"taxonomy_term_id", "taxonomy_id", "organization_id", "modified_after", "full"}
)


def blueprint() -> Blueprint:
    bp = Blueprint("hsds", __name__)
    bp.add_url_rule("/", "meta", meta)
    bp.add_url_rule("/openapi.json", "openapi", openapi_json)
    bp.add_url_rule("/services", "services", services)
    bp.add_url_rule("/services/<record>", "service", service)
    bp.add_url_rule("/organizations", "organizations", organizations)
    bp.add_url_rule("/organizations/<record>", "organization", organization)
    bp.add_url_rule("/service_at_locations", "service_at_locations", service_at_locations)
    bp.add_url_rule("/service_at_locations/<record>", "service_at_location", service_at_location)
    bp.add_url_rule("/taxonomies", "taxonomies", taxonomies)
    bp.add_url_rule("/taxonomies/<record>", "taxonomy", taxonomy)
    bp.add_url_rule("/taxonomy_terms", "taxonomy_terms", taxonomy_terms)
    bp.add_url_rule("/taxonomy_terms/<record>", "taxonomy_term", taxonomy_term)
    bp.after_request(_open_data)
    return bp


def _open_data(response: Response) -> Response:
    response.headers.setdefault("Access-Control-Allow-Origin", "*")
    return response


def meta() -> Response:
    return jsonify(
        version=HSDS_VERSION,
        profile=PROFILE,
        openapi_url=external_url("referral.api.hsds.openapi"),
    )


def openapi_json() -> Response:
    server = external_url("referral.api.hsds.meta").rstrip("/")
    return jsonify(openapi.document(current_app.config, server))


def _base_url() -> str:
    return external_url("referral.index")


def _parse(catalogue: Catalogue, takes: frozenset[str]) -> ListRequest:
    return parse_list(read_session(), request.args, current_app.config, catalogue, takes=takes)


def services() -> Response:
    session, catalogue, base = read_session(), Catalogue.load(read_session()), _base_url()
    req = _parse(catalogue, COMMON | SERVICE_FILTERS | {"minimal"})

    def render(p: Practitioner) -> dict[str, Any]:
        if req.minimal:
            return service_minimal(p)
        if req.full:
            return service_record(p, catalogue, base)
        return service_brief(p, base)

    return _answer_practitioners(session, req, render)


def service(record: str) -> Response:
    session = read_session()
    p = _practitioner(session, record_key("service", record), "service")
    return jsonify(service_record(p, Catalogue.load(session), _base_url()))


def organizations() -> Response:
    session, catalogue, base = read_session(), Catalogue.load(read_session()), _base_url()
    req = _parse(catalogue, COMMON | {"full", "full_service"})

    def render(p: Practitioner) -> dict[str, Any]:
        if req.full or req.full_service:
            return organization_record(p, catalogue, base, full_service=req.full_service)
        return organization_brief(p)

    return _answer_practitioners(session, req, render)


def _answer_practitioners(
    session: Session, req: ListRequest, render: Callable[[Practitioner], dict[str, Any]]
) -> Response:
    """A list of practitioner-shaped records (services, organizations): :func:`_answer`
    over the practitioners ``req`` selects, each rendered by ``render``."""
    c = req.criteria
    return _answer(
        req,
        count=lambda: queries.count_practitioners(session, c),
        page=lambda offset, limit: queries.practitioner_ids(session, c, offset, limit),
        every=lambda: queries.every_practitioner_id(session, c),
        render=lambda ids: [render(p) for p in load_practitioners(session, ids)],
    )


def organization(record: str) -> Response:
    session = read_session()
    p = _practitioner(session, record_key("organization", record), "organization")
    full_service = _flag(request.args, "full_service")
    return jsonify(
        organization_record(p, Catalogue.load(session), _base_url(), full_service=full_service)
    )


def service_at_locations() -> Response:
    session, catalogue, base = read_session(), Catalogue.load(read_session()), _base_url()
    req = _parse(catalogue, COMMON | SERVICE_FILTERS | {"postcode", "proximity"})
    c = req.criteria

    def render(pairs: Sequence[queries.Pair]) -> list[dict[str, Any]]:
        found = {p.id: p for p in load_practitioners(session, list({p for p, _ in pairs}))}
        out = []
        for practitioner_id, location_id in pairs:
            p = found.get(practitioner_id)
            loc = next((loc for loc in p.locations if loc.id == location_id), None) if p else None
            if p is None or loc is None:  # changed since it was counted
                continue
            out.append(
                service_at_location_record(p, loc, catalogue, base)
                if req.full
                else service_at_location_listed(p, loc, base)
            )
        return out

    if req.near is not None:
        near = queries.near_pairs(session, c, req.near)
        return _answer(
            req,
            count=lambda: len(near),
            page=lambda offset, limit: near[offset : offset + limit],
            every=lambda: near,
            render=render,
        )
    return _answer(
        req,
        count=lambda: queries.count_locations(session, c),
        page=lambda offset, limit: queries.location_pairs(session, c, offset, limit),
        every=lambda: queries.every_location_pair(session, c),
        render=render,
    )


def service_at_location(record: str) -> Response:
    session = read_session()
    key = record_key("service_at_location", record)
    loc = session.get(Location, key) if key is not None else None
    if loc is None or loc.practitioner.status != "active":
        raise NotFound("No active service_at_location has that id.")
    (p,) = load_practitioners(session, [loc.practitioner_id])
    loc = next(item for item in p.locations if item.id == key)
    return jsonify(service_at_location_record(p, loc, Catalogue.load(session), _base_url()))


def taxonomies() -> Response:
    catalogue = Catalogue.load(read_session())
    req = _parse(catalogue, COMMON)
    return _in_memory(req, _matching(catalogue.taxonomies, req, ("name", "description")))


def taxonomy(record: str) -> Response:
    catalogue = Catalogue.load(read_session())
    found = next((t for t in catalogue.taxonomies if t["id"] == record.strip().lower()), None)
    if found is None:
        raise NotFound("No taxonomy has that id.")
    return jsonify(found)


def taxonomy_terms() -> Response:
    catalogue = Catalogue.load(read_session())
    req = _parse(catalogue, COMMON | {"taxonomy_id", "parent_id", "top_only"})
    c = req.criteria
    terms = [catalogue.detailed(t) for t in catalogue.terms]
    if c.none or req.parent_id:  # a taxonomy none of ours; our terms have no parents
        terms = []
    elif c.taxonomy is not None:
        terms = [t for t in terms if catalogue.kinds[t["taxonomy_id"]] == c.taxonomy]
    # top_only: no term of ours has a parent or a child, so every term is at the top
    return _in_memory(req, _matching(terms, req, ("code", "name", "description")))


def taxonomy_term(record: str) -> Response:
    catalogue = Catalogue.load(read_session())
    found = next((t for t in catalogue.terms if t["id"] == record.strip().lower()), None)
    if found is None:
        raise NotFound("No taxonomy term has that id.")
    return jsonify(catalogue.detailed(found))


def _practitioner(session: Any, key: int | None, kind: str) -> Practitioner:
    found = load_practitioners(session, [key]) if key is not None else []
    if not found:
        raise NotFound(f"No active {kind} has that id.")
    return found[0]


def _matching(
    items: Iterable[dict[str, Any]], req: ListRequest, fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    words = req.criteria.words
    return [
        item
        for item in items
        if all(any(w in str(item.get(f, "")).lower() for f in fields) for w in words)
    ]


def _in_memory(req: ListRequest, items: list[dict[str, Any]]) -> Response:
    return _answer(
        req,
        count=lambda: len(items),
        page=lambda offset, limit: items[offset : offset + limit],
        every=lambda: items,
        render=list,
    )


def _answer(
    req: ListRequest,
    *,
    count: Callable[[], int],
    page: Callable[[int, int], Sequence[K]],
    every: Callable[[], Iterable[K]],
    render: Callable[[Sequence[K]], list[dict[str, Any]]],
) -> Response:
    """A page in Open Referral's envelope, or with ``format=ndjson`` every record."""
    if req.ndjson:
        return Response(stream_with_context(_lines(every(), render)), mimetype=NDJSON)
    total = count()
    contents = render(page((req.page - 1) * req.per_page, req.per_page)) if total else []
    return jsonify(envelope(contents, total, req.page, req.per_page))


def _lines(
    keys: Iterable[K], render: Callable[[Sequence[K]], list[dict[str, Any]]]
) -> Iterator[str]:
    it = iter(keys)
    while batch := list(islice(it, records.BATCH_SIZE)):
        yield "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in render(batch))


def envelope(contents: list[dict[str, Any]], total: int, page: int, per_page: int) -> dict:
    """Open Referral's paging envelope. An empty result is one empty page, so page 1 is
    always the first and the last."""
    total_pages = max(1, math.ceil(total / per_page))
    return {
        "total_items": total,
        "total_pages": total_pages,
        "page_number": page,
        "size": len(contents),
        "first_page": page == 1,
        "last_page": page >= total_pages,
        "empty": not contents,
        "contents": contents,
    }

"""JSON API v1 (a public contract, see DESIGN.md) and its OpenAPI document.

A nested blueprint ``referral.api`` at ``{prefix}/api`` so its error handler and CORS
headers apply to every API response and to nothing else. A catch-all route keeps unknown
paths and wrong methods inside the blueprint, so they too answer in JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from referral import capacity, openapi
from referral.db import read_session
from referral.errors import InvalidInput
from referral.geo.postcodes import suggest
from referral.hsds import views as hsds_views
from referral.listings import public_listing
from referral.models import (
    Condition,
    HealthFund,
    Location,
    Modality,
    Practitioner,
)
from referral.query import SearchQuery, parse_places, parse_search, run_search
from referral.routing import MAX_ID
from referral.search import Filters, Hit, LocationSummary, Results, listed_languages
from referral.urls import external_url

READ_METHODS = ["GET", "HEAD", "OPTIONS"]
ALL_METHODS = [*READ_METHODS, "POST", "PUT", "PATCH", "DELETE"]
HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}
FILTER_FIELDS = dataclasses.fields(Filters)


def register(bp: Blueprint) -> None:
    api = Blueprint("api", __name__)
    api.add_url_rule("/v1/practitioners", "practitioners", practitioners)
    api.add_url_rule("/v1/practitioners/<rowid:practitioner_id>", "practitioner", practitioner)
    api.add_url_rule("/v1/modalities", "modalities", lambda: _terms(Modality))
    api.add_url_rule("/v1/conditions", "conditions", lambda: _terms(Condition))
    api.add_url_rule("/v1/funds", "funds", lambda: _terms(HealthFund))
    api.add_url_rule("/v1/languages", "languages", languages)
    api.add_url_rule("/v1/places", "places", places)
    api.add_url_rule("/openapi.json", "openapi", openapi_json)
    api.add_url_rule("/", "unknown", unknown, defaults={"rest": ""}, methods=ALL_METHODS)
    api.add_url_rule("/<path:rest>", "unknown", unknown, methods=ALL_METHODS)
    api.register_error_handler(InvalidInput, error_response)
    api.register_error_handler(HTTPException, error_response)
    # Flask prefers a handler for a status code, in any blueprint, to one for a class: the
    # page blueprint's error pages are by code, so the API's JSON is too, for those codes
    from referral.views import ERROR_PAGES

    for status in (429, *ERROR_PAGES):
        api.register_error_handler(status, error_response)
    api.after_request(cors)
    api.register_blueprint(hsds_views.blueprint(), url_prefix="/hsds")
    bp.register_blueprint(api, url_prefix="/api")


def practitioners() -> Response:
    session = read_session()
    config = current_app.config
    query = parse_search(session, request.args, config)
    results = run_search(session, query, config)
    return jsonify(search_document(query, results))


def practitioner(practitioner_id: int) -> Response:
    found = public_listing(read_session(), practitioner_id)
    if found is None:
        raise NotFound("No active practitioner has that id.")
    return jsonify(practitioner_document(found))


def languages() -> Response:
    return jsonify(listed_languages(read_session()))


def places() -> Response:
    q, country, limit = parse_places(request.args, current_app.config)
    return jsonify(
        [
            {
                "place": p.name,
                "postcode": p.postcode,
                "state": p.state or None,
                "lat": p.lat,
                "lon": p.lon,
                "label": p.label,
                "kind": p.kind,
            }
            for p in suggest(read_session(), q, country, limit)
        ]
    )


def openapi_json() -> Response:
    server = external_url("referral.index").rstrip("/") + "/api"
    return jsonify(openapi.document(current_app.config, server))


def unknown(rest: str) -> Response:
    """Anything else under /api: 405 when the path exists for GET, else 404 (an id beyond
    :data:`~referral.routing.MAX_ID` matches no route, so it ends here too)."""
    adapter = current_app.create_url_adapter(request)
    try:
        endpoint, _ = adapter.match(method="GET")
    except HTTPException:  # pragma: no cover - a redirect rule; the catch-all matches first
        endpoint = None
    if endpoint and endpoint != request.endpoint:
        raise MethodNotAllowed(READ_METHODS, "The API is read-only: use GET.")
    raise NotFound("There is no such API path, or no record with that id; see openapi.json.")


def _terms(model: type[Modality] | type[Condition] | type[HealthFund]) -> Response:
    rows = read_session().scalars(select(model))
    # sorted here, not by the database: collations differ ("ahm" vs "Bupa")
    terms = sorted(rows, key=lambda row: (row.name.casefold(), row.slug))
    return jsonify([{"slug": row.slug, "name": row.name} for row in terms])


def search_document(query: SearchQuery, results: Results) -> dict[str, Any]:
    """The v1 search response: the query as understood, a page of results, and the
    nearest beyond the radius when nothing is inside it."""
    page_url = page_urls()
    point = query.point
    understood: dict[str, Any] = {
        "postcode": query.postcode,
        "country": query.country,
        "lat": point.lat,
        "lon": point.lon,
        "label": point.label,
        "source": point.source,
        "radius_km": query.radius_km,
        # one level of plain fields: asdict's deep copy cost more than the rest of this
        "filters": {f.name: getattr(query.filters, f.name) for f in FILTER_FIELDS},
    }
    if point.alternatives:
        understood["alternatives"] = [
            {"label": a.label, "postcode": a.postcode, "state": a.state, "lat": a.lat, "lon": a.lon}
            for a in point.alternatives
        ]
    if point.attribution:
        understood["attribution"] = point.attribution
    return {
        "query": understood,
        "total": results.total,
        "total_capped": results.total_capped,
        "page": results.page,
        "per_page": results.per_page,
        "results": [_summary(h, page_url) for h in results.hits],
        "nearest_beyond": [_summary(h, page_url) for h in results.nearest_beyond],
    }


def _summary(hit: Hit, page_url: Callable[[int], str]) -> dict[str, Any]:
    p = hit.practitioner
    return {
        "id": p.id,
        "name": p.name,
        "modalities": [m.slug for m in p.modalities],
        "conditions": [c.slug for c in p.conditions],
        "accepting_new_patients": p.accepting_new_patients,
        "capacity": capacity.of(p).document(),
        "home_visits": p.home_visits,
        "telehealth": p.telehealth,
        "distance_km": round(hit.distance_km, 3),
        "location": _location(hit.location),
        "url": page_url(p.id),
    }


def practitioner_document(p: Practitioner) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "business_name": p.business_name,
        "bio": p.bio or "",
        "modalities": [m.slug for m in p.modalities],
        "conditions": [c.slug for c in p.conditions],
        "funds": [f.fund.slug for f in p.funds],
        "languages": list(p.languages or []),
        "accepting_new_patients": p.accepting_new_patients,
        "capacity": capacity.of(p).document(),
        "home_visits": p.home_visits,
        "telehealth": p.telehealth,
        "accreditation_body": p.accreditation_body,
        "membership_number": p.membership_number,
        "phone": p.phone,
        "website": p.website,
        "locations": [_location(loc) for loc in p.locations],
        "url": page_urls()(p.id),
    }


def _location(loc: Location | LocationSummary) -> dict[str, Any]:
    return {
        "id": loc.id,
        "name": loc.name,
        "suburb": loc.suburb,
        "state": loc.state,
        "postcode": loc.postcode,
        "country": loc.country,
        "lat": loc.lat,
        "lon": loc.lon,
        "home_visit_radius_km": loc.home_visit_radius_km,
    }


def page_urls() -> Callable[[int], str]:
    """Practitioner page URLs (the API's one way to build them) from one ``url_for``
    call: building each of a page's ten cost a tenth of the whole search response."""
    marker = str(MAX_ID)  # no id is larger; the last match is where the id goes
    template = external_url("referral.practitioner", practitioner_id=MAX_ID)
    head, _, tail = template.rpartition(marker)
    return lambda practitioner_id: f"{head}{int(practitioner_id)}{tail}"


def error_response(exc: InvalidInput | HTTPException) -> tuple[Response, int]:
    """Every API error as ``{"error": {"code", "message"}}``; never a page or a trace."""
    if isinstance(exc, InvalidInput):
        status, code, message = exc.status, exc.code, exc.message
    else:
        status = exc.code or 500
        code = HTTP_ERROR_CODES.get(status, "internal_error")
        message = exc.description or "Request failed."
        if code == "internal_error":
            status, message = 500, "Something went wrong on our side; please try again."
    error: dict[str, Any] = {"code": code, "message": message}
    if isinstance(exc, InvalidInput) and exc.code == "location_not_found":
        error["suggestions"] = list(exc.suggestions)
    response = jsonify(error=error)
    if isinstance(exc, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(exc.valid_methods or READ_METHODS)
    if status in (429, 503):
        response.headers["Retry-After"] = "60"
    return response, status


def cors(response: Response) -> Response:
    """CORS for the origins in ``REFERRAL_CORS_ORIGINS`` (exact match, or ``*``)."""
    response.vary.add("Origin")
    if request.method == "OPTIONS":  # not the catch-all's methods: the API is read-only
        response.headers["Allow"] = ", ".join(READ_METHODS)
    origin = request.headers.get("Origin")
    allowed = allowed_origin(origin, current_app.config["REFERRAL_CORS_ORIGINS"])
    if allowed is None:
        return response
    response.headers["Access-Control-Allow-Origin"] = allowed
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = ", ".join(READ_METHODS)
        response.headers["Access-Control-Allow-Headers"] = "Accept, Accept-Language, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def allowed_origin(origin: str | None, configured: Any) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for ``origin``, or ``None`` to refuse.

    ``configured`` is a list, or a comma-separated string (as an environment variable
    gives it): never a substring match.
    """
    if not origin:
        return None
    if isinstance(configured, str):
        configured = [part.strip() for part in configured.split(",")]
    origins = {o.rstrip("/") for o in configured or () if o}
    if "*" in origins:
        return "*"
    return origin if origin in origins else None

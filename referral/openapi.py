"""The OpenAPI 3.1 document of JSON API v1, and the one list of its error codes.

:data:`ERRORS` is what clients may rely on: every ``error.code`` the API emits is listed
here with its HTTP status, the document is built from it, and a test checks that the code
raises nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from referral import __version__
from referral.routing import MAX_ID

#: error code -> (HTTP status, meaning)
ERRORS: dict[str, tuple[int, str]] = {
    "missing_location": (400, "No postcode, suburb or lat/lon was given."),
    "invalid_postcode": (400, "The postcode or suburb is longer than 100 characters."),
    "invalid_country": (400, "country is not a two-letter ISO code."),
    "invalid_lat": (400, "lat is not a number from -90 to 90."),
    "invalid_lon": (400, "lon is not a number from -180 to 180."),
    "invalid_coordinates": (400, "Only one of lat and lon was given."),
    "invalid_radius_km": (400, "radius_km is not a number from 0.1 to REFERRAL_MAX_RADIUS_KM."),
    "invalid_page": (400, "page is not a whole number from 1 to 10000."),
    "invalid_per_page": (400, "per_page is not a whole number from 1 to REFERRAL_MAX_PER_PAGE."),
    "unknown_modality": (400, "A modality slug is not in GET /v1/modalities."),
    "unknown_condition": (400, "The condition slug is not in GET /v1/conditions."),
    "unknown_fund": (400, "The fund slug is not in GET /v1/funds."),
    "invalid_accepting": (400, "accepting is not yes/no (1, true, yes, on / 0, false, no, off)."),
    "invalid_home_visits": (
        400,
        "home_visits is not yes/no (1, true, yes, on / 0, false, no, off).",
    ),
    "invalid_language": (400, "language is longer than 40 characters."),
    "unknown_language": (400, "language is neither an ISO 639 code nor a language's name."),
    "invalid_telehealth": (
        400,
        "telehealth is not yes/no (1, true, yes, on / 0, false, no, off).",
    ),
    "invalid_characters": (400, "A parameter contains control characters (such as NUL)."),
    "invalid_q": (400, "q is missing or longer than 100 characters."),
    "invalid_limit": (400, "limit is not a whole number from 1 to REFERRAL_AUTOCOMPLETE_LIMIT."),
    "location_not_found": (
        404,
        "Nothing matched the postcode or suburb: a postcode-shaped string not in the "
        "country's list, text with no letter or digit, or a name the gazetteer does not hold "
        "(answered at once, no remote call unless the text reads like an address); "
        "`error.suggestions` lists places the person may have meant.",
    ),
    "not_found": (404, "No such path, or no active practitioner with that id."),
    "method_not_allowed": (405, "The API is read-only: GET (and HEAD, OPTIONS) only."),
    "geocoder_rate_limited": (
        429,
        "This client has made REFERRAL_GEOCODER_CLIENT_RATE_LIMIT searches that reach the "
        "remote geocoder; search by postcode or suburb, or retry later (see Retry-After).",
    ),
    "geocoder_unavailable": (
        503,
        "The place was not in the postcode table and the remote geocoder timed out or "
        "failed; retry later (see Retry-After) or send a postcode.",
    ),
    "search_timeout": (
        503,
        "The search ran past REFERRAL_SEARCH_TIMEOUT_MS; retry later (see Retry-After) or "
        "search a smaller radius.",
    ),
    "internal_error": (500, "A fault on the server; never expected, reported if seen."),
}

STATUS_TEXT = {
    400: "Bad input",
    404: "Not found",
    405: "Method not allowed",
    429: "Too many requests",
    500: "Server fault",
    503: "Location service unavailable",
}


def error_codes(*statuses: int) -> list[str]:
    return [code for code, (status, _) in ERRORS.items() if not statuses or status in statuses]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_response(status: int) -> dict[str, Any]:
    codes = error_codes(status)
    listed = "; ".join(f"`{code}`: {ERRORS[code][1]}" for code in codes)
    schema = {
        "allOf": [
            _ref("Error"),
            {"properties": {"error": {"properties": {"code": {"enum": codes}}}}},
        ]
    }
    response: dict[str, Any] = {
        "description": f"{STATUS_TEXT[status]}. Codes: {listed}",
        "content": {"application/json": {"schema": schema}},
    }
    if status in (429, 503):
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}
        }
    if status == 405:
        response["headers"] = {"Allow": {"schema": {"type": "string"}}}
    return response


def _responses(ok: dict[str, Any], *statuses: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": ok}
    for status in (*statuses, 405, 500):
        out[str(status)] = _error_response(status)
    return out


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def _slugs(name: str, description: str) -> dict[str, Any]:
    return _param(
        name,
        description + " Repeat the parameter or separate slugs with commas; combined with OR.",
        {"type": "array", "items": {"type": "string", "maxLength": 64}},
        style="form",
        explode=True,
    )


def document(config: Mapping[str, Any], server_url: str) -> dict[str, Any]:
    """The OpenAPI document for one app: limits and defaults come from its config."""
    max_radius = float(config["REFERRAL_MAX_RADIUS_KM"])
    max_per_page = int(config["REFERRAL_MAX_PER_PAGE"])
    nullable_str = {"type": ["string", "null"]}
    term = {
        "type": "object",
        "required": ["slug", "name"],
        "properties": {"slug": {"type": "string"}, "name": {"type": "string"}},
    }
    location = {
        "type": "object",
        "required": ["id", "suburb", "state", "postcode", "country", "lat", "lon"],
        "properties": {
            "id": {"type": "integer"},
            "name": nullable_str,
            "suburb": nullable_str,
            "state": nullable_str,
            "postcode": nullable_str,
            "country": {"type": "string"},
            "lat": {"type": "number"},
            "lon": {"type": "number"},
            "home_visit_radius_km": {"type": ["number", "null"]},
        },
    }
    summary = {
        "type": "object",
        "required": [
            "id",
            "name",
            "modalities",
            "conditions",
            "distance_km",
            "location",
            "url",
        ],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "modalities": {"type": "array", "items": {"type": "string"}},
            "conditions": {"type": "array", "items": {"type": "string"}},
            "accepting_new_patients": {"type": "boolean"},
            "capacity": _ref("Capacity"),
            "home_visits": {"type": "boolean"},
            "telehealth": {"type": "boolean"},
            "distance_km": {
                "type": "number",
                "description": "Great-circle distance to the practitioner's nearest location.",
            },
            "location": _ref("Location"),
            "url": {
                "type": "string",
                "format": "uri",
                "description": "The practitioner's page, with the referral form.",
            },
        },
    }
    detail = {
        "type": "object",
        "required": ["id", "name", "modalities", "conditions", "funds", "locations", "url"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "business_name": nullable_str,
            "bio": {"type": "string"},
            "modalities": {"type": "array", "items": {"type": "string"}},
            "conditions": {"type": "array", "items": {"type": "string"}},
            "funds": {"type": "array", "items": {"type": "string"}},
            "languages": {"type": "array", "items": {"type": "string"}},
            "accepting_new_patients": {
                "type": "boolean",
                "description": "Accepting new patients now: what the `accepting` filter means.",
            },
            "capacity": _ref("Capacity"),
            "home_visits": {"type": "boolean"},
            "telehealth": {"type": "boolean"},
            "accreditation_body": nullable_str,
            "membership_number": nullable_str,
            "phone": nullable_str,
            "website": nullable_str,
            "locations": {"type": "array", "items": _ref("Location")},
            "url": {"type": "string", "format": "uri"},
        },
    }
    capacity = {
        "type": "object",
        "description": "What the listing says of new patients, as it stands now.",
        "required": ["status", "waitlist_weeks", "updated"],
        "properties": {
            "status": {
                "type": "string",
                "enum": ["accepting", "waitlist", "existing_only", "closed"],
                "description": "`waitlist` also when the practitioner's weekly number of new "
                "referrals is reached (until the week turns, Monday in the site's time zone).",
            },
            "waitlist_weeks": {
                "type": ["integer", "null"],
                "description": "The usual wait in weeks, for a waitlist the practitioner set.",
            },
            "updated": {
                "type": ["string", "null"],
                "format": "date",
                "description": "When the practitioner last confirmed it.",
            },
        },
    }
    search_response = {
        "type": "object",
        "required": [
            "query",
            "total",
            "total_capped",
            "page",
            "per_page",
            "results",
            "nearest_beyond",
        ],
        "properties": {
            "query": {
                "type": "object",
                "required": ["lat", "lon", "radius_km", "country"],
                "description": "The search as understood: the resolved point and its label.",
                "properties": {
                    "postcode": {"type": "string"},
                    "country": {"type": "string"},
                    "lat": {"type": "number"},
                    "lon": {"type": "number"},
                    "label": {"type": "string"},
                    "source": {
                        "type": "string",
                        "enum": ["coordinates", "postcode", "suburb", "geocoder"],
                    },
                    "radius_km": {"type": "number"},
                    "filters": {"type": "object", "description": "The filters applied."},
                    "alternatives": {
                        "type": "array",
                        "items": _ref("Alternative"),
                        "description": "Present when the text was ambiguous (Newtown is in "
                        "NSW, VIC and QLD): the other places it could mean, most likely "
                        "first; lat/lon/label are the most likely one.",
                    },
                    "attribution": {
                        "type": "string",
                        "description": "Present when a remote geocoder found the place: the "
                        "credit to show with it (e.g. © OpenStreetMap contributors).",
                    },
                },
            },
            "total": {
                "type": "integer",
                "description": "Practitioners within radius_km, exact up to REFERRAL_MAX_TOTAL "
                f"= {config['REFERRAL_MAX_TOTAL']}; beyond it that number, with total_capped.",
            },
            "total_capped": {
                "type": "boolean",
                "description": 'true when more match than total says (show it as "500+").',
            },
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "results": {"type": "array", "items": _ref("PractitionerSummary")},
            "nearest_beyond": {
                "type": "array",
                "items": _ref("PractitionerSummary"),
                "description": "Empty unless total is 0: then the nearest few beyond "
                f"radius_km (at most REFERRAL_NEAREST_FALLBACK = "
                f"{config['REFERRAL_NEAREST_FALLBACK']}), nearest first.",
            },
        },
    }
    place = {
        "type": "object",
        "required": ["place", "postcode", "state", "lat", "lon", "label", "kind"],
        "properties": {
            "place": {"type": "string"},
            "postcode": {"type": "string"},
            "state": nullable_str,
            "lat": {"type": "number"},
            "lon": {"type": "number"},
            "label": {"type": "string", "description": "As a local writes it: Sydney NSW 2000."},
            "kind": {
                "type": "string",
                "enum": ["delivery", "pobox"],
                "description": "`pobox`: a PO box or large-volume-receiver postcode.",
            },
        },
    }
    alternative = {
        "type": "object",
        "required": ["label", "postcode", "state", "lat", "lon"],
        "properties": {
            "label": {"type": "string"},
            "postcode": {"type": "string"},
            "state": {"type": "string"},
            "lat": {"type": "number"},
            "lon": {"type": "number"},
        },
    }
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": error_codes()},
                    "message": {"type": "string", "description": "For the person; may change."},
                    "suggestions": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "location_not_found only: places the person may "
                        "have meant, as labels to search for (Did you mean ...).",
                    },
                },
            }
        },
    }
    country = _param(
        "country",
        "ISO 3166 two-letter country of the postcode.",
        {
            "type": "string",
            "pattern": "^[A-Za-z]{2}$",
            "default": config["REFERRAL_DEFAULT_COUNTRY"],
        },
    )
    search_params = [
        _param(
            "postcode",
            "Postcode or suburb name (`2000`, `Surry Hills`, `Surry Hills 2010`). Looked up in "
            "the local postcode table, then the geocode cache, then the remote geocoder.",
            {"type": "string", "maxLength": 100},
        ),
        country,
        _param("lat", "Latitude; with lon, instead of postcode.", _range(-90, 90)),
        _param("lon", "Longitude; with lat.", _range(-180, 180)),
        _param(
            "radius_km",
            "Search radius in kilometres.",
            {**_range(0.1, max_radius), "default": float(config["REFERRAL_DEFAULT_RADIUS_KM"])},
        ),
        _slugs("modality", "Modality slugs from GET /v1/modalities."),
        _param(
            "condition",
            "A condition slug from GET /v1/conditions: every modality that treats it.",
            {"type": "string", "maxLength": 64},
        ),
        _param(
            "fund",
            "A health fund slug from GET /v1/funds: practitioners with its rebates.",
            {"type": "string", "maxLength": 64},
        ),
        _param(
            "accepting",
            "`true`: only practitioners accepting new patients.",
            {"type": "boolean"},
        ),
        _param(
            "home_visits",
            "`true`: only practitioners whose home-visit radius reaches the searched place.",
            {"type": "boolean"},
        ),
        _param(
            "language",
            "A language the practitioner speaks: an ISO 639 code (`el`, `yue`) or an English "
            "name (`Greek`); a macrolanguage matches its members (`Chinese` finds Mandarin and "
            "Cantonese speakers). GET /v1/languages lists those practitioners list.",
            {"type": "string", "maxLength": 40},
        ),
        _param(
            "telehealth",
            "`true`: only practitioners offering telehealth sessions.",
            {"type": "boolean"},
        ),
        _param(
            "page",
            "Page of results, from 1.",
            {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1},
        ),
        _param(
            "per_page",
            "Results per page.",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": max_per_page,
                "default": int(config["REFERRAL_PER_PAGE"]),
            },
        ),
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{config['REFERRAL_SITE_NAME']} API",
            "version": f"1 (referral {__version__})",
            "description": "Find the nearest practitioners. Read-only, no authentication. "
            'Errors are `{"error": {"code", "message"}}` with the codes listed on each '
            "response; browsers on the origins in REFERRAL_CORS_ORIGINS may call it (CORS).",
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/v1/practitioners": {
                "get": {
                    "operationId": "searchPractitioners",
                    "summary": "Active practitioners near a place, nearest first",
                    "parameters": search_params,
                    "responses": _responses(
                        _json("Results, nearest first.", _ref("SearchResponse")), 400, 404, 429, 503
                    ),
                }
            },
            "/v1/practitioners/{id}": {
                "get": {
                    "operationId": "getPractitioner",
                    "summary": "One active practitioner",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                        }
                    ],
                    "responses": _responses(_json("The listing.", _ref("Practitioner")), 404),
                }
            },
            "/v1/modalities": _list("listModalities", "Modality taxonomy", _ref("Term")),
            "/v1/conditions": _list("listConditions", "Condition taxonomy", _ref("Term")),
            "/v1/funds": _list("listFunds", "Health funds / insurers", _ref("Term")),
            "/v1/languages": _list(
                "listLanguages",
                "Languages practitioners list, as ISO 639 codes and English names",
                {
                    "type": "object",
                    "required": ["code", "name"],
                    "properties": {"code": {"type": "string"}, "name": {"type": "string"}},
                },
            ),
            "/v1/places": {
                "get": {
                    "operationId": "suggestPlaces",
                    "summary": "Suburbs and postcodes starting with q (autocomplete)",
                    "description": "Served from the local gazetteer only (never a remote "
                    "service): localities matching the start of any word of their name, "
                    "delivery areas first.",
                    "parameters": [
                        _param(
                            "q",
                            "Start of a suburb name or postcode.",
                            {"type": "string", "minLength": 1, "maxLength": 100},
                            required=True,
                        ),
                        country,
                        _param(
                            "limit",
                            "Most suggestions.",
                            {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": int(config["REFERRAL_AUTOCOMPLETE_LIMIT"]),
                            },
                        ),
                    ],
                    "responses": _responses(
                        _json("Matches.", {"type": "array", "items": _ref("Place")}), 400
                    ),
                }
            },
            "/v1/export/hsds.json": {
                "get": {
                    "operationId": "exportHsds",
                    "summary": "The active directory as Open Referral HSDS 3.0 JSON (open data)",
                    "description": "Organizations, services, locations with coordinates, "
                    "service_at_location and modality taxonomy terms; no contact emails. "
                    "Readable from any origin; streamed as it is written. The same records, "
                    "paged and searchable, are the HSDS 3.0 API at hsds/ (its own document: "
                    "hsds/openapi.json).",
                    "responses": _responses(_json("HSDS 3.0 document.", {"type": "object"})),
                }
            },
            "/v1/export/fhir.json": {
                "get": {
                    "operationId": "exportFhir",
                    "summary": "The active directory as a FHIR R4 Bundle (open data)",
                    "description": "A collection Bundle of Organization, Practitioner, "
                    "PractitionerRole, HealthcareService and Location resources, streamed; "
                    "no contact emails. Readable from any origin.",
                    "responses": _responses(
                        {
                            "description": "FHIR R4 Bundle.",
                            "content": {"application/fhir+json": {"schema": {"type": "object"}}},
                        }
                    ),
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": _responses(_json("OpenAPI 3.1.", {"type": "object"})),
                }
            },
        },
        "components": {
            "schemas": {
                "Error": error,
                "Term": term,
                "Location": location,
                "Capacity": capacity,
                "PractitionerSummary": summary,
                "Practitioner": detail,
                "SearchResponse": search_response,
                "Place": place,
                "Alternative": alternative,
            }
        },
    }


def _range(low: float, high: float) -> dict[str, Any]:
    return {"type": "number", "minimum": low, "maximum": high}


def _list(operation: str, summary: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation,
            "summary": summary,
            "responses": _responses(_json(summary, {"type": "array", "items": item})),
        }
    }

"""The OpenAPI document of ``{prefix}/api/hsds/``: Open Referral's, with its faults corrected.

``data/openapi.json`` is Open Referral's HSDS 3.0 API description, unchanged (CC BY-SA 4.0,
see ``data/NOTICE``). :func:`document` serves it with its placeholders filled in (``info``,
``servers``) and :data:`CORRECTIONS` applied: each one a place where the document, taken as
written, makes a valid answer fail. The conformance tests load the unchanged file and apply
the same corrections, so the list below is the whole of the difference.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from referral import __version__

SCHEMA_BASE = "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/"
LISTS = ("/services", "/organizations", "/service_at_locations", "/taxonomies", "/taxonomy_terms")

#: (path, what is wrong, what we do); :func:`corrected` applies them
CORRECTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "/service_at_locations/{id}",
        "its 200 response is described by compiled/service.json, which requires a service's "
        "name and status: no service_at_location has them",
        "described by compiled/service_at_location.json",
    ),
    *(
        (
            path,
            "format=ndjson is offered, but the 200 response declares only application/json",
            "the 200 response also declares application/x-ndjson (one record a line)",
        )
        for path in LISTS
    ),
)


@cache
def original() -> dict[str, Any]:
    """Open Referral's document as published."""
    text = resources.files("referral.hsds").joinpath("data/openapi.json").read_text("utf-8")
    return json.loads(text)


def corrected(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` with :data:`CORRECTIONS` applied."""
    doc = copy.deepcopy(dict(doc))
    paths = doc["paths"]
    content = paths["/service_at_locations/{id}"]["get"]["responses"]["200"]["content"]
    content["application/json"]["schema"] = {
        "$ref": SCHEMA_BASE + "compiled/service_at_location.json"
    }
    for path in LISTS:
        ok = paths[path]["get"]["responses"]["200"]
        ok["content"]["application/x-ndjson"] = {
            "schema": {"type": "string", "description": "One record a line (format=ndjson)."}
        }
    return doc


def document(config: Mapping[str, Any], server_url: str) -> dict[str, Any]:
    """The document this site serves, with its own title, version and server."""
    doc = corrected(original())
    doc["info"] = {
        "title": f"{config['REFERRAL_SITE_NAME']}: HSDS 3.0 API",
        "version": f"3.0 (referral {__version__})",
        "summary": "The active directory as Open Referral HSDS 3.0, read-only.",
        "description": (
            "Open Referral's HSDS 3.0 API document (CC BY-SA 4.0, https://openreferral.org/) "
            "with these corrections: "
            + "; ".join(f"{path}: {wrong}, so {fix}" for path, wrong, fix in CORRECTIONS)
            + '. Errors are {"error": {"code", "message"}} (400 for a bad parameter, '
            "404 for an unknown id)."
        ),
        "license": {
            "name": "CC BY-SA 4.0",
            "url": "https://creativecommons.org/licenses/by-sa/4.0/",
        },
    }
    doc["servers"] = [{"url": server_url}]
    return doc

"""Open Referral's HSDS 3.0 OpenAPI document, made usable offline, for the HSDS tests.

The document names its schemas by absolute URL (raw.githubusercontent.com), which the tests
cannot fetch: :data:`REGISTRY` serves those URLs from the copies in ``data/hsds-3.0/``, and
:func:`inlined` gives a copy of the document with each such ``$ref`` pointing inside it (what
schemathesis is handed).
"""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from referral.hsds import openapi

DATA = Path(__file__).parent / "data" / "hsds-3.0"
BASE = openapi.SCHEMA_BASE
#: each schema the document (or a schema it names) refers to: URL -> file in DATA
FILES = {
    f"{BASE}compiled/service.json": "compiled/service.json.gz",
    f"{BASE}compiled/organization.json": "compiled/organization.json.gz",
    f"{BASE}compiled/service_at_location.json": "compiled/service_at_location.json.gz",
    f"{BASE}compiled/service_list.json": "compiled/service_list.json",
    f"{BASE}compiled/organization_list.json": "compiled/organization_list.json",
    f"{BASE}compiled/service_at_location_list.json": "compiled/service_at_location_list.json",
    f"{BASE}taxonomy.json": "taxonomy.json",
    f"{BASE}taxonomy_term.json": "taxonomy_term.json",
    f"{BASE}metadata.json": "metadata.json",
}


@cache
def schema_file(url: str) -> dict[str, Any]:
    path = DATA / FILES[url]
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return json.loads(raw)


def registry() -> Registry:
    return Registry().with_resources(
        (url, Resource.from_contents(schema_file(url), default_specification=DRAFT202012))
        for url in FILES
    )


REGISTRY = registry()


def document() -> dict[str, Any]:
    """Open Referral's document (unchanged, as the package ships it) with our corrections
    (:data:`referral.hsds.openapi.CORRECTIONS`) and a server to call."""
    doc = openapi.corrected(openapi.original())
    doc["servers"] = [{"url": "http://localhost/find-a-therapist/api/hsds"}]
    return doc


def _key(url: str) -> str:
    return url.removeprefix(BASE).removesuffix(".json").replace("/", "_")


def _rewrite(node: Any, base: str) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v, base) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            url = ref if ref.startswith("http") else base + ref
            out["$ref"] = f"#/components/schemas/{_key(url)}"
        return out
    if isinstance(node, list):
        return [_rewrite(v, base) for v in node]
    return node


def inlined() -> dict[str, Any]:
    """:func:`document` with every schema it names copied into ``components.schemas``."""
    doc = _rewrite(document(), BASE)
    schemas = doc["components"].setdefault("schemas", {})
    for url in FILES:
        folder = url.rsplit("/", 1)[0] + "/"
        schemas[_key(url)] = _rewrite(copy.deepcopy(schema_file(url)), folder)
    return doc


def response_validator(path: str) -> Draft202012Validator:
    """A validator for the 200 JSON answer of ``GET path``, as the document describes it."""
    doc = document()
    schema = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    wrapped = {**schema["schema"], "components": doc["components"]}
    return Draft202012Validator(
        wrapped, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def errors(path: str, body: Any) -> list[str]:
    return [
        f"{list(e.absolute_path)}: {e.message}" for e in response_validator(path).iter_errors(body)
    ]


def build_directory(session: Any, add_practitioner: Any) -> dict[str, Any]:
    """Seven active listings (one rich, in two places) and two that are not public."""
    from datetime import datetime

    from sqlalchemy import select

    from referral.models import HealthFund, PractitionerFund

    bupa = session.scalars(select(HealthFund).where(HealthFund.slug == "bupa")).one()
    ana = add_practitioner(
        "Ana Lima",
        (-33.8688, 151.2093),
        (-33.8840, 151.2120),
        modalities=("remedial-massage", "myotherapy"),
        conditions=("low-back-pain", "sciatica"),
        business_name="Harbour Massage",
        bio="Deep tissue and sports massage for office workers.",
        phone="02 9123 4567",
        email="ana@example.com",
        website="https://ana.example.com",
        accreditation_body="Massage & Myotherapy Australia",
        membership_number="M-1",
        languages=["English", "Portuguese"],
        funds=[PractitionerFund(fund=bupa, provider_number="123456A")],
        verified_at=datetime(2026, 11, 1, 9, 30),
    )
    ana.locations[0].opening_hours = {"mon": [["09:00", "12:00"], ["13:00", "17:00"]]}
    ana.locations[0].postcode = "2000"
    ana.locations[0].street = "1 George St"
    people = {"ana": ana}
    for key, name, point, modalities, conditions in (
        ("ben", "Ben Ode", (-33.8150, 151.0010), ("physiotherapy",), ("neck-pain",)),
        ("cai", "Cai Wu", (-37.8140, 144.9633), ("yoga",), ()),
        ("dee", "Dee Roy", (-33.8390, 151.2070), ("remedial-massage",), ("neck-pain",)),
        ("eli", "Eli Stone", (-27.4698, 153.0251), ("osteopathy",), ()),
        ("fay", "Fay Ng", (-32.9270, 151.7760), ("remedial-massage", "yoga"), ()),
        ("gus", "Gus Hale", (-33.8610, 151.2016), ("chiropractic",), ("headache",)),
    ):
        people[key] = add_practitioner(name, point, modalities=modalities, conditions=conditions)
    people["pending"] = add_practitioner("Pat Pending", (-33.87, 151.21), status="pending")
    people["suspended"] = add_practitioner("Sam Suspended", (-33.87, 151.21), status="suspended")
    session.commit()
    return people

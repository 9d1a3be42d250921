"""The active directory as an HL7 FHIR R4 Bundle (``type: collection``), streamed.

Each active listing becomes five kinds of resource, tied together by ``urn:uuid:``
references inside the Bundle (ids are UUIDs derived from our ids, the same from one export
to the next):

- ``Organization``: the practice (the business name, else the practitioner's name), phone
  and website;
- ``Practitioner``: the person, the languages they speak (``communication``, coded
  ``urn:ietf:bcp:47``) and their accreditation (``qualification``: the body as issuer, the
  membership or registration number as its identifier);
- ``PractitionerRole``: the practitioner at the organization, their modalities as
  ``specialty``, their locations and service, phone and website, and
  ``availabilityExceptions`` when not taking new patients;
- ``Location``: each place, with ``address``, ``position`` (latitude/longitude) and
  ``hoursOfOperation``;
- ``HealthcareService``: what a patient can book: modalities as ``type``, the listing page
  and phone, the bio as ``extraDetails``, languages, and as ``characteristic`` the
  conditions treated, the health funds accepted and telehealth / home visits / accepting
  new patients.

Code systems. A modality is always coded in the directory's own CodeSystem
``{base}/fhir/CodeSystem/modality`` (code = the modality's slug, display = its name; so
are conditions, funds and listing features, each in ``{base}/fhir/CodeSystem/<name>``,
where ``{base}`` is the directory's public address). Where SNOMED CT has a concept that
means the same, the modality's CodeableConcept carries it too (:data:`SNOMED`); those are
occupation concepts (the practitioner who practises the modality), checked against the
NUCC-to-SNOMED CT ConceptMap of HL7's Da Vinci implementation guides. Modalities with no
SNOMED CT concept of their own (myotherapy, yoga, clinical pilates, exercise physiology)
carry the local code only, rather than a broader concept that would mislead.

Nothing private: no referral, no account, no email address (the listing pages publish
none). Only ``active`` listings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from referral.export import iter_active_practitioners
from referral.languages import code_for
from referral.listings import DAYS
from referral.models import Condition, HealthFund, Location, Modality, Practitioner

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://hl7.org/fhir/R4/referral-plugin")
SNOMED_SYSTEM = "http://snomed.info/sct"
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
ORGANIZATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
#: modality slug -> SNOMED CT concept (code, display), for the default modalities that
#: have one; see the module docstring for where these were checked
SNOMED: dict[str, tuple[str, str]] = {
    "physiotherapy": ("36682004", "Physiotherapist (occupation)"),
    "osteopathy": ("76231001", "Osteopath (occupation)"),
    "chiropractic": ("3842006", "Chiropractor (occupation)"),
    "remedial-massage": ("1172950003", "Massage therapist (occupation)"),
}
#: the directory's own CodeSystem for what a listing offers (code -> display)
FEATURES = {
    "accepting-new-patients": "Accepting new patients",
    "telehealth": "Telehealth",
    "home-visits": "Home visits",
}
#: the Bundle is written in pieces of about this many characters
CHUNK_CHARS = 64 * 1024


def resource_id(kind: str, key: object) -> str:
    """A resource's id: a UUID derived from what it describes, stable across exports."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


def code_system(base_url: str, name: str) -> str:
    """The URL of one of the directory's own CodeSystems (``modality``, ``condition``,
    ``health-fund``, ``listing-feature``)."""
    return f"{base_url.rstrip('/')}/fhir/CodeSystem/{name}"


#: the directory's own CodeSystems: URL name -> (computable name, title, taxonomy model)
CODE_SYSTEMS: dict[str, tuple[str, str, type | None]] = {
    "modality": ("ReferralModality", "What a practitioner practises", Modality),
    "condition": ("ReferralCondition", "Conditions a practitioner treats", Condition),
    "health-fund": (
        "ReferralHealthFund",
        "Health funds a practitioner is registered with",
        HealthFund,
    ),
    "listing-feature": ("ReferralListingFeature", "What a listing offers", None),
}


def code_system_resource(session: Session, base_url: str, name: str) -> dict[str, Any] | None:
    """One of the directory's own CodeSystems as a FHIR resource (every code it holds),
    served at its own URL (:func:`code_system`) so a consumer can look a code up; ``None``
    for a name that is none of :data:`CODE_SYSTEMS`."""
    if name not in CODE_SYSTEMS:
        return None
    computable, title, model = CODE_SYSTEMS[name]
    if model is None:
        concepts = [{"code": code, "display": display} for code, display in FEATURES.items()]
    else:
        rows = session.execute(select(model.slug, model.name).order_by(model.slug))
        concepts = [{"code": slug, "display": display} for slug, display in rows]
    return {
        "resourceType": "CodeSystem",
        "id": name,
        "url": code_system(base_url, name),
        "name": computable,
        "title": title,
        "status": "active",
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": concepts,
    }


def _ref(kind: str, key: object, display: str | None = None) -> dict[str, str]:
    return _compact({"reference": f"urn:uuid:{resource_id(kind, key)}", "display": display})


def _compact(value: Any) -> Any:
    """``value`` without empty strings, lists, dicts or ``None`` (FHIR forbids them)."""
    if isinstance(value, dict):
        items = ((k, _compact(v)) for k, v in value.items())
        return {k: v for k, v in items if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [v for v in (_compact(v) for v in value) if v not in (None, "", [], {})]
    return value


def modality_concept(base_url: str, slug: str, name: str) -> dict[str, Any]:
    """A modality as a CodeableConcept: the local code, and SNOMED CT's where it has one."""
    coding = [{"system": code_system(base_url, "modality"), "code": slug, "display": name}]
    if slug in SNOMED:
        code, display = SNOMED[slug]
        coding.append({"system": SNOMED_SYSTEM, "code": code, "display": display})
    return {"coding": coding, "text": name}


def _language(name: str) -> dict[str, Any]:
    code = code_for(name)
    coding = [{"system": LANGUAGE_SYSTEM, "code": code}] if code else []
    return _compact({"coding": coding, "text": name})


def _telecom(p: Practitioner, *urls: str | None) -> list[dict[str, str]]:
    points = [{"system": "phone", "value": p.phone, "use": "work"}] if p.phone else []
    return points + [{"system": "url", "value": url, "use": "work"} for url in urls if url]


def _time(text: str) -> str:
    """``"09:30"`` as a FHIR time; the end of the day (``"24:00"``) is ``"23:59:59"``."""
    return "23:59:59" if text == "24:00" else f"{text}:00"


def location_resource(p: Practitioner, loc: Location, base_url: str) -> dict[str, Any]:
    hours = loc.opening_hours or {}
    return _compact(
        {
            "resourceType": "Location",
            "id": resource_id("location", loc.id),
            "identifier": [{"system": f"{base_url.rstrip('/')}/locations", "value": str(loc.id)}],
            "status": "active",
            "mode": "instance",
            "name": loc.name or ", ".join(filter(None, [p.name, loc.suburb or loc.postcode])),
            "address": {
                "use": "work",
                "type": "physical",
                "line": [loc.street] if loc.street else [],
                "city": loc.suburb,
                "state": loc.state,
                "postalCode": loc.postcode,
                "country": loc.country,
            },
            "position": {"longitude": loc.lon, "latitude": loc.lat},
            "managingOrganization": _ref("organization", p.id),
            "hoursOfOperation": [
                {"daysOfWeek": [day], "openingTime": _time(opens), "closingTime": _time(closes)}
                for day in DAYS
                for opens, closes in hours.get(day, [])
            ],
        }
    )


def listing_resources(p: Practitioner, base_url: str) -> list[dict[str, Any]]:
    """The FHIR resources of one listing (Organization, Practitioner, PractitionerRole,
    HealthcareService, then one Location per location), as JSON-ready dicts.

    ``base_url`` is the directory's public address (``https://clinic.example/find-a-therapist``):
    the listing's page and the local CodeSystems hang from it.
    """
    base = base_url.rstrip("/")
    page = f"{base}/practitioners/{p.id}"
    listing_id = [{"system": f"{base}/practitioners", "value": str(p.id)}]
    practises = [modality_concept(base, m.slug, m.name) for m in p.modalities]
    languages = [_language(name) for name in p.languages or []]
    organization_name = p.business_name or p.name
    locations = [_ref("location", loc.id, loc.name or loc.suburb) for loc in p.locations]
    features = [
        code
        for code, on in (
            ("accepting-new-patients", p.accepting_new_patients),
            ("telehealth", p.telehealth),
            ("home-visits", p.home_visits),
        )
        if on
    ]
    characteristics = (
        [
            {
                "coding": [
                    {"system": code_system(base, "condition"), "code": c.slug, "display": c.name}
                ]
            }
            for c in p.conditions
        ]
        + [
            {
                "coding": [
                    {
                        "system": code_system(base, "health-fund"),
                        "code": pf.fund.slug,
                        "display": pf.fund.name,
                    }
                ]
            }
            for pf in sorted(p.funds, key=lambda pf: pf.fund.slug)
        ]
        + [
            {
                "coding": [
                    {
                        "system": code_system(base, "listing-feature"),
                        "code": code,
                        "display": FEATURES[code],
                    }
                ]
            }
            for code in features
        ]
    )
    qualification = []
    if p.accreditation_body:
        qualification.append(
            {
                "identifier": [{"value": p.membership_number}] if p.membership_number else [],
                "code": {"text": f"Member of {p.accreditation_body}"},
                "issuer": {"display": p.accreditation_body},
            }
        )
    resources = [
        {
            "resourceType": "Organization",
            "id": resource_id("organization", p.id),
            "identifier": listing_id,
            "active": True,
            "type": [
                {
                    "coding": [
                        {
                            "system": ORGANIZATION_TYPE_SYSTEM,
                            "code": "prov",
                            "display": "Healthcare Provider",
                        }
                    ]
                }
            ],
            "name": organization_name,
            "telecom": _telecom(p, p.website),
        },
        {
            "resourceType": "Practitioner",
            "id": resource_id("practitioner", p.id),
            "identifier": listing_id,
            "active": True,
            "name": [{"use": "official", "text": p.name}],
            "communication": languages,
            "qualification": qualification,
        },
        {
            "resourceType": "PractitionerRole",
            "id": resource_id("practitioner-role", p.id),
            "identifier": listing_id,
            "active": True,
            "practitioner": _ref("practitioner", p.id, p.name),
            "organization": _ref("organization", p.id, organization_name),
            "specialty": practises,
            "location": locations,
            "healthcareService": [_ref("healthcare-service", p.id)],
            "telecom": _telecom(p, p.website),
            "availabilityExceptions": (
                None if p.accepting_new_patients else "Not taking new patients at present."
            ),
        },
        {
            "resourceType": "HealthcareService",
            "id": resource_id("healthcare-service", p.id),
            "identifier": listing_id,
            "active": True,
            "providedBy": _ref("organization", p.id, organization_name),
            "type": practises,
            "location": locations,
            "name": p.name
            + (" — " + ", ".join(m.name for m in p.modalities) if p.modalities else ""),
            "extraDetails": p.bio,
            "telecom": _telecom(p, page),
            "communication": languages,
            "characteristic": characteristics,
        },
    ]
    resources = [_compact(r) for r in resources]
    return resources + [location_resource(p, loc, base) for loc in p.locations]


def bundle_chunks(
    session: Session, base_url: str, *, timestamp: datetime | None = None
) -> Iterator[str]:
    """The directory's Bundle as JSON text in pieces of about :data:`CHUNK_CHARS`, read in
    batches (:func:`referral.export.iter_active_practitioners`): memory stays flat however
    large the directory, for a file or a streamed response alike."""
    when = (timestamp or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    head = {"resourceType": "Bundle", "type": "collection", "timestamp": when}
    parts = [json.dumps(head)[:-1] + ', "entry": [']
    size, separator = 0, ""
    for p in iter_active_practitioners(session):
        for resource in listing_resources(p, base_url):
            entry = {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}
            text = separator + json.dumps(entry, ensure_ascii=False)
            separator = ","
            parts.append(text)
            size += len(text)
        if size >= CHUNK_CHARS:
            yield "".join(parts)
            parts, size = [], 0
    parts.append("]}\n")
    yield "".join(parts)


def bundle(session: Session, base_url: str, *, timestamp: datetime | None = None) -> dict[str, Any]:
    """The whole Bundle as one dict (for tests and small directories; exports stream
    :func:`bundle_chunks`)."""
    return json.loads("".join(bundle_chunks(session, base_url, timestamp=timestamp)))

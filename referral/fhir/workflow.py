"""A referral as a FHIR R4 Bundle: the request (``ServiceRequest``, the patient contained)
and its lifecycle (``Task``), for the recipient's, the referrer's or an admin's records.

Identifiers and references:

- resource ids and ``fullUrl`` (``urn:uuid:...``) are UUIDs derived from the referral id
  (UUID 5), so exporting a referral twice gives the same ids; the referral id itself is
  the ``identifier`` (system: the inbox's URL), its spoken reference a second one;
- practitioners are ``Practitioner/<id>`` with an identifier whose system is the
  directory's ``/practitioners`` URL (system + ``/`` + value is the listing's address);
- a referral referred on from another ``replaces`` it; one referred on names the new
  request in ``Task.output``; the outcome is a ``Task.output`` too.

Every absolute URL comes from :func:`referral.urls.external_url`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from referral import wording
from referral.fhir.terminology import (
    CONDITION_SNOMED,
    PRIORITY,
    SERVICE_REQUEST_STATUS,
    SNOMED,
    TASK_CODES,
    TASK_STATUS,
)
from referral.models import Practitioner, ReferralRequest, utcnow
from referral.referrals import DECLINE_CATEGORIES, reference
from referral.urls import external_url

#: namespace of the UUIDs made from referral ids
NAMESPACE = uuid.UUID("8f2b0c2e-6c59-4f7e-9a43-0d3e4f0b6a11")
CONTAINED_PATIENT = "patient"


def bundle(referral: ReferralRequest, *, now: datetime | None = None) -> dict[str, Any]:
    """A ``collection`` Bundle of the referral's ServiceRequest and Task (plain JSON).

    Raises ``KeyError`` for a status :mod:`referral.fhir.terminology` does not map.
    """
    request_id = resource_id(referral.id)
    task_id = resource_id(referral.id, "task")
    return {
        "resourceType": "Bundle",
        "id": resource_id(referral.id, "bundle"),
        "type": "collection",
        "timestamp": _instant(now or utcnow()),
        "entry": [
            {"fullUrl": f"urn:uuid:{request_id}", "resource": service_request(referral)},
            {"fullUrl": f"urn:uuid:{task_id}", "resource": task(referral)},
        ],
    }


def resource_id(referral_id: str, kind: str = "request") -> str:
    """A stable UUID for one of a referral's resources (FHIR ids allow no ``_``, which
    referral ids may hold)."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{referral_id}"))


def service_request(referral: ReferralRequest) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": resource_id(referral.id),
        "contained": [_patient(referral)],
        "extension": [_consent(referral)],
        "identifier": _identifiers(referral),
        "status": SERVICE_REQUEST_STATUS[referral.status],
        "intent": "order",
        "subject": {"reference": f"#{CONTAINED_PATIENT}"},
        "authoredOn": _instant(referral.created_at),
        "requester": (
            practitioner_reference(referral.referrer)
            if referral.referrer is not None
            else {"reference": f"#{CONTAINED_PATIENT}", "display": referral.patient_name}
        ),
        "performer": [practitioner_reference(referral.practitioner)],
    }
    if referral.urgency in PRIORITY:
        resource["priority"] = PRIORITY[referral.urgency]
    if referral.condition is not None:
        resource["reasonCode"] = [
            condition_concept(referral.condition.slug, referral.condition.name)
        ]
    if referral.referred_from_id:
        resource["replaces"] = [_request_reference(referral.referred_from_id)]
    notes = []
    if referral.message:
        notes.append({"text": referral.message})
    if referral.referrer_note and referral.referrer is not None:
        notes.append(
            {
                "authorReference": practitioner_reference(referral.referrer),
                "text": referral.referrer_note,
            }
        )
    if notes:
        resource["note"] = notes
    return resource


def task(referral: ReferralRequest) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": resource_id(referral.id, "task"),
        "identifier": [_identifiers(referral)[0]],
        "basedOn": [{"reference": f"urn:uuid:{resource_id(referral.id)}"}],
        "status": TASK_STATUS[referral.status],
        "businessStatus": {"text": wording.status_words(referral.status)},
        "intent": "order",
        "code": {
            "coding": [
                {"system": TASK_CODES, "code": "fulfill", "display": "Fulfill the focal request"}
            ]
        },
        "focus": {"reference": f"urn:uuid:{resource_id(referral.id)}"},
        "authoredOn": _instant(referral.created_at),
        "lastModified": _instant(referral.updated_at or referral.created_at),
        "requester": (
            practitioner_reference(referral.referrer)
            if referral.referrer is not None
            else {"display": referral.patient_name}
        ),
        "owner": practitioner_reference(referral.practitioner),
    }
    if referral.status == "declined":
        category = referral.decline_category or "other"
        resource["statusReason"] = {
            "coding": [{"system": code_system("decline-reason"), "code": category}],
            "text": DECLINE_CATEGORIES.get(category, category),
        }
    outputs = []
    if referral.outcome:
        outputs.append(
            {
                "type": {"text": "Outcome"},
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": code_system("outcome"),
                            "code": referral.outcome,
                            "display": wording.outcome_words(referral.outcome),
                        }
                    ],
                    **({"text": referral.outcome_note} if referral.outcome_note else {}),
                },
            }
        )
    for onward in referral.referred_to:
        outputs.append(
            {"type": {"text": "Referred on to"}, "valueReference": _request_reference(onward.id)}
        )
    if outputs:
        resource["output"] = outputs
    return resource


def practitioner_reference(practitioner: Practitioner) -> dict[str, Any]:
    return {
        "reference": f"Practitioner/{practitioner.id}",
        "type": "Practitioner",
        "identifier": {"system": practitioner_system(), "value": str(practitioner.id)},
        "display": practitioner.name,
    }


def practitioner_system() -> str:
    """The directory's ``/practitioners`` address: a listing is this plus ``/<id>``."""
    listing = external_url("referral.practitioner", practitioner_id=1)
    return listing.rsplit("/", 1)[0]


def code_system(name: str) -> str:
    """A local CodeSystem's canonical URL, under the plugin's public address."""
    return f"{external_url('referral.index')}fhir/CodeSystem/{name}"


def condition_concept(slug: str, name: str) -> dict[str, Any]:
    """A condition as a CodeableConcept: SNOMED CT where it names it, our slug always."""
    coding = []
    if slug in CONDITION_SNOMED:
        code, term = CONDITION_SNOMED[slug]
        coding.append({"system": SNOMED, "code": code, "display": term})
    coding.append({"system": code_system("condition"), "code": slug, "display": name})
    return {"coding": coding, "text": name}


def _identifiers(referral: ReferralRequest) -> list[dict[str, Any]]:
    system = external_url("referral.inbox")
    return [
        {"system": system, "value": referral.id},
        {
            "type": {"text": "Reference"},
            "system": f"{system}#reference",
            "value": reference(referral.id),
        },
    ]


def _request_reference(referral_id: str) -> dict[str, Any]:
    return {
        "type": "ServiceRequest",
        "identifier": {"system": external_url("referral.inbox"), "value": referral_id},
    }


def _patient(referral: ReferralRequest) -> dict[str, Any]:
    telecom = [{"system": "email", "value": referral.email}]
    if referral.phone:
        telecom.append({"system": "phone", "value": referral.phone})
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": CONTAINED_PATIENT,
        "name": [{"text": referral.patient_name}],
        "telecom": telecom,
    }
    if referral.postcode:
        patient["address"] = [{"postalCode": referral.postcode}]
    return patient


def _consent(referral: ReferralRequest) -> dict[str, Any]:
    """Which consent wording the patient agreed to, and when (``referral.consent``)."""
    return {
        "url": f"{external_url('referral.index')}fhir/StructureDefinition/consent",
        "extension": [
            {"url": "version", "valueString": referral.consent_version},
            {"url": "agreedAt", "valueDateTime": _instant(referral.consent_at)},
        ],
    }


def _instant(moment: datetime) -> str:
    """A stored time (UTC, naive) as FHIR's instant: seconds and a zone."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.replace(microsecond=0).isoformat().replace("+00:00", "Z")

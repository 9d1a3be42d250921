"""The FHIR R4 export of a referral: every resource validated with ``fhir.resources``
(its R4B models), and the status and intent codes checked here, since the models do not
check code values."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from sqlalchemy import select

from referral import referon
from referral.fhir import bundle
from referral.fhir.terminology import CONDITION_SNOMED, SERVICE_REQUEST_STATUS, TASK_STATUS
from referral.models import Condition, ReferralRequest
from referral.referrals import STATUSES, ReferralData, create_referral, transition

PREFIX = "/find-a-therapist"
PUBLIC = "https://clinic.example/find-a-therapist/"
#: FHIR R4's required value sets (hl7.org/fhir/R4/valueset-task-status.html and friends)
R4_TASK_STATUS = {
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "ready",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
}
R4_REQUEST_STATUS = {
    "draft",
    "active",
    "on-hold",
    "revoked",
    "completed",
    "entered-in-error",
    "unknown",
}
R4_REQUEST_INTENT = {
    "proposal",
    "plan",
    "directive",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
}
R4_TASK_INTENT = R4_REQUEST_INTENT - {"directive"} | {"unknown"}
#: what the issue asks for, status by status
EXPECTED = {
    "sent": ("requested", "active"),
    "viewed": ("received", "active"),
    "accepted": ("accepted", "active"),
    "declined": ("rejected", "revoked"),
    "cancelled": ("cancelled", "revoked"),
    "completed": ("completed", "completed"),
    "referred_on": ("completed", "completed"),
    "expired": ("failed", "revoked"),
}
#: how to reach each status from "sent"
PATHS = {
    "sent": [],
    "viewed": ["viewed"],
    "accepted": ["accepted"],
    "declined": ["declined"],
    "cancelled": ["cancelled"],
    "completed": ["accepted", "completed"],
}


@pytest.fixture
def app(make_app):
    return make_app(REFERRAL_PUBLIC_URL="https://clinic.example")


@pytest.fixture
def session(unbound_session):
    return unbound_session


@pytest.fixture
def people(add_practitioner, add_account):
    nina_user = add_account("nina@login.example")
    otto_user = add_account("otto@login.example")
    nina = add_practitioner(
        "Nina Near", (-33.87, 151.21), email="nina@clinic.example", user_id=nina_user.id
    )
    otto = add_practitioner(
        "Otto Other", (-33.88, 151.2), email="otto@clinic.example", user_id=otto_user.id
    )
    return {"nina": nina, "otto": otto, "nina_user": nina_user, "otto_user": otto_user}


def make_referral(app, session, practitioner, *, referrer=None, condition="low-back-pain"):
    with app.test_request_context():
        found = session.scalars(select(Condition).where(Condition.slug == condition)).first()
        referral, _ = create_referral(
            session,
            practitioner,
            ReferralData(
                patient_name="Pat Patient",
                email="pat@example.com",
                phone="+61412345678",
                postcode="2000",
                condition_id=found.id if found else None,
                message="Sore for a week",
                consent_version="2026-12",
            ),
            referrer=referrer,
        )
    return referral


def validate(doc: dict) -> tuple[dict, dict]:
    """Every resource through the R4B models; returns (ServiceRequest, Task) as JSON."""
    Bundle.model_validate(doc)
    assert doc["resourceType"] == "Bundle" and doc["type"] == "collection"
    request, task = (entry["resource"] for entry in doc["entry"])
    ServiceRequest.model_validate(request)
    Task.model_validate(task)
    [patient] = request["contained"]
    Patient.model_validate(patient)
    for entry in doc["entry"]:
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
    return request, task


def test_every_status_maps_to_r4_codes():
    assert set(STATUSES) <= set(TASK_STATUS) and set(STATUSES) <= set(SERVICE_REQUEST_STATUS)
    for status, (task_status, request_status) in EXPECTED.items():
        assert TASK_STATUS[status] == task_status in R4_TASK_STATUS, status
        assert SERVICE_REQUEST_STATUS[status] == request_status in R4_REQUEST_STATUS, status


@pytest.mark.parametrize("status", sorted(PATHS))
def test_export_validates_in_every_status(app, login_client, session, people, status):
    referral = make_referral(app, session, people["nina"])
    with app.test_request_context():
        for step in PATHS[status]:
            reason = "Booked out" if step == "declined" else None
            if step == "completed":
                referon.complete(session, referral, "practitioner:1", "discharged", "Done")
            else:
                transition(session, referral, step, "practitioner:1", reason=reason)
                session.commit()
    response = login_client(people["nina_user"]).get(f"{PREFIX}/inbox/{referral.id}/export.json")
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    request, task = validate(response.json)
    assert (task["status"], request["status"]) == EXPECTED[status]
    assert request["intent"] == "order" and request["intent"] in R4_REQUEST_INTENT
    assert task["intent"] == "order" and task["intent"] in R4_TASK_INTENT
    assert task["focus"]["reference"] == response.json["entry"][0]["fullUrl"]
    assert task["code"]["coding"][0]["code"] == "fulfill"
    if status == "declined":
        assert task["statusReason"]["text"] == "They are not able to see you this time."
        assert "Booked out" not in str(response.json)  # the practitioner's note stays private
    if status == "completed":
        [output] = task["output"]
        assert output["valueCodeableConcept"]["coding"][0] == {
            "system": f"{PUBLIC}fhir/CodeSystem/outcome",
            "code": "discharged",
            "display": "Discharged",
        }


def test_referral_content_patient_performer_requester_and_reason(app, session, people):
    referral = make_referral(app, session, people["nina"], referrer=people["otto"])
    with app.test_request_context():
        request, task = validate(bundle(referral))
    assert request["subject"] == {"reference": "#patient"}
    patient = request["contained"][0]
    assert patient["name"] == [{"text": "Pat Patient"}]
    assert {"system": "email", "value": "pat@example.com"} in patient["telecom"]
    assert patient["address"] == [{"postalCode": "2000"}]
    nina, otto = people["nina"], people["otto"]
    system = "https://clinic.example/find-a-therapist/practitioners"
    assert request["performer"] == [
        {
            "reference": f"Practitioner/{nina.id}",
            "type": "Practitioner",
            "identifier": {"system": system, "value": str(nina.id)},
            "display": "Nina Near",
        }
    ]
    assert request["requester"]["reference"] == f"Practitioner/{otto.id}"
    assert task["owner"]["display"] == "Nina Near" and task["requester"]["display"] == "Otto Other"
    assert request["reasonCode"] == [
        {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "279039007",
                    "display": "Low back pain",
                },
                {
                    "system": f"{PUBLIC}fhir/CodeSystem/condition",
                    "code": "low-back-pain",
                    "display": "Low back pain",
                },
            ],
            "text": "Low back pain",
        }
    ]
    assert request["identifier"][0] == {
        "system": "https://clinic.example/find-a-therapist/inbox",
        "value": referral.id,
    }
    assert request["note"] == [{"text": "Sore for a week"}]
    assert request["authoredOn"].endswith("Z")


def test_a_patients_own_request_names_them_as_requester(app, session, people):
    referral = make_referral(app, session, people["nina"], condition="posture")
    with app.test_request_context():
        request, _task = validate(bundle(referral))
    assert request["requester"] == {"reference": "#patient", "display": "Pat Patient"}
    # no SNOMED CT concept for "posture": the local code only
    assert [c["system"] for c in request["reasonCode"][0]["coding"]] == [
        f"{PUBLIC}fhir/CodeSystem/condition"
    ]


def test_referred_on_links_both_requests(app, session, people):
    first = make_referral(app, session, people["nina"])
    with app.test_request_context():
        transition(session, first, "viewed", "practitioner:1")
        session.commit()
        onward = referon.refer_on(
            session, first, people["otto"], config=app.config, note="Over to you"
        )
        first_request, first_task = validate(bundle(first))
        onward_request, _ = validate(bundle(onward))
    assert (first_task["status"], first_request["status"]) == ("completed", "completed")
    outputs = {o["type"]["text"]: o for o in first_task["output"]}
    assert outputs["Referred on to"]["valueReference"]["identifier"]["value"] == onward.id
    assert outputs["Outcome"]["valueCodeableConcept"]["coding"][0]["code"] == "referred_on"
    assert onward_request["replaces"][0]["identifier"]["value"] == first.id
    assert onward_request["note"][-1]["text"] == "Over to you"
    assert onward_request["note"][-1]["authorReference"]["display"] == "Nina Near"


def test_every_default_condition_exports_and_validates(app, session, people):
    slugs = session.scalars(select(Condition.slug)).all()
    assert set(CONDITION_SNOMED) <= set(slugs)
    for slug in slugs:
        referral = make_referral(app, session, people["nina"], condition=slug)
        with app.test_request_context():
            request, _ = validate(bundle(referral))
        codes = {c["system"]: c["code"] for c in request["reasonCode"][0]["coding"]}
        assert codes[f"{PUBLIC}fhir/CodeSystem/condition"] == slug
        if slug in CONDITION_SNOMED:
            assert codes["http://snomed.info/sct"] == CONDITION_SNOMED[slug][0]


def test_exporting_twice_gives_the_same_ids(app, session, people):
    referral = make_referral(app, session, people["nina"])
    with app.test_request_context():
        once, twice = bundle(referral), bundle(referral)
    assert [e["fullUrl"] for e in once["entry"]] == [e["fullUrl"] for e in twice["entry"]]
    assert "_" not in once["entry"][0]["resource"]["id"]
    assert session.get(ReferralRequest, referral.id) is not None

"""The codes a referral's FHIR export uses, written down in one place.

Statuses
  A referral is a ``ServiceRequest`` (``intent`` ``order``) whose lifecycle is a ``Task``
  (``intent`` ``order``, ``code`` ``fulfill``, ``focus`` the ServiceRequest), as HL7's SDOH
  Clinical Care guide tracks a referral. :data:`TASK_STATUS` and
  :data:`SERVICE_REQUEST_STATUS` map each of our statuses; the codes are FHIR R4's required
  value sets (``task-status``, ``request-status``). A status our lifecycle does not know
  yet raises ``KeyError``: a new status must be mapped here before it can be exported.

Conditions (``ServiceRequest.reasonCode``)
  Every condition carries its slug in a local CodeSystem, ``{public}/fhir/CodeSystem/
  condition`` where ``{public}`` is the plugin's address (``REFERRAL_PUBLIC_URL`` and
  ``REFERRAL_URL_PREFIX``, e.g. ``https://clinic.example/find-a-therapist/``); the default
  conditions that SNOMED CT names exactly also carry that concept (``http://snomed.info/sct``):

  ================  ==========  ========================================  ===========
  slug              SNOMED CT   SNOMED CT term                            match
  ================  ==========  ========================================  ===========
  low-back-pain     279039007   Low back pain (finding)                   exact
  sciatica          23056005    Sciatica (disorder)                       exact
  neck-pain         81680005    Neck pain (finding)                       exact
  headache          398057008   Tension-type headache (disorder)          exact
  shoulder-pain     45326000    Shoulder pain (finding)                   exact
  pregnancy         77386006    Pregnancy (finding)                       close: the
                                                                          care is for it
  arthritis         3723001     Arthritis (disorder)                      exact
  stress            73595000    Stress (finding)                          close
  sports-injury     none        (local code only: no single concept)
  posture           none        (local code only: "posture" is not a
                                finding)
  ================  ==========  ========================================  ===========

  The SNOMED CT codes were checked against published code lists and FHIR value sets.
  A host's own conditions (``REFERRAL_CONDITIONS``) have the local code only.

Outcomes (``Task.output``)
  ``{public}/fhir/CodeSystem/outcome``: ``improved``, ``referred_on``, ``discharged``,
  ``did_not_attend`` (:data:`referral.wording.OUTCOME_WORDS` gives their displays).
"""

from __future__ import annotations

SNOMED = "http://snomed.info/sct"
TASK_CODES = "http://hl7.org/fhir/CodeSystem/task-code"

#: our status -> ``Task.status``
TASK_STATUS: dict[str, str] = {
    "sent": "requested",
    "viewed": "received",
    "accepted": "accepted",
    "declined": "rejected",
    "cancelled": "cancelled",
    "completed": "completed",
    # the practitioner did what the task asked: they passed the patient on
    # (Task.businessStatus says so, Task.output names the new request)
    "referred_on": "completed",
    # nobody answered in time
    "expired": "failed",
}
#: our status -> ``ServiceRequest.status``: active until it ends, then revoked or completed
SERVICE_REQUEST_STATUS: dict[str, str] = {
    "sent": "active",
    "viewed": "active",
    "accepted": "active",
    "declined": "revoked",
    "cancelled": "revoked",
    "expired": "revoked",
    "completed": "completed",
    "referred_on": "completed",
}
#: our urgency -> ``ServiceRequest.priority`` (``request-priority``)
PRIORITY: dict[str, str] = {"routine": "routine", "urgent": "urgent"}

#: condition slug -> (SNOMED CT code, its term), for the default conditions SNOMED names
CONDITION_SNOMED: dict[str, tuple[str, str]] = {
    "low-back-pain": ("279039007", "Low back pain"),
    "sciatica": ("23056005", "Sciatica"),
    "neck-pain": ("81680005", "Neck pain"),
    "headache": ("398057008", "Tension-type headache"),
    "shoulder-pain": ("45326000", "Shoulder pain"),
    "pregnancy": ("77386006", "Pregnancy"),
    "arthritis": ("3723001", "Arthritis"),
    "stress": ("73595000", "Stress"),
}

"""FHIR R4 documents: a referral and its lifecycle (:mod:`referral.fhir.workflow`).

Plain JSON built from the models; nothing here needs a FHIR library. The tests validate
every resource with ``fhir.resources`` (the ``fhir`` extra). Code systems and the mapping
of statuses and conditions are in :mod:`referral.fhir.terminology`.
"""

from __future__ import annotations

from referral.fhir.workflow import bundle

__all__ = ["bundle"]

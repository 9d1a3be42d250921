"""HL7 FHIR R4 views of the plugin's data (:mod:`referral.fhir.directory`: the directory)."""

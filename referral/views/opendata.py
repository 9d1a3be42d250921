"""Open data: the active directory as Open Referral HSDS 3.0 JSON and as a FHIR R4 Bundle,
for anyone (active listings only, nothing private)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, stream_with_context
from werkzeug.wrappers import Response

from referral.db import get_session
from referral.export import hsds_document
from referral.fhir.directory import bundle_chunks, code_system_resource
from referral.urls import external_url


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/api/v1/export/hsds.json", "export_hsds", export_hsds)
    bp.add_url_rule("/api/v1/export/fhir.json", "export_fhir", export_fhir)
    bp.add_url_rule("/fhir/CodeSystem/<name>", "fhir_code_system", fhir_code_system)


def export_hsds() -> Response:
    base = external_url("referral.index")
    response = jsonify(hsds_document(get_session(), base_url=base))
    response.headers["Content-Disposition"] = 'inline; filename="hsds.json"'
    # open data: any site may read it from the browser (it holds nothing private)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def export_fhir() -> Response:
    """The directory as a FHIR R4 Bundle (:mod:`referral.fhir.directory`), streamed as it is
    read, so a large directory never sits in memory."""
    chunks = bundle_chunks(get_session(), external_url("referral.index"))
    response = current_app.response_class(
        stream_with_context(chunks), mimetype="application/fhir+json"
    )
    response.headers["Content-Disposition"] = 'inline; filename="fhir.json"'
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def fhir_code_system(name: str) -> Response:
    """The CodeSystem a FHIR export's local codes name (``.../fhir/CodeSystem/modality``)."""
    resource = code_system_resource(get_session(), external_url("referral.index"), name)
    if resource is None:
        abort(404)
    response = jsonify(resource)
    response.mimetype = "application/fhir+json"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response

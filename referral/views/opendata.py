"""Open data, for anyone (active listings only, nothing private): the directory as one Open
Referral HSDS 3.0 JSON file and as a FHIR R4 Bundle, with the FHIR code systems they name.

Both files are streamed as they are written (:mod:`referral.hsds.document`,
:mod:`referral.fhir.directory`), so they cost the same memory for ten listings as for a
hundred thousand. The same HSDS records, paged and searchable, are the HSDS API at
``{prefix}/api/hsds/``.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, stream_with_context

from referral.db import get_session, read_session
from referral.fhir.directory import bundle_chunks, code_system_resource
from referral.hsds import document
from referral.urls import external_url


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/api/v1/export/hsds.json", "export_hsds", export_hsds)
    bp.add_url_rule("/api/v1/export/fhir.json", "export_fhir", export_fhir)
    bp.add_url_rule("/fhir/CodeSystem/<name>", "fhir_code_system", fhir_code_system)


def export_hsds() -> Response:
    base = external_url("referral.index")
    chunks = document.chunks(read_session(), base_url=base)
    response = Response(stream_with_context(chunks), mimetype="application/json")
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

"""Open data: the active directory as Open Referral HSDS 3.0 JSON, for anyone."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from referral.db import get_session
from referral.export import hsds_document
from referral.urls import external_url


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/api/v1/export/hsds.json", "export_hsds", export_hsds)


def export_hsds() -> Response:
    base = external_url("referral.index")
    response = jsonify(hsds_document(get_session(), base_url=base))
    response.headers["Content-Disposition"] = 'inline; filename="hsds.json"'
    # open data: any site may read it from the browser (it holds nothing private)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response

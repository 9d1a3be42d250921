"""Open data: the active directory as one Open Referral HSDS 3.0 JSON file, for anyone.

The file is streamed as it is written (:mod:`referral.hsds.document`), so it costs the same
memory for ten listings as for a hundred thousand. The same records, paged and searchable,
are the HSDS API at ``{prefix}/api/hsds/``.
"""

from __future__ import annotations

from flask import Blueprint, Response, stream_with_context

from referral.db import read_session
from referral.hsds import document
from referral.urls import external_url


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/api/v1/export/hsds.json", "export_hsds", export_hsds)


def export_hsds() -> Response:
    base = external_url("referral.index")
    chunks = document.chunks(read_session(), base_url=base)
    response = Response(stream_with_context(chunks), mimetype="application/json")
    response.headers["Content-Disposition"] = 'inline; filename="hsds.json"'
    # open data: any site may read it from the browser (it holds nothing private)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response

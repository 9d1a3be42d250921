"""Pages a patient sees: the search form with results, and a practitioner's listing."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from sqlalchemy import select

from referral.db import get_session
from referral.errors import InvalidInput
from referral.listings import public_listing
from referral.models import Condition, HealthFund, Modality
from referral.query import parse_search
from referral.search import search


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "index", index)
    bp.add_url_rule("/practitioners/<int:practitioner_id>", "practitioner", practitioner)


def index() -> tuple[str, int] | str:
    session = get_session()
    context = {
        "modalities": session.scalars(select(Modality).order_by(Modality.name)).all(),
        "conditions": session.scalars(select(Condition).order_by(Condition.name)).all(),
        "funds": session.scalars(select(HealthFund).order_by(HealthFund.name)).all(),
        "args": request.args,
        "results": None,
        "error": None,
    }
    if not any(request.args.get(k) for k in ("postcode", "lat", "lon")):
        return render_template("referral/search.html", **context)
    try:
        query = parse_search(session, request.args, current_app.config)
    except InvalidInput as exc:
        context["error"] = exc.message
        return render_template("referral/search.html", **context), exc.status
    context["query"] = query
    context["results"] = search(
        session,
        query.point.lat,
        query.point.lon,
        radius_km=query.radius_km,
        filters=query.filters,
        page=query.page,
        per_page=query.per_page,
        fallback=current_app.config["REFERRAL_NEAREST_FALLBACK"],
    )
    return render_template("referral/search.html", **context)


def practitioner(practitioner_id: int) -> str:
    found = public_listing(get_session(), practitioner_id)
    if found is None:
        abort(404)
    return render_template("referral/practitioner.html", practitioner=found)

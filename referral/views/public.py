"""Pages a patient sees: the search form with results, and a practitioner's listing."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response

from referral.db import get_session, read_session
from referral.errors import InvalidInput
from referral.listings import public_listing
from referral.models import Condition, HealthFund, Modality
from referral.query import parse_search, run_search, search_back
from referral.search import listed_languages


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "index", index)
    bp.add_url_rule("/practitioners/<rowid:practitioner_id>", "practitioner", practitioner)
    bp.add_app_template_global(current_search, "referral_current_search")
    bp.add_app_template_global(back_to_search, "referral_back_to_search")


def current_search() -> str | None:
    """On the results page: the search, for its listings' ``back=`` parameter."""
    return search_back(request.query_string) or None


def back_to_search(back: bool = False) -> str | None:
    """On a listing (or its form's pages): the search it was opened from.

    ``back_to_search()`` is the URL of that search page; ``back_to_search(back=True)`` the
    ``back`` value to pass on (``None`` when there is none), e.g. in the form's action.
    """
    query = search_back(request.args.get("back"))
    if back:
        return query or None
    return url_for("referral.index") + (f"?{query}" if query else "")


def index() -> tuple[str, int] | str:
    session = read_session()
    context = {
        "modalities": session.scalars(select(Modality).order_by(Modality.name)).all(),
        "conditions": session.scalars(select(Condition).order_by(Condition.name)).all(),
        "funds": session.scalars(select(HealthFund).order_by(HealthFund.name)).all(),
        "languages": listed_languages(session),
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
        context["suggestions"] = [
            (label, _search_for(label)) for label in getattr(exc, "suggestions", ())
        ]
        return render_template("referral/search.html", **context), exc.status
    context["query"] = query
    if query.point.alternatives:
        # "Newtown" is in three states: ask, most likely first, before searching any
        places = [query.point.label] + [a.label for a in query.point.alternatives]
        context["choices"] = [(label, _search_for(label)) for label in places]
        context["asked"] = query.postcode.strip()
        return render_template("referral/search.html", **context)
    try:
        context["results"] = run_search(session, query, current_app.config)
    except InvalidInput as exc:  # the search ran past its time limit
        context["error"] = exc.message
        return render_template("referral/search.html", **context), exc.status
    return render_template("referral/search.html", **context)


def _search_for(label: str) -> str:
    """This search again with ``label`` as the place (filters kept)."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("postcode", "page")]
    return url_for("referral.index") + "?" + urlencode([("postcode", label), *args])


def practitioner(practitioner_id: int) -> Response:
    found = public_listing(get_session(), practitioner_id)
    if found is None:
        abort(404)
    response = make_response(render_template("referral/practitioner.html", practitioner=found))
    # the page holds a one-off referral form (its idempotency key and tokens): a shared
    # cache handing it to the next visitor would make their request look like a resend
    response.headers["Cache-Control"] = "private, no-store"
    return response

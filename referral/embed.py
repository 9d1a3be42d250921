"""Embedding the patient pages in any website: ``{prefix}/embed/...`` and ``embed.js``.

Every embeddable page also answers under ``{prefix}/embed/``, rendered in a bare layout
(``referral/embed_base.html``) for an iframe. The page templates are the same: the embed
rules carry one extra URL argument, so while a request is embedded ``url_for`` keeps every
link, form and pager inside ``/embed/`` without the templates knowing.

Framing is allowed to the origins in ``REFERRAL_EMBED_ORIGINS`` (and the plugin's own) by
the ``frame-ancestors`` directive of the page's Content-Security-Policy; the other plugin pages
send ``frame-ancestors 'self'`` and ``X-Frame-Options: SAMEORIGIN`` (both built, with the rest
of the policy, in :mod:`referral.headers`, which asks :func:`is_embedded` which page this is).
The iframe reports its height with ``postMessage`` addressed to exactly those origins, and
``embed.js`` on the host page only accepts messages from the plugin's origin and its own
iframe.

Inside an iframe on another site the browser keeps the plugin's ``SameSite=Lax`` session
cookie to itself (and Safari and Firefox block third-party cookies whatever their
``SameSite``), so Flask-WTF's session-bound CSRF token cannot be checked there. An embedded
referral form therefore also carries a ``form_token``: signed with the app's secret key,
time-limited, and bound to the practitioner and the form's idempotency key. An embed-route
post whose session token fails is accepted on that token instead, as a patient's request:
only a post that passes the session check may act as a signed-in practitioner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Flask, current_app, g, request, send_from_directory
from flask.blueprints import BlueprintSetupState
from itsdangerous import BadData, URLSafeTimedSerializer
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from referral.urls import external_url, public_origin

#: endpoints (without the blueprint name) that also render inside an iframe; a patient-facing
#: page added later (e.g. a referral form on its own URL) joins by being named here
EMBEDDABLE = ("index", "practitioner", "refer", "referral_sent")
#: the URL argument that marks an embed rule: ``{prefix}/<any(embed):_embed>/...``
ARG = "_embed"
EMBED_BASE_TEMPLATE = "referral/embed_base.html"
#: what a snippet may pass to the iframe as ``data-*`` attributes (query parameters)
SNIPPET_PARAMS = ("postcode", "country", "modality", "radius_km", "practitioner", "title")

#: the hidden field carrying an embedded form's signed token
FORM_TOKEN_FIELD = "form_token"
FORM_TOKEN_SALT = "referral-embed-form"

_ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?$")


def parse_origins(value: str | Iterable[str] | None) -> list[str]:
    """Checked, normalised origins such as ``https://clinic.example``.

    Accepts a list or one string separated by spaces or commas (an environment variable).
    Anything else (a path, a wildcard, a quote) is refused: it would land in a header.
    """
    if not value:
        return []
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value)
    origins: list[str] = []
    for item in items:
        if not item:
            continue
        origin = str(item).strip().lower().rstrip("/")
        if not _ORIGIN.match(origin):
            raise ValueError(
                f"REFERRAL_EMBED_ORIGINS: {item!r} is not an origin such as "
                "'https://clinic.example' (scheme and host, optional port, no path or wildcard)."
            )
        if origin not in origins:
            origins.append(origin)
    return origins


def is_embedded() -> bool:
    """True while the current request renders an ``/embed/`` page."""
    return bool(g.get("referral_embed"))


def base_template() -> str:
    if is_embedded():
        return EMBED_BASE_TEMPLATE
    return current_app.config["REFERRAL_BASE_TEMPLATE"]


def own_origin() -> str:
    """The plugin's origin: ``REFERRAL_PUBLIC_URL``'s, else (debug, testing) the request's."""
    return public_origin() or f"{request.scheme}://{request.host}".lower()


def parent_origins() -> list[str]:
    """Where an embedded page may send its height: the allowed origins and its own."""
    return [own_origin(), *current_app.config["REFERRAL_EMBED_ORIGINS"]]


def snippet(script_url: str, **data: Any) -> Markup:
    """The one-line ``<script>`` a site owner pastes; ``data`` become ``data-*`` attributes."""
    attrs = "".join(
        f' data-{name.replace("_", "-")}="{escape(value)}"'
        for name, value in data.items()
        if name in SNIPPET_PARAMS and value not in (None, "")
    )
    return Markup(f'<script src="{escape(script_url)}"{Markup(attrs)} async></script>')


def snippet_for_site(**data: Any) -> Markup:
    """Template global ``referral_embed_snippet(postcode="2000")``: the snippet for this site."""
    return snippet(external_url("referral.embed_js"), **data)


def _form_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=FORM_TOKEN_SALT)


def form_token(practitioner_id: int, idempotency_key: str) -> str:
    """The signed token an embedded referral form posts instead of relying on a cookie.

    It proves the form was served by us, recently, for this practitioner; a resend of the
    same form reuses its idempotency key, so it can make one referral at most.
    """
    return _form_serializer().dumps([practitioner_id, idempotency_key])


def form_token_valid(token: str | None, practitioner_id: int, idempotency_key: str | None) -> bool:
    """True when ``token`` was made by :func:`form_token` for this practitioner and key, no
    longer than ``REFERRAL_EMBED_FORM_MAX_AGE`` seconds ago."""
    if not token or not idempotency_key:
        return False
    try:
        value = _form_serializer().loads(
            token, max_age=current_app.config["REFERRAL_EMBED_FORM_MAX_AGE"]
        )
    except BadData:
        return False
    return value == [practitioner_id, idempotency_key]


def accepts_form_token(practitioner_id: int) -> bool:
    """On an embed route only: does the posted form carry a valid signed form token?"""
    return is_embedded() and form_token_valid(
        request.form.get(FORM_TOKEN_FIELD), practitioner_id, request.form.get("idempotency_key")
    )


def embed_js() -> Response:
    response = send_from_directory(
        current_app.blueprints["referral"].static_folder, "embed.js", max_age=3600
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _add_embed_rules(state: BlueprintSetupState) -> None:
    """Copy each embeddable page's rules to ``{prefix}/<any(embed):_embed>/...``."""
    app: Flask = state.app
    prefix = (state.url_prefix or "").rstrip("/")
    names = {f"{state.name_prefix}{state.name}.{e}".lstrip(".") for e in EMBEDDABLE}
    for rule in list(app.url_map.iter_rules()):
        if rule.endpoint not in names or not rule.rule.startswith(prefix + "/"):
            continue
        path = f"{prefix}/<any(embed):{ARG}>{rule.rule[len(prefix) :]}"
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        app.add_url_rule(path, endpoint=rule.endpoint, methods=methods)


def _pop_mode(endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values and values.pop(ARG, None):
        g.referral_embed = True


def _keep_mode(endpoint: str, values: dict[str, Any]) -> None:
    """Inside an embed page, links to embeddable pages stay embedded (``_embed=None``: not)."""
    if ARG in values:
        if not values[ARG]:
            del values[ARG]
        return
    if is_embedded() and endpoint.rsplit(".", 1)[-1] in EMBEDDABLE:
        values[ARG] = "embed"


def template_context() -> dict[str, Any]:
    return {
        "referral_embedded": is_embedded(),
        "referral_parent_origins": parent_origins() if is_embedded() else [],
    }


def register(bp: Blueprint) -> None:
    """Wire embedding into the blueprint; call after every page has been added."""
    bp.record(_add_embed_rules)
    bp.url_value_preprocessor(_pop_mode)
    bp.url_defaults(_keep_mode)
    bp.add_url_rule("/embed.js", "embed_js", embed_js)
    bp.add_app_template_global(snippet_for_site, "referral_embed_snippet")
    bp.add_app_template_global(form_token, "referral_form_token")

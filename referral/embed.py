"""Embedding the patient pages in any website: ``{prefix}/embed/...`` and ``embed.js``.

Every embeddable page also answers under ``{prefix}/embed/``, rendered in a bare layout
(``referral/embed_base.html``) for an iframe. The page templates are the same: the embed
rules carry one extra URL argument, so while a request is embedded ``url_for`` keeps every
link, form and pager inside ``/embed/`` without the templates knowing.

Options a site owner picks on ``/for-websites`` that must last while a patient moves around
inside the frame ride in that URL segment, so every link and every GET form keeps them:
``embed-0b7285`` (an accent colour), ``embed-plain`` (no heading on the search), or both,
``embed-0b7285-plain``; a value of any other shape matches no route. A starting condition or
modality is a plain search parameter of the first page instead: the patient may change it.

Framing is allowed to the origins in ``REFERRAL_EMBED_ORIGINS``, those an admin added on the
page "Websites that embed the finder" (:mod:`referral.embed_origins`) and the plugin's own, by
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, abort, current_app, g, request, send_from_directory
from flask.blueprints import BlueprintSetupState
from itsdangerous import BadData, URLSafeTimedSerializer
from markupsafe import Markup, escape
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from referral import embed_origins, theme
from referral.urls import external_url, public_origin

#: endpoints (without the blueprint name) that also render inside an iframe; a patient-facing
#: page added later (e.g. a referral form on its own URL) joins by being named here
EMBEDDABLE = ("index", "practitioner", "refer", "referral_sent")
#: the URL argument that marks an embed rule: ``{prefix}/<referral_embed:_embed>/...``
ARG = "_embed"
#: the plain embed segment; options add ``-rrggbb`` and ``-plain`` (see :class:`Mode`)
SEGMENT = "embed"
PLAIN = "plain"
EMBED_BASE_TEMPLATE = "referral/embed_base.html"
#: what a snippet may pass to the iframe as ``data-*`` attributes
SNIPPET_PARAMS = (
    "postcode",
    "country",
    "condition",
    "modality",
    "radius_km",
    "practitioner",
    "accent",
    "hide_heading",
    "title",
)
#: the snippet's link to the finder, which ``embed.js`` replaces with the frame
LINK_CLASS = "referral-embed-link"
#: the snippet's values that are the finder's own search parameters, for that link
LINK_PARAMS = ("postcode", "country", "condition", "modality", "radius_km")
_HEX_COLOUR = re.compile(r"^#?([0-9a-f]{3}|[0-9a-f]{6})$", re.I)
_SLUG = re.compile(r"^[a-z0-9-]{1,100}$")

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


def accent_colour(value: str | None) -> str | None:
    """``#rgb`` or ``#rrggbb`` (the ``#`` optional) as six lower-case hex digits; anything
    else ``None``: a bad colour is ignored, never written into CSS."""
    match = _HEX_COLOUR.match((value or "").strip())
    if not match:
        return None
    digits = match.group(1).lower()
    return "".join(c * 2 for c in digits) if len(digits) == 3 else digits


@dataclass(frozen=True)
class Mode:
    """The options of an embedded page, carried by its URL segment (``embed-0b7285-plain``)."""

    accent: str | None = None  # six hex digits, no '#'
    plain: bool = False  # no heading above the search

    @property
    def segment(self) -> str:
        parts = [SEGMENT, *([self.accent] if self.accent else []), *([PLAIN] if self.plain else [])]
        return "-".join(parts)

    @classmethod
    def parse(cls, segment: str) -> Mode:
        parts = segment.split("-")[1:]
        accent = next((p for p in parts if p != PLAIN), None)
        return cls(accent=accent, plain=PLAIN in parts)


class ModeConverter(BaseConverter):
    """``embed``, ``embed-0b7285``, ``embed-plain`` or ``embed-0b7285-plain``; nothing else."""

    name = "referral_embed"
    regex = rf"{SEGMENT}(?:-[0-9a-f]{{6}})?(?:-{PLAIN})?"


def mode() -> Mode:
    """The current embedded page's options (plain defaults outside ``/embed/``)."""
    segment = g.get("referral_embed")
    return Mode.parse(segment) if segment else Mode()


def readable_accent(accent: str) -> str:
    """``accent`` (six hex digits), darkened just enough to be read as link text on the
    theme's page and surface colours (WCAG AA, 4.5:1); white text on it then reads too."""
    colours = theme.resolved(current_app.config["REFERRAL_THEME"])
    backgrounds = [colours["page"], colours["surface"], "#ffffff"]
    rgb = [int(accent[i : i + 2], 16) for i in (0, 2, 4)]
    for step in range(0, 101):
        scale = 1 - step / 100
        colour = "#" + "".join(f"{round(c * scale):02x}" for c in rgb)
        if all(theme.contrast_ratio(colour, bg) >= theme.AA_NORMAL_TEXT for bg in backgrounds):
            return colour
    return "#000000"


def mode_css(segment: str) -> Response:
    """The stylesheet of an embed mode: its accent as the theme's custom properties, and the
    rule hiding the search heading (kept for screen readers) in ``-plain`` mode."""
    if not re.fullmatch(ModeConverter.regex, segment):
        abort(404)
    chosen = Mode.parse(segment)
    rules = []
    if chosen.accent:
        colour = readable_accent(chosen.accent)
        rules.append(f":root{{--referral-accent:{colour};--referral-accent-text:#ffffff}}")
    if chosen.plain:
        rules.append(
            ".referral-embed--plain .referral-page > .referral > h1:first-child{position:absolute;"
            "width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);"
            "white-space:nowrap;border:0}"
        )
    response = Response("\n".join(rules) + "\n", mimetype="text/css")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


@dataclass(frozen=True)
class SnippetOptions:
    """What a site owner chose on ``/for-websites``, checked; unknown or bad values dropped."""

    postcode: str = ""
    condition: str = ""
    modality: str = ""
    accent: str | None = None
    hide_heading: bool = False

    @classmethod
    def from_args(
        cls,
        args: Mapping[str, str],
        conditions: Iterable[str] = (),
        modalities: Iterable[str] = (),
    ) -> SnippetOptions:
        """From a GET form's values; a condition or modality not in the taxonomy is dropped."""
        postcode = (args.get("postcode") or "").strip()
        postcode = postcode if len(postcode) <= 100 and postcode.isprintable() else ""
        condition = args.get("condition") or ""
        modality = args.get("modality") or ""
        return cls(
            postcode=postcode,
            condition=condition if _SLUG.match(condition) and condition in conditions else "",
            modality=modality if _SLUG.match(modality) and modality in modalities else "",
            accent=accent_colour(args.get("accent")),
            hide_heading=(args.get("hide_heading") or "").lower() in ("1", "on", "yes", "true"),
        )

    def data(self) -> dict[str, str]:
        """The snippet's ``data-*`` values."""
        return {
            "postcode": self.postcode,
            "condition": self.condition,
            "modality": self.modality,
            "accent": f"#{self.accent}" if self.accent else "",
            "hide_heading": "true" if self.hide_heading else "",
        }

    def frame_url(self) -> str:
        """The iframe address for sites that allow no script (what ``embed.js`` would load)."""
        query = {k: v for k in ("postcode", "condition", "modality") if (v := getattr(self, k))}
        segment = Mode(self.accent, self.hide_heading).segment
        return external_url("referral.index", _embed=segment, **query)


def base_template() -> str:
    if is_embedded():
        return EMBED_BASE_TEMPLATE
    return current_app.config["REFERRAL_BASE_TEMPLATE"]


def own_origin() -> str:
    """The plugin's origin: ``REFERRAL_PUBLIC_URL``'s, else (debug, testing) the request's."""
    return public_origin() or f"{request.scheme}://{request.host}".lower()


def parent_origins() -> list[str]:
    """Where an embedded page may send its height: the allowed origins and its own."""
    own = own_origin()
    return [own, *(o for o in embed_origins.allowed() if o != own)]


def snippet(script_url: str, link_url: str | None = None, **data: Any) -> Markup:
    """The snippet a site owner pastes; ``data`` become the ``<script>``'s ``data-*``
    attributes. With ``link_url``, a plain link to the finder comes first: it is what a
    visitor sees if ``embed.js`` never runs (scripts off, the directory unreachable), and
    ``embed.js`` takes it away when it puts the frame in its place."""
    attrs = "".join(
        f' data-{name.replace("_", "-")}="{escape(value)}"'
        for name, value in data.items()
        if name in SNIPPET_PARAMS and value not in (None, "")
    )
    script = f'<script src="{escape(script_url)}"{Markup(attrs)} async></script>'
    if link_url is None:
        return Markup(script)
    text = escape(data.get("title") or "Find a therapist")
    return Markup(f'<a class="{LINK_CLASS}" href="{escape(link_url)}">{text}</a>{script}')


def snippet_for_site(**data: Any) -> Markup:
    """Template global ``referral_embed_snippet(postcode="2000")``: the snippet for this site,
    with its link to the finder (the same start: one listing, or the search's place, condition
    and modality)."""
    listing = str(data.get("practitioner") or "")
    if listing.isdigit():
        link = external_url("referral.practitioner", practitioner_id=int(listing), _embed=None)
    else:
        start = {k: data[k] for k in LINK_PARAMS if data.get(k) not in (None, "")}
        link = external_url("referral.index", _embed=None, **start)
    return snippet(external_url("referral.embed_js"), link, **data)


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


def _install_origins(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    referral = app.extensions["referral"]
    embed_origins.install(referral, referral.engine, app.config["REFERRAL_EMBED_ORIGINS_REFRESH"])


def _add_embed_rules(state: BlueprintSetupState) -> None:
    """Copy each embeddable page's rules to ``{prefix}/<referral_embed:_embed>/...``."""
    app: Flask = state.app
    current = app.url_map.converters.get(ModeConverter.name)
    if current is not None and current is not ModeConverter:
        raise RuntimeError(f"The app already has a URL converter named {ModeConverter.name!r}.")
    app.url_map.converters[ModeConverter.name] = ModeConverter
    prefix = (state.url_prefix or "").rstrip("/")
    names = {f"{state.name_prefix}{state.name}.{e}".lstrip(".") for e in EMBEDDABLE}
    for rule in list(app.url_map.iter_rules()):
        if rule.endpoint not in names or not rule.rule.startswith(prefix + "/"):
            continue
        path = f"{prefix}/<{ModeConverter.name}:{ARG}>{rule.rule[len(prefix) :]}"
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        app.add_url_rule(path, endpoint=rule.endpoint, methods=methods)


def _pop_mode(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # set on every request: an app context a test (or a host) keeps open spans several
    g.referral_embed = values.pop(ARG, None) if values else None


def _keep_mode(endpoint: str, values: dict[str, Any]) -> None:
    """Inside an embed page, links to embeddable pages stay embedded (``_embed=None``: not)."""
    if ARG in values:
        if not values[ARG]:
            del values[ARG]
        return
    if is_embedded() and endpoint.rsplit(".", 1)[-1] in EMBEDDABLE:
        values[ARG] = g.referral_embed


def template_context() -> dict[str, Any]:
    embedded = is_embedded()
    return {
        "referral_embedded": embedded,
        "referral_embed_mode": mode() if embedded else Mode(),
        "referral_parent_origins": parent_origins() if embedded else [],
    }


def register(bp: Blueprint) -> None:
    """Wire embedding into the blueprint; call after every page has been added."""
    bp.record(_install_origins)
    bp.record(_add_embed_rules)
    bp.url_value_preprocessor(_pop_mode)
    bp.url_defaults(_keep_mode)
    bp.add_url_rule("/embed.js", "embed_js", embed_js)
    bp.add_url_rule("/embed/style/<segment>.css", "embed_style", mode_css)
    bp.add_app_template_global(snippet_for_site, "referral_embed_snippet")
    bp.add_app_template_global(form_token, "referral_form_token")

"""Security headers on the plugin's own responses: CSP with framing, nosniff, referrer, HSTS
and ``no-store`` on pages that show private data.

The plugin is a guest on a host's app, so the headers go only on responses of its own
blueprint (pages, API, static files), in the blueprint's ``after_request``, and only where
the response does not carry that header yet: a header a host set first (``after_this_request``,
a wrapping view) is kept whole, and a host's own ``app.after_request`` runs after this one and
has the last word. Flask-Talisman does not fit a guest: it hooks every request of the app,
overwrites headers unconditionally, rewrites ``SESSION_COOKIE_SAMESITE`` and redirects the
whole site to HTTPS by default.

Every page sends (values built once per app, at start-up, by :func:`build`, except the
origins of an ``/embed/`` page's ``frame-ancestors``, which an admin may change while the app
runs: :func:`referral.embed_origins.allowed`):

- ``Content-Security-Policy``: everything from the plugin's own origin (``'self'``), no
  inline script, no ``eval``, no ``style=`` attribute; ``img-src`` adds the origin of
  ``REFERRAL_MAP_TILE_URL`` for the map tiles; ``style-src`` adds the hash of the
  ``REFERRAL_THEME`` style block; ``REFERRAL_CSP_EXTRA`` adds a host's sources (its layout's
  fonts, analytics, a form posting elsewhere); ``frame-ancestors`` is ``'self'`` plus, on
  ``/embed/`` pages only, ``REFERRAL_EMBED_ORIGINS`` and the websites an admin added
  (see :mod:`referral.embed` and :mod:`referral.embed_origins`).
- ``X-Frame-Options: SAMEORIGIN`` outside ``/embed/`` (the header cannot list several origins,
  so embed pages rely on ``frame-ancestors``).
- ``X-Content-Type-Options: nosniff``.
- ``Referrer-Policy: strict-origin-when-cross-origin``; ``no-referrer`` from private pages.
- ``Strict-Transport-Security: max-age=REFERRAL_HSTS_SECONDS`` when ``request.is_secure``:
  behind a proxy that means the host wraps its app in Werkzeug's ``ProxyFix``; a bare
  ``X-Forwarded-Proto`` from a client proves nothing.

A view marked :func:`private` (the inbox, a referral, the listing editor, account and admin
pages, the cancel page) also sends ``Cache-Control: no-store`` and no referrer.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, current_app, request
from werkzeug.wrappers import Response

from referral import embed, embed_origins, theme

F = TypeVar("F", bound=Callable[..., Any])

PUBLIC_REFERRER = "strict-origin-when-cross-origin"
PRIVATE_REFERRER = "no-referrer"
NO_STORE = "no-store"

#: the policy before a host's extras; ``frame-ancestors`` is added per page
BASE_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
}

_PRIVATE_ATTR = "referral_private"
_DIRECTIVE = re.compile(r"^[a-z]+(-[a-z]+)*$")
#: a quoted keyword or hash (``'self'``, ``'sha256-...'``) or a scheme/host source; nothing
#: that could end a directive (``;``), a header line (CR, LF) or join another value (``,``)
_SOURCE = re.compile(r"^('[A-Za-z0-9+/=_-]+'|[A-Za-z0-9*][A-Za-z0-9+.\-:/*\[\]_%~?=&]*)$")
_TILE_HOST = re.compile(r"^((\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$")


@dataclass(frozen=True)
class Policy:
    """The header values of one app, built once from its config by :func:`build`."""

    #: the whole Content-Security-Policy of a plain page
    page_csp: str
    #: an ``/embed/`` page's policy up to its ``frame-ancestors`` (see :meth:`embed_csp`)
    embed_base: str
    #: the Strict-Transport-Security value, or ``None`` not to send it
    hsts: str | None

    def embed_csp(self, origins: list[str] | tuple[str, ...]) -> str:
        """An ``/embed/`` page's whole policy: framed by itself and by ``origins``, which
        must already be checked origins (:func:`referral.embed.parse_origins`,
        :func:`referral.embed_origins.check_origin`)."""
        sources = " ".join(["'self'", *origins])
        return f"{self.embed_base}; frame-ancestors {sources}"


def tile_source(url: str) -> str | None:
    """The CSP source the map tiles of ``REFERRAL_MAP_TILE_URL`` load from.

    ``None`` for a relative URL (``'self'`` covers it). Leaflet's ``{s}`` subdomain in the
    first label becomes ``*``; a placeholder elsewhere in the host cannot be expressed, and
    ``ValueError`` says to use ``REFERRAL_CSP_EXTRA`` instead.
    """
    parts = urlsplit(url)
    if not parts.netloc:
        return None
    host = parts.netloc.rpartition("@")[2].lower()
    first, dot, rest = host.partition(".")
    if "{" in first and dot:
        host = f"*.{rest}"
    if not _TILE_HOST.match(host):
        raise ValueError(
            f"REFERRAL_MAP_TILE_URL: cannot allow tiles from host {host!r} in the CSP; "
            "name the tile host's origin in REFERRAL_CSP_EXTRA['img-src']."
        )
    if not parts.scheme:
        return host  # protocol-relative: the page's own scheme
    if parts.scheme not in ("http", "https"):
        raise ValueError("REFERRAL_MAP_TILE_URL must be an http(s) or a relative URL.")
    return f"{parts.scheme}://{host}"


def _sources(directive: str, value: Any) -> list[str]:
    items = value.split(" ") if isinstance(value, str) else list(value or [])
    sources = [str(item).strip(" ") for item in items if str(item).strip(" ")]
    for source in sources:
        if not _SOURCE.match(source):
            raise ValueError(f"REFERRAL_CSP_EXTRA[{directive!r}]: {source!r} is not a CSP source.")
    return sources


def extra_policy(extra: Any) -> dict[str, list[str]]:
    """``REFERRAL_CSP_EXTRA`` checked: ``{directive: [sources]}``; raises ``ValueError``."""
    if not extra:
        return {}
    if not isinstance(extra, Mapping):
        raise ValueError(
            "REFERRAL_CSP_EXTRA must be a dict of directive -> sources, e.g. "
            "{'img-src': 'https://cdn.example'}."
        )
    checked: dict[str, list[str]] = {}
    for directive, value in extra.items():
        if not isinstance(directive, str) or not _DIRECTIVE.match(directive):
            raise ValueError(f"REFERRAL_CSP_EXTRA: {directive!r} is not a CSP directive.")
        if directive == "frame-ancestors":
            raise ValueError(
                "REFERRAL_CSP_EXTRA cannot set frame-ancestors: list the sites that may frame "
                "the plugin in REFERRAL_EMBED_ORIGINS."
            )
        checked[directive] = _sources(directive, value)
    return checked


def style_hash(css: str) -> str:
    """The CSP source allowing exactly one ``<style>`` element whose text is ``css``."""
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


def _join(policy: Mapping[str, list[str]]) -> str:
    return "; ".join(" ".join([name, *sources]) for name, sources in policy.items())


def build(config: Mapping[str, Any]) -> Policy:
    """The headers for an app whose ``REFERRAL_*`` settings are already checked.

    Raises ``ValueError`` for a ``REFERRAL_CSP_EXTRA``, tile URL or ``REFERRAL_HSTS_SECONDS``
    that cannot make a sound header, so a mistake fails at start-up.
    """
    policy = {name: list(sources) for name, sources in BASE_POLICY.items()}
    tiles = tile_source(str(config["REFERRAL_MAP_TILE_URL"]))
    if tiles:
        policy["img-src"].append(tiles)
    extra = extra_policy(config["REFERRAL_CSP_EXTRA"])
    css = theme.style_css(config["REFERRAL_THEME"])
    # a hash next to 'unsafe-inline' would switch 'unsafe-inline' off for the host's styles
    if css and "'unsafe-inline'" not in extra.get("style-src", []):
        policy["style-src"].append(style_hash(css))
    for directive, sources in extra.items():
        # a new fetch directive no longer falls back to default-src: it starts from 'self'
        start = policy.setdefault(directive, ["'self'"] if directive.endswith("-src") else [])
        start.extend(s for s in sources if s not in start)

    seconds = config["REFERRAL_HSTS_SECONDS"]
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise ValueError("REFERRAL_HSTS_SECONDS must be a whole number of seconds (0: off).")
    return Policy(
        page_csp=_join({**policy, "frame-ancestors": ["'self'"]}),
        embed_base=_join(policy),
        hsts=f"max-age={seconds}" if seconds else None,
    )


def private(view: F) -> F:
    """Mark a view whose pages show private data: they are never stored by a browser or a
    proxy (``Cache-Control: no-store``) and send no ``Referer`` onwards.

    Mark the innermost function before wrapping it (``functools.wraps`` carries the mark).
    """
    setattr(view, _PRIVATE_ATTR, True)
    return view


def is_private() -> bool:
    """True while the current request is served by a view marked :func:`private`."""
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, _PRIVATE_ATTR, False))


def apply(response: Response) -> Response:
    """Add the plugin's headers to one of its responses, keeping any already there."""
    policy: Policy = current_app.extensions["referral"].headers
    headers = response.headers
    embedded = embed.is_embedded()
    if "Content-Security-Policy" not in headers:
        if embedded:
            headers["Content-Security-Policy"] = policy.embed_csp(embed_origins.allowed())
        else:
            headers["Content-Security-Policy"] = policy.page_csp
    if not embedded:
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if is_private():
        headers.setdefault("Referrer-Policy", PRIVATE_REFERRER)
        headers.setdefault("Cache-Control", NO_STORE)
    else:
        headers.setdefault("Referrer-Policy", PUBLIC_REFERRER)
    if policy.hsts and request.is_secure:
        headers.setdefault("Strict-Transport-Security", policy.hsts)
    return response


def register(bp: Blueprint) -> None:
    """Send the headers on every response of the plugin's blueprint (and only there)."""
    bp.after_request(apply)

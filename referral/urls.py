"""Absolute URLs, from ``REFERRAL_PUBLIC_URL`` and never from the request.

Links in emails, webhooks, the OpenAPI ``servers`` entry, the embed snippet and the API's
page links leave the request that made them: built from the ``Host`` header, one forged
header would send a practitioner a genuine reset link to an attacker's site. So they are
built from the configured public address (scheme, host, optional path where the host app
is mounted), which works outside a request too (CLI commands, the outbox worker).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, url_for

SETTING = "REFERRAL_PUBLIC_URL"


def check_public_url(value: str | None) -> str | None:
    """``value`` normalised (no trailing slash), or ``ValueError`` saying what is wrong."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(
            f"{SETTING} must be the site's public address such as 'https://clinic.example' "
            f"(scheme, host, optional port and path; no query), not {text!r}."
        )
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def external_url(endpoint: str, **values: Any) -> str:
    """The absolute URL of ``endpoint`` at the configured public address.

    Without ``REFERRAL_PUBLIC_URL`` (allowed only in debug and testing, see
    :func:`check_deployment`) it falls back to Flask's ``url_for(..., _external=True)``.
    """
    app = current_app
    base = app.config[SETTING]
    if not base:
        return url_for(endpoint, _external=True, **values)
    parts = urlsplit(base)
    adapter = app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme)
    return adapter.build(endpoint, values, force_external=True)


def public_origin() -> str | None:
    """``scheme://host[:port]`` of ``REFERRAL_PUBLIC_URL``, or ``None`` when unset."""
    base = current_app.config[SETTING]
    if not base:
        return None
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}"


#: secret keys seen in examples and tutorials; a site using one can have its cookies forged
PLACEHOLDER_KEYS = frozenset(
    {
        "demo-only-change-me",
        "change-me",
        "changeme",
        "change-this",
        "dev",
        "development",
        "secret",
        "secret-key",
        "secretkey",
        "your-secret-key",
        "test",
        "testing",
    }
)
MIN_SECRET_BYTES = 32


def check_deployment(app: Flask) -> None:
    """Refuse to start outside debug and testing without a public URL, with a weak key, or
    with the placeholder geocoder user agent while the remote geocoder is on.

    A ``SECRET_KEY`` signs sessions, reset links and embed form tokens: a known placeholder
    or a short one lets anyone forge them. A geocoder's operator needs to know who to
    contact about the traffic.
    """
    if app.debug or app.testing:
        return
    if not app.config[SETTING]:
        raise RuntimeError(
            f"Set {SETTING} to the site's public address (e.g. 'https://clinic.example'): "
            "links in emails are built from it, never from the request's Host header."
        )
    key = app.config.get("SECRET_KEY")
    raw = key.encode() if isinstance(key, str) else (key or b"")
    if not raw or raw.decode(errors="replace").strip().lower() in PLACEHOLDER_KEYS:
        raise RuntimeError(
            "Set SECRET_KEY to a long random value (python -c 'import secrets; "
            "print(secrets.token_hex(32))'); it must not be empty or a placeholder."
        )
    if len(raw) < MIN_SECRET_BYTES:
        raise RuntimeError(
            f"SECRET_KEY is {len(raw)} bytes; use at least {MIN_SECRET_BYTES} random bytes "
            "(python -c 'import secrets; print(secrets.token_hex(32))')."
        )
    from referral.config import SETTINGS

    placeholder = SETTINGS["GEOCODER_USER_AGENT"].default
    if app.config["REFERRAL_GEOCODER"] and app.config["REFERRAL_GEOCODER_USER_AGENT"] in (
        placeholder,
        "",
        None,
    ):
        raise RuntimeError(
            "Set REFERRAL_GEOCODER_USER_AGENT to a user agent naming your site and a contact "
            "(e.g. 'clinic.example directory (admin@clinic.example)'), as Nominatim's usage "
            "policy asks, or turn the remote geocoder off with REFERRAL_GEOCODER = None."
        )

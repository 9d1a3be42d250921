"""Websites allowed to show the finder in a frame: checked, stored, and read back quickly.

Two sources, combined by :func:`allowed`: ``REFERRAL_EMBED_ORIGINS`` (config, fixed at start-up)
and the ``referral_embed_origin`` table an admin edits on the page "Websites that embed the
finder" (:mod:`referral.views.embeds`). The result feeds ``frame-ancestors`` on ``/embed/``
pages (:mod:`referral.headers`) and the origins an embedded page posts its height to
(:func:`referral.embed.parent_origins`).

Each process keeps the table's origins for ``REFERRAL_EMBED_ORIGINS_REFRESH`` seconds. A
change made through :func:`add` or :func:`remove` clears that process's copy at once; other
processes (gunicorn workers, other servers) see it when their copy expires, so within that
many seconds. ``0`` reads the table on every embed page.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from referral.errors import InvalidInput
from referral.models import EmbedOrigin

log = logging.getLogger(__name__)

EXAMPLE = "https://clinic.example"
#: hosts served over plain http only on a developer's machine
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_PORTS = {"https": 443, "http": 80}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_IPV6 = re.compile(r"^\[[0-9a-f:.]+\]$")


def _refuse(message: str) -> InvalidInput:
    return InvalidInput("invalid_origin", message)


def check_origin(text: str | None, *, allow_local_http: bool = False) -> str:
    """The website address an operator typed, as the origin browsers send: ``scheme://host``
    with a port only when it is not the default, in lower case, international names in
    their ``xn--`` form.

    Raises :class:`~referral.errors.InvalidInput` (code ``invalid_origin``) saying in plain
    words what is wrong. ``https`` only; ``http`` only for this machine
    (``localhost``, ``127.0.0.1``, ``[::1]``) and only when ``allow_local_http`` (debug,
    testing). A page's address (a path, a query) is refused with the site's address to use
    instead, since a frame is allowed per site, not per page.
    """
    value = (text or "").strip()
    if not value:
        raise _refuse(f"Enter the website's address, for example {EXAMPLE}.")
    if len(value) > 300 or any(c.isspace() or not c.isprintable() for c in value):
        raise _refuse(f"That is not a website address. Enter one like {EXAMPLE}.")
    if "://" not in value:
        raise _refuse(f"Start the address with https://, for example https://{value.strip('/')}.")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _refuse(
            f"That address has a port that is not a number. Enter one like {EXAMPLE}."
        ) from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in DEFAULT_PORTS:
        raise _refuse(f"A website address starts with https://, for example {EXAMPLE}.")
    if parts.username is not None or parts.password is not None:
        raise _refuse(f"Leave out any name or password before the @. Enter one like {EXAMPLE}.")
    if "*" in value:
        raise _refuse("Enter one website at a time: wildcards (*) are not allowed.")
    if not host:
        raise _refuse(f"That address has no website name in it. Enter one like {EXAMPLE}.")
    if ":" in host:
        host = f"[{host}]"
    elif not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise _refuse(
                f"{host} is not a website name that can be used. Check the spelling."
            ) from None
    if not _IPV6.match(host) and not all(_LABEL.match(label) for label in host.split(".")):
        raise _refuse(f"{host} is not a website name that can be used. Check the spelling.")
    if "." not in host and not _IPV6.match(host) and host != "localhost":
        raise _refuse(f"A website address has a dot in its name, for example {EXAMPLE}.")
    local = host in LOCAL_HOSTS
    if scheme == "http" and not (local and allow_local_http):
        where = "" if not local else " (plain http:// works only while testing on this computer)"
        raise _refuse(f"Use the secure address, starting with https://{where}.")
    if port == 0:
        raise _refuse(f"That address has no usable port. Enter one like {EXAMPLE}.")
    origin = f"{scheme}://{host}"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        origin += f":{port}"
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise _refuse(
            f"Enter the website's address without a page: {origin} instead of {value}. "
            "Every page of that website can then show the finder."
        )
    return origin


def local_http_allowed() -> bool:
    """While debugging or testing, ``http://localhost`` sites may be added too."""
    return bool(current_app.debug or current_app.testing)


def stored(session: Session) -> list[EmbedOrigin]:
    """The origins an admin added, in the order they were added."""
    return list(session.scalars(select(EmbedOrigin).order_by(EmbedOrigin.id)))


def add(session: Session, text: str, *, added_by: str = "", note: str = "") -> EmbedOrigin:
    """Check ``text`` (:func:`check_origin`), store it and commit; refuse an origin already
    allowed, here or by ``REFERRAL_EMBED_ORIGINS``. Effective at once in this process."""
    origin = check_origin(text, allow_local_http=local_http_allowed())
    if origin in current_app.config["REFERRAL_EMBED_ORIGINS"]:
        raise _refuse(f"{origin} is already allowed by the server's settings.")
    taken = session.scalar(select(EmbedOrigin.id).where(EmbedOrigin.origin == origin))
    if taken is not None:
        raise _refuse(f"{origin} is already on the list.")
    row = EmbedOrigin(origin=origin, note=(note or "").strip()[:200], added_by=added_by[:254])
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # added by someone else a moment ago
        session.rollback()
        raise _refuse(f"{origin} is already on the list.") from None
    cache().clear()
    return row


def remove(session: Session, origin_id: int) -> EmbedOrigin | None:
    """Delete one stored origin and commit; ``None`` when there was none by that id."""
    row = session.get(EmbedOrigin, origin_id)
    if row is None:
        return None
    session.delete(row)
    session.commit()
    cache().clear()
    return row


class OriginCache:
    """One app's copy of the stored origins, read again after ``ttl`` seconds.

    Reads use a connection of their own, not the request's session, so the header of a
    response (even an error page after a rollback) never depends on the request's
    transaction. If the table cannot be read (a host that has not run ``flask referral
    upgrade`` yet), only the configured origins are allowed and a warning is logged.
    """

    def __init__(self, engine: Engine, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.engine = engine
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._origins: tuple[str, ...] = ()
        self._expires: float | None = None

    def clear(self) -> None:
        with self._lock:
            self._expires = None

    def origins(self) -> tuple[str, ...]:
        now = self.clock()
        with self._lock:
            if self._expires is not None and now < self._expires:
                return self._origins
        try:
            with self.engine.connect() as conn:
                found = tuple(conn.scalars(select(EmbedOrigin.origin).order_by(EmbedOrigin.id)))
        except SQLAlchemyError as exc:
            log.warning("Cannot read the embed origins table (%s); config origins only.", exc)
            found = ()
        with self._lock:
            self._origins, self._expires = found, now + self.ttl
        return found


def cache() -> OriginCache:
    return current_app.extensions["referral"].embed_origins


def install(state: object, engine: Engine, ttl: float) -> None:
    """Give an app's ``app.extensions["referral"]`` its :class:`OriginCache`."""
    state.embed_origins = OriginCache(engine, ttl)  # type: ignore[attr-defined]


def allowed() -> list[str]:
    """Every origin that may frame ``/embed/`` pages: the configured ones, then the stored."""
    configured = current_app.config["REFERRAL_EMBED_ORIGINS"]
    return [*configured, *(o for o in cache().origins() if o not in configured)]

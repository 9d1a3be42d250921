"""Turning what a visitor typed into coordinates: the one entry point, :func:`locate`.

The chain (DESIGN.md): postcode or suburb in the local table, then the geocode cache,
then a geopy geocoder. Callers (search, listing editor, CSV import) use ``locate`` only.

The remote geocoder is a shared public service with a usage policy (Nominatim: one request
a second, a real user agent, cache the answers), so each distinct query is fetched once per
cache lifetime, "not found" answers are cached too, and every call goes through one geopy
``RateLimiter`` per process and configuration.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from geopy.exc import GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import get_geocoder_for_service
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from referral.geo import LocationNotFound, Point
from referral.geo.postcodes import checked_query, lookup, place_key
from referral.models import GeocodeCache, utcnow

log = logging.getLogger(__name__)


class LocationServiceUnavailable(LocationNotFound):
    """The remote geocoder timed out or failed: worth trying again later, or a postcode.

    A subclass of :class:`LocationNotFound` so a caller that only handles "not found"
    still shows the person a message instead of failing.
    """


def locate(session: Session, text: str, country: str, config: Mapping[str, Any]) -> Point:
    """Resolve ``text`` in ``country``; raises :class:`referral.geo.LocationNotFound`.

    Order: the local postcode table, the geocode cache, the remote geocoder named by
    ``REFERRAL_GEOCODER`` (skipped when it is ``None``). Remote answers, found or not, are
    written to the cache on their own connection, so a search that never commits still
    remembers them; a remote failure raises :class:`LocationServiceUnavailable`.
    """
    checked_query(text)  # refused before any look-up, local or remote
    country = country.upper()
    try:
        return lookup(session, text, country)
    except LocationNotFound as local_miss:
        if not config.get("REFERRAL_GEOCODER"):
            raise
        not_found = local_miss

    key = place_key(text)
    cached = session.scalars(
        select(GeocodeCache)
        .where(GeocodeCache.country == country, GeocodeCache.query == key)
        # rows are written on another connection: never trust a copy this session holds
        .execution_options(populate_existing=True)
    ).first()
    if cached is not None and _fresh(cached, config):
        if cached.lat is None or cached.lon is None:
            raise not_found
        return Point(cached.lat, cached.lon, cached.label or text.strip(), "geocoder")

    geocode, name = _geocoder(config)
    try:
        found = geocode(**_geocode_arguments(geocode, key, country))
    except Exception as exc:  # timeouts, HTTP errors, and answers geopy cannot parse
        if isinstance(exc, GeopyError):
            log.warning("Geocoder %s failed for %r: %s", name, key, exc)
        else:
            log.exception("Geocoder %s gave an unreadable answer for %r", name, key)
        raise LocationServiceUnavailable(
            "The address search service is not answering just now. Please try a postcode "
            "or suburb name, or try again in a minute."
        ) from exc
    if found is None:
        _remember(session, country, key, None, None, None, name, cached)
        raise not_found
    label = (found.address or text.strip())[:500]
    _remember(session, country, key, found.latitude, found.longitude, label, name, cached)
    return Point(found.latitude, found.longitude, label, "geocoder")


def _fresh(row: GeocodeCache, config: Mapping[str, Any]) -> bool:
    days = (
        config["REFERRAL_GEOCODE_CACHE_DAYS"]
        if row.lat is not None
        else config["REFERRAL_GEOCODE_NOT_FOUND_DAYS"]
    )
    return row.created_at >= utcnow() - timedelta(days=float(days))


def _geocode_arguments(geocode: RateLimiter, query: str, country: str) -> dict[str, Any]:
    """Restrict to the country where the provider supports it, else say it in the query."""
    params = inspect.signature(geocode.func).parameters
    if "country_codes" in params:
        return {"query": query, "country_codes": country.lower()}
    return {"query": f"{query}, {country}"}


def _remember(
    session: Session,
    country: str,
    key: str,
    lat: float | None,
    lon: float | None,
    label: str | None,
    provider: str,
    stale: GeocodeCache | None,
) -> None:
    """Write one cache row; a failed write only costs a later repeat request.

    Its own connection and transaction, because the cache outlives the caller's unit of
    work. On SQLite a caller that already holds the write lock would block that second
    connection, so there the row joins the caller's transaction instead.
    """
    values = {
        "country": country,
        "query": key,
        "lat": lat,
        "lon": lon,
        "label": label,
        "provider": provider[:60],
        "created_at": utcnow(),
    }
    if _holds_sqlite_write_lock(session):
        with session.begin_nested():
            if stale is not None:
                session.execute(update(GeocodeCache).where(GeocodeCache.id == stale.id), values)
            else:
                session.add(GeocodeCache(**values))
        return
    try:
        with session.get_bind().begin() as conn:
            if stale is not None:
                conn.execute(update(GeocodeCache).where(GeocodeCache.id == stale.id), values)
            else:
                conn.execute(GeocodeCache.__table__.insert(), values)
    except SQLAlchemyError as exc:  # e.g. another request cached the same query first
        log.info("Geocode cache write skipped for %r: %s", key, exc)


def _holds_sqlite_write_lock(session: Session) -> bool:
    bind = session.get_bind()
    if bind.dialect.name != "sqlite" or not session.in_transaction():
        return False
    dbapi = session.connection().connection.driver_connection
    return bool(getattr(dbapi, "in_transaction", False))


_geocoders: dict[tuple, tuple[RateLimiter, str]] = {}
_geocoders_lock = threading.Lock()


def _geocoder(config: Mapping[str, Any]) -> tuple[RateLimiter, str]:
    """One rate-limited geocoder per process and configuration, so the 1 request/s
    limit holds across every request this process serves."""
    options = dict(config["REFERRAL_GEOCODER_OPTIONS"] or {})
    key = (
        _describe(config["REFERRAL_GEOCODER"]),
        config["REFERRAL_GEOCODER_USER_AGENT"],
        config["REFERRAL_GEOCODER_DOMAIN"],
        config["REFERRAL_GEOCODER_SCHEME"],
        float(config["REFERRAL_GEOCODER_TIMEOUT"]),
        float(config["REFERRAL_GEOCODER_MIN_DELAY"]),
        repr(sorted(options.items())),
    )
    with _geocoders_lock:
        if key not in _geocoders:
            _geocoders[key] = _build(config, options)
        return _geocoders[key]


def _build(config: Mapping[str, Any], options: dict[str, Any]) -> tuple[RateLimiter, str]:
    cls = provider_class(config["REFERRAL_GEOCODER"])
    kwargs: dict[str, Any] = {
        "user_agent": config["REFERRAL_GEOCODER_USER_AGENT"],
        "timeout": float(config["REFERRAL_GEOCODER_TIMEOUT"]),
        **options,
    }
    accepted = inspect.signature(cls.__init__).parameters
    if config["REFERRAL_GEOCODER_DOMAIN"] and "domain" in accepted:
        kwargs["domain"] = config["REFERRAL_GEOCODER_DOMAIN"]
    if config["REFERRAL_GEOCODER_SCHEME"] and "scheme" in accepted:
        kwargs["scheme"] = config["REFERRAL_GEOCODER_SCHEME"]
    delay = float(config["REFERRAL_GEOCODER_MIN_DELAY"])
    limited = RateLimiter(
        cls(**kwargs).geocode,
        min_delay_seconds=delay,
        error_wait_seconds=delay,
        max_retries=0,  # a person is waiting: fail fast and say so, never retry in-request
        swallow_exceptions=False,
    )
    return limited, cls.__name__


def provider_class(spec: str | type) -> type:
    """A geopy geocoder class from a service name (``"nominatim"``, ``"photon"``), a
    dotted path (``"geopy.geocoders.Nominatim"``, ``"mypkg.geo:MyGeocoder"``) or a class."""
    if isinstance(spec, type):
        return spec
    if ":" in spec or "." in spec:
        module, _, name = spec.replace(":", ".").rpartition(".")
        return getattr(importlib.import_module(module), name)
    return get_geocoder_for_service(spec)


def _describe(spec: str | type | Callable) -> str:
    return spec if isinstance(spec, str) else f"{spec.__module__}.{spec.__qualname__}"

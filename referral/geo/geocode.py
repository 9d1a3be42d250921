"""Turning what a visitor typed into coordinates: the one entry point, :func:`locate`.

The chain (DESIGN.md): the local gazetteer (:mod:`referral.geo.gazetteer`), then the
geocode cache, then a geopy geocoder. Callers (search, listing editor, CSV import) use
``locate`` only.

The remote geocoder is a shared public service with a usage policy (Nominatim: one request
a second, a real user agent, cache the answers, credit OpenStreetMap), so it is asked only
for text the gazetteer cannot answer that reads like a street address (or for a country
with no local data); each distinct query is fetched once per cache lifetime, "not found"
answers are cached too, and every call takes a slot from one limiter for the whole
application: a moving window in the app limiter's storage (``REFERRAL_RATELIMIT_STORAGE_URL``,
so Redis makes it hold across processes and machines), as ``referral.mail`` counts
recipients. A client may make only ``REFERRAL_GEOCODER_CLIENT_RATE_LIMIT`` such searches.
Typed places are never written to the log.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from flask import current_app, has_request_context
from flask_limiter.util import get_remote_address
from geopy.adapters import URLLibAdapter
from geopy.exc import GeopyError
from geopy.geocoders import get_geocoder_for_service
from limits import RateLimitItemPerSecond, parse
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from referral.geo import LocationNotFound, Point, gazetteer
from referral.geo.postcodes import checked_query, lookup, place_key
from referral.models import GeocodeCache, utcnow

log = logging.getLogger(__name__)

#: what the geocoders built on OpenStreetMap data must show beside a place they found
OSM_ATTRIBUTION = "© OpenStreetMap contributors"
OSM_PROVIDERS = frozenset({"Nominatim", "Photon", "Pelias", "OpenMapQuest"})
#: words that make text read like a street address rather than a place name
_STREET = re.compile(
    r"\b(st|street|rd|road|ave|avenue|pde|parade|dr|drive|ct|court|pl|place|tce|terrace|"
    r"hwy|highway|cres|crescent|ln|lane|blvd|boulevard|way|cl|close|esp|esplanade|"
    r"unit|level|shop|suite)\b\.?",
    re.IGNORECASE,
)


class LocationServiceUnavailable(LocationNotFound):
    """The remote geocoder timed out, failed or is busy: worth trying again later, or a
    postcode.

    A subclass of :class:`LocationNotFound` so a caller that only handles "not found"
    still shows the person a message instead of failing.
    """


class GeocoderLimitReached(LocationNotFound):
    """This client has made its share of searches that reach the remote geocoder."""


def looks_like_address(text: str) -> bool:
    """A house number beside words ("12 Smith St, Newtown"), or a street word: worth the
    remote geocoder. A bare name the gazetteer does not know is not."""
    words = re.findall(r"[^\W_]+", text)
    letters = [w for w in words if not w.isdigit()]
    numbered = any(re.fullmatch(r"\d+[a-z]?(/\d+)?", w, re.I) for w in text.split())
    if not letters:
        return False
    return bool(_STREET.search(text)) or (numbered and len(letters) >= 2)


def locate(session: Session, text: str, country: str, config: Mapping[str, Any]) -> Point:
    """Resolve ``text`` in ``country``; raises :class:`referral.geo.LocationNotFound`.

    Order: the local gazetteer; then, only when the gazetteer has no data for the country
    or the text reads like an address, the geocode cache and the remote geocoder named by
    ``REFERRAL_GEOCODER`` (skipped when it is ``None``). Remote answers, found or not, are
    written to the cache on their own connection, so a search that never commits still
    remembers them; a remote failure raises :class:`LocationServiceUnavailable`.
    """
    checked_query(text)  # refused before any look-up, local or remote
    country = country.upper()
    try:
        return lookup(session, text, country, home_region=config.get("REFERRAL_HOME_REGION"))
    except LocationNotFound as local_miss:
        if not config.get("REFERRAL_GEOCODER") or not local_miss.remote:
            raise
        if gazetteer.for_country(session, country) is not None and not looks_like_address(text):
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
        return Point(
            cached.lat,
            cached.lon,
            cached.label or text.strip(),
            "geocoder",
            attribution=attribution(cached.provider),
        )

    _count_client(config)
    geocode, name = _geocoder(config)
    _take_slot(config)
    try:
        found = geocode(**_geocode_arguments(geocode, key, country))
    except Exception as exc:  # timeouts, HTTP errors, and answers geopy cannot parse
        # the exception's text can hold the query: log what failed, never what was typed
        if isinstance(exc, GeopyError):
            log.warning("Geocoder %s failed: %s", name, type(exc).__name__)
        else:
            log.error("Geocoder %s gave an unreadable answer: %s", name, type(exc).__name__)
        raise LocationServiceUnavailable(
            "The address search service is not answering just now. Please try a postcode "
            "or suburb name, or try again in a minute."
        ) from exc
    if found is None:
        _remember(session, country, key, None, None, None, name, cached, config)
        raise not_found
    label = (found.address or text.strip())[:500]
    _remember(session, country, key, found.latitude, found.longitude, label, name, cached, config)
    return Point(found.latitude, found.longitude, label, "geocoder", attribution=attribution(name))


def attribution(provider: str) -> str:
    """The credit to show beside a place ``provider`` found."""
    return OSM_ATTRIBUTION if provider in OSM_PROVIDERS else f"Place found by {provider}"


def _count_client(config: Mapping[str, Any]) -> None:
    """Count one remote search against this client's share; a CLI import has no client."""
    limit = config.get("REFERRAL_GEOCODER_CLIENT_RATE_LIMIT")
    if not limit or not has_request_context():
        return
    limiter = current_app.extensions["referral"].limiter
    if not limiter.enabled:
        return
    prefix = config["REFERRAL_RATELIMIT_KEY_PREFIX"]
    if not limiter.limiter.hit(parse(limit), prefix, "geocoder-client", get_remote_address()):
        raise GeocoderLimitReached(
            "That is a lot of address searches from here in a short time. Please search by "
            "postcode or suburb, or try again in a few minutes."
        )


def _take_slot(config: Mapping[str, Any]) -> None:
    """Wait for this application's next geocoder slot (``REFERRAL_GEOCODER_MIN_DELAY``
    seconds apart, in the app limiter's storage), at most ``REFERRAL_GEOCODER_TIMEOUT``
    seconds; then :class:`LocationServiceUnavailable`.

    A moving window, so no two requests fall within one window even across its edge.
    Outside an app (a script calling ``locate`` with a plain mapping) only this process's
    own limiter is at hand.
    """
    delay = float(config["REFERRAL_GEOCODER_MIN_DELAY"])
    if delay <= 0:
        return
    item = RateLimitItemPerSecond(1, max(1, math.ceil(delay)))
    limiter = _slot_limiter()
    prefix = config["REFERRAL_RATELIMIT_KEY_PREFIX"]
    deadline = time.monotonic() + float(config["REFERRAL_GEOCODER_TIMEOUT"])
    while not limiter.hit(item, prefix, "geocoder-slot"):
        stats = limiter.get_window_stats(item, prefix, "geocoder-slot")
        wait = max(0.02, min(stats.reset_time - time.time(), 0.25))
        if time.monotonic() + wait > deadline:
            raise LocationServiceUnavailable(
                "The address search service is busy just now. Please try a postcode or "
                "suburb name, or try again in a minute."
            )
        time.sleep(wait)


_slot_limiters: dict[int, MovingWindowRateLimiter] = {}
_local_storage: list[Any] = []


def _slot_limiter() -> MovingWindowRateLimiter:
    from flask import current_app as app

    try:
        storage = app.extensions["referral"].limiter.storage
    except (RuntimeError, KeyError):  # no app: this process only
        from limits.storage import MemoryStorage

        if not _local_storage:
            _local_storage.append(MemoryStorage())
        storage = _local_storage[0]
    key = id(storage)
    if key not in _slot_limiters:
        _slot_limiters[key] = MovingWindowRateLimiter(storage)
    return _slot_limiters[key]


def _fresh(row: GeocodeCache, config: Mapping[str, Any]) -> bool:
    days = (
        config["REFERRAL_GEOCODE_CACHE_DAYS"]
        if row.lat is not None
        else config["REFERRAL_GEOCODE_NOT_FOUND_DAYS"]
    )
    return row.created_at >= utcnow() - timedelta(days=float(days))


def _geocode_arguments(geocode: Callable, query: str, country: str) -> dict[str, Any]:
    """Restrict to the country where the provider supports it, else say it in the query."""
    params = inspect.signature(geocode).parameters
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
    config: Mapping[str, Any],
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
    most = int(config["REFERRAL_GEOCODE_CACHE_MAX_ROWS"])
    if _holds_sqlite_write_lock(session):
        with session.begin_nested():
            if stale is not None:
                session.execute(update(GeocodeCache).where(GeocodeCache.id == stale.id), values)
            else:
                session.add(GeocodeCache(**values))
                session.flush()
                _trim(session, most)
        return
    try:
        with Session(session.get_bind()) as own, own.begin():
            if stale is not None:
                own.execute(update(GeocodeCache).where(GeocodeCache.id == stale.id), values)
            else:
                own.execute(GeocodeCache.__table__.insert(), values)
                _trim(own, most)
    except SQLAlchemyError as exc:  # e.g. another request cached the same query first
        log.info("Geocode cache write skipped: %s", type(exc).__name__)


def _trim(session: Session, most: int) -> int:
    """Keep the ``most`` newest cache rows: random strings cannot grow it without bound."""
    count = session.scalar(select(func.count(GeocodeCache.id))) or 0
    if count <= most:
        return 0
    cutoff = session.scalar(
        select(GeocodeCache.created_at)
        .order_by(GeocodeCache.created_at.desc(), GeocodeCache.id.desc())
        .offset(most)
        .limit(1)
    )
    result = session.execute(delete(GeocodeCache).where(GeocodeCache.created_at <= cutoff))
    return result.rowcount or 0


def purge_cache(session: Session, config: Mapping[str, Any]) -> int:
    """Delete cache rows past their lifetime (found: ``REFERRAL_GEOCODE_CACHE_DAYS``, not
    found: ``REFERRAL_GEOCODE_NOT_FOUND_DAYS``) and beyond ``REFERRAL_GEOCODE_CACHE_MAX_ROWS``;
    commits, returns how many went (``flask referral purge``)."""
    now = utcnow()
    found_before = now - timedelta(days=float(config["REFERRAL_GEOCODE_CACHE_DAYS"]))
    missed_before = now - timedelta(days=float(config["REFERRAL_GEOCODE_NOT_FOUND_DAYS"]))
    removed = session.execute(
        delete(GeocodeCache).where(
            (GeocodeCache.lat.is_not(None) & (GeocodeCache.created_at < found_before))
            | (GeocodeCache.lat.is_(None) & (GeocodeCache.created_at < missed_before))
        )
    ).rowcount
    removed += _trim(session, int(config["REFERRAL_GEOCODE_CACHE_MAX_ROWS"]))
    session.commit()
    return removed or 0


def _holds_sqlite_write_lock(session: Session) -> bool:
    bind = session.get_bind()
    if bind.dialect.name != "sqlite" or not session.in_transaction():
        return False
    dbapi = session.connection().connection.driver_connection
    return bool(getattr(dbapi, "in_transaction", False))


_geocoders: dict[tuple, tuple[Callable, str]] = {}
_geocoders_lock = threading.Lock()


def _geocoder(config: Mapping[str, Any]) -> tuple[Callable, str]:
    """One geocoder per process and configuration (its HTTP session is reused); the rate
    limit is :func:`_take_slot`'s, shared by every process."""
    options = dict(config["REFERRAL_GEOCODER_OPTIONS"] or {})
    key = (
        _describe(config["REFERRAL_GEOCODER"]),
        config["REFERRAL_GEOCODER_USER_AGENT"],
        config["REFERRAL_GEOCODER_DOMAIN"],
        config["REFERRAL_GEOCODER_SCHEME"],
        float(config["REFERRAL_GEOCODER_TIMEOUT"]),
        repr(sorted(options.items())),
    )
    with _geocoders_lock:
        if key not in _geocoders:
            _geocoders[key] = _build(config, options)
        return _geocoders[key]


def _build(config: Mapping[str, Any], options: dict[str, Any]) -> tuple[Callable, str]:
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
    # one try: a person is waiting, so fail fast and say so, never retry in-request. geopy
    # picks its requests adapter when requests is installed (a host's or a test tool's), and
    # that one retries twice, tripling REFERRAL_GEOCODER_TIMEOUT: the urllib one does not.
    if "adapter_factory" in accepted:
        kwargs.setdefault("adapter_factory", URLLibAdapter)
    return cls(**kwargs).geocode, cls.__name__


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

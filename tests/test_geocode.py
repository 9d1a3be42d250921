"""``locate``: local table, cache, then geopy's real HTTP path against a local Nominatim."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from geopy.geocoders import Nominatim, Photon
from sqlalchemy import select

from referral.geo import LocationNotFound
from referral.geo.geocode import LocationServiceUnavailable, locate, provider_class
from referral.models import GeocodeCache, Practitioner, utcnow
from wsgi import create_app

PREFIX = "/find-a-therapist"

#: what the fake Nominatim answers, by query text
ANSWERS = {
    "1 campbell parade": [
        {"lat": "-33.8915", "lon": "151.2767", "display_name": "Bondi Beach, NSW"}
    ],
    "1 nowhere street": [],
}


class FakeNominatim:
    """A Nominatim look-alike on 127.0.0.1: ``/search`` JSON, recording each request."""

    def __init__(self, slow_seconds: float = 1.5) -> None:
        self.requests: list[dict] = []
        self.slow_seconds = slow_seconds
        #: called before answering, e.g. to act as another worker caching the same place
        self.before_answer = lambda params: None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append(
                    {"path": url.path, "params": params, "ua": self.headers["User-Agent"]}
                )
                fake.requests[-1]["at"] = time.monotonic()
                q = params.get("q", "")
                fake.before_answer(params)
                if q == "1 slow street":
                    time.sleep(fake.slow_seconds)
                if q == "1 broken street":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"internal error")
                    return
                answer = ANSWERS.get(q, [])
                if url.path == "/api":  # Photon speaks GeoJSON
                    answer = {"type": "FeatureCollection", "features": []}
                if q == "1 garbled street":
                    answer = {"unexpected": True}
                body = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.domain = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def queries(self) -> list[str]:
        return [r["params"].get("q") for r in self.requests]


@pytest.fixture
def nominatim() -> Iterator[FakeNominatim]:
    fake = FakeNominatim()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def geocoding(nominatim: FakeNominatim, **extra) -> dict:
    return {
        "REFERRAL_GEOCODER": "nominatim",
        "REFERRAL_GEOCODER_DOMAIN": nominatim.domain,
        "REFERRAL_GEOCODER_SCHEME": "http",
        "REFERRAL_GEOCODER_TIMEOUT": 0.5,
        "REFERRAL_GEOCODER_MIN_DELAY": 0,
        "REFERRAL_GEOCODER_USER_AGENT": "clinic-test/1 (test@example.org)",
        **extra,
    }


@pytest.fixture
def geo_app(make_app, nominatim) -> Flask:
    return make_app(**geocoding(nominatim))


def _cache_rows(app: Flask) -> list[GeocodeCache]:
    with app.app_context():
        session = app.extensions["referral"].ext.session
        return list(session.scalars(select(GeocodeCache).order_by(GeocodeCache.id)))


def test_local_postcode_never_asks_the_geocoder(geo_app, nominatim):
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        point = locate(session, "2000", "AU", geo_app.config)
        suburb = locate(session, "surry hills", "AU", geo_app.config)
    assert point.source == "postcode" and suburb.source == "suburb"
    assert nominatim.requests == []
    assert _cache_rows(geo_app) == []


def test_found_place_is_fetched_once_then_cached(geo_app, nominatim):
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        first = locate(session, "  1 Campbell   Parade ", "AU", geo_app.config)
    assert (first.lat, first.lon, first.label, first.source) == (
        -33.8915,
        151.2767,
        "Bondi Beach, NSW",
        "geocoder",
    )
    request = nominatim.requests[0]
    assert request["path"] == "/search"
    assert request["params"]["q"] == "1 campbell parade"
    assert request["params"]["countrycodes"] == "au"
    assert request["ua"] == "clinic-test/1 (test@example.org)"

    [row] = _cache_rows(geo_app)
    assert (row.country, row.query, row.lat, row.lon, row.provider) == (
        "AU",
        "1 campbell parade",
        -33.8915,
        151.2767,
        "Nominatim",
    )
    with geo_app.app_context():  # a new request, a new session: answered from the cache
        session = geo_app.extensions["referral"].ext.session
        again = locate(session, "1 CAMPBELL PARADE", "AU", geo_app.config)
    assert (again.lat, again.lon, again.source) == (-33.8915, 151.2767, "geocoder")
    assert len(nominatim.requests) == 1


def test_found_place_is_fetched_again_after_the_cache_lifetime(make_app, nominatim):
    app = make_app(**geocoding(nominatim, REFERRAL_GEOCODE_CACHE_DAYS=30))
    with app.app_context():
        session = app.extensions["referral"].ext.session
        locate(session, "1 campbell parade", "AU", app.config)
        [row] = session.scalars(select(GeocodeCache)).all()
        row.created_at -= timedelta(days=29)
        session.commit()
        locate(session, "1 campbell parade", "AU", app.config)  # still fresh
        assert len(nominatim.requests) == 1
        row.created_at -= timedelta(days=2)
        session.commit()
        assert locate(session, "1 campbell parade", "AU", app.config).lat == -33.8915
    assert len(nominatim.requests) == 2
    assert len(_cache_rows(app)) == 1


def test_not_found_is_cached_for_a_while(geo_app, nominatim):
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        with pytest.raises(LocationNotFound, match="could not find the postcode or suburb"):
            locate(session, "1 Nowhere Street", "AU", geo_app.config)
        with pytest.raises(LocationNotFound):
            locate(session, "1 nowhere STREET", "AU", geo_app.config)
    assert nominatim.queries() == ["1 nowhere street"]
    [row] = _cache_rows(geo_app)
    assert row.query == "1 nowhere street" and row.lat is None and row.lon is None

    # once the "not found" answer is older than REFERRAL_GEOCODE_NOT_FOUND_DAYS, ask again
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        session.get(GeocodeCache, row.id).created_at -= timedelta(days=2)
        session.commit()
        with pytest.raises(LocationNotFound):
            locate(session, "1 nowhere street", "AU", geo_app.config)
    assert nominatim.queries() == ["1 nowhere street", "1 nowhere street"]
    [refreshed] = _cache_rows(geo_app)
    assert refreshed.id == row.id and refreshed.created_at > row.created_at


def test_timeout_says_try_a_postcode_and_caches_nothing(geo_app, nominatim):
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        started = time.monotonic()
        with pytest.raises(LocationServiceUnavailable, match="try a postcode"):
            locate(session, "1 slow street", "AU", geo_app.config)
        assert time.monotonic() - started < 1.4  # gave up at REFERRAL_GEOCODER_TIMEOUT
    assert nominatim.queries() == ["1 slow street"]
    assert _cache_rows(geo_app) == []


def test_provider_error_says_try_a_postcode_and_caches_nothing(geo_app, nominatim):
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        with pytest.raises(LocationServiceUnavailable):
            locate(session, "1 broken street", "AU", geo_app.config)
        with pytest.raises(LocationServiceUnavailable):  # not cached: asked again
            locate(session, "1 broken street", "AU", geo_app.config)
    assert nominatim.queries() == ["1 broken street", "1 broken street"]
    assert _cache_rows(geo_app) == []


def test_another_worker_caching_the_same_place_first_is_harmless(geo_app, nominatim):
    engine = geo_app.extensions["referral"].engine

    def other_worker(params: dict) -> None:
        with engine.begin() as conn:
            conn.execute(
                GeocodeCache.__table__.insert(),
                {"country": "AU", "query": "1 campbell parade", "lat": -33.89, "lon": 151.27,
                 "label": "Bondi (other worker)", "provider": "Nominatim",
                 "created_at": utcnow()},
            )  # fmt: skip

    nominatim.before_answer = other_worker
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        point = locate(session, "1 campbell parade", "AU", geo_app.config)
    assert point.label == "Bondi Beach, NSW"  # our answer, though theirs was stored first
    assert [r.label for r in _cache_rows(geo_app)] == ["Bondi (other worker)"]


def test_empty_or_overlong_text_never_leaves_the_building(geo_app, nominatim):
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        with pytest.raises(LocationNotFound, match="Please enter"):
            locate(session, "   ", "AU", geo_app.config)
        with pytest.raises(LocationNotFound, match="too long"):
            locate(session, "x" * 101, "AU", geo_app.config)
    assert nominatim.requests == []


def test_garbled_answer_is_unavailable_not_a_crash(geo_app, nominatim):
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        with pytest.raises(LocationServiceUnavailable):
            locate(session, "1 garbled street", "AU", geo_app.config)
    assert _cache_rows(geo_app) == []


def test_requests_are_spaced_by_the_rate_limiter(make_app, nominatim):
    app = make_app(
        **geocoding(nominatim, REFERRAL_GEOCODER_MIN_DELAY=1, REFERRAL_GEOCODER_TIMEOUT=3)
    )
    with app.app_context():
        session = app.extensions["referral"].ext.session
        started = time.monotonic()
        locate(session, "1 campbell parade", "AU", app.config)
        with pytest.raises(LocationNotFound):
            locate(session, "1 nowhere street", "AU", app.config)
        elapsed = time.monotonic() - started
    assert len(nominatim.requests) == 2
    # the limiter starts the second request no sooner than 1 s after the first began;
    # measured here, where both calls run, a loaded machine can only make it longer
    assert elapsed >= 0.95


def test_geocoder_none_stays_offline(app, nominatim):
    assert app.config["REFERRAL_GEOCODER"] is None
    with app.app_context():
        session = app.extensions["referral"].ext.session
        with pytest.raises(LocationNotFound, match="1 Campbell Parade"):
            locate(session, "1 Campbell Parade", "AU", app.config)
    assert nominatim.requests == []
    assert _cache_rows(app) == []


def test_cache_row_joins_a_caller_transaction_that_holds_the_write_lock(geo_app, nominatim):
    """A CSV import geocoding mid-transaction must not deadlock on SQLite, nor lose rows."""
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        session.add(Practitioner(name="Importing", status="draft"))
        session.flush()  # the caller now holds SQLite's write lock
        point = locate(session, "1 campbell parade", "AU", geo_app.config)
        session.commit()
    assert point.source == "geocoder"
    assert [r.query for r in _cache_rows(geo_app)] == ["1 campbell parade"]


def test_api_search_by_a_place_only_the_geocoder_knows(geo_app, nominatim, add_practitioner):
    add_practitioner("Bea Bondi", (-33.8920, 151.2740))
    client = geo_app.test_client()
    response = client.get(f"{PREFIX}/api/v1/practitioners?postcode=1%20Campbell%20Parade")
    assert response.status_code == 200
    body = response.get_json()
    assert body["query"]["source"] == "geocoder"
    assert body["query"]["label"] == "Bondi Beach, NSW"
    assert [r["name"] for r in body["results"]] == ["Bea Bondi"]
    client.get(f"{PREFIX}/api/v1/practitioners?postcode=1%20campbell%20parade")
    assert len(nominatim.requests) == 1


def test_api_geocoder_down_is_a_503_with_code_and_retry_after(geo_app, nominatim):
    response = geo_app.test_client().get(f"{PREFIX}/api/v1/practitioners?postcode=1+broken+street")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    error = response.get_json()["error"]
    assert error["code"] == "geocoder_unavailable"
    assert "try a postcode" in error["message"]


def test_page_geocoder_timeout_shows_the_message(geo_app, nominatim):
    response = geo_app.test_client().get(f"{PREFIX}/?postcode=1+slow+street")
    assert response.status_code == 503
    assert "Please try a postcode or suburb name" in response.get_data(as_text=True)


def test_page_place_not_found_anywhere_is_404(geo_app, nominatim):
    response = geo_app.test_client().get(f"{PREFIX}/?postcode=1+Nowhere+Street")
    assert response.status_code == 404
    assert "could not find the postcode or suburb “1 Nowhere Street”" in response.get_data(
        as_text=True
    )


def test_provider_by_name_dotted_path_or_class():
    assert provider_class("nominatim") is Nominatim
    assert provider_class("geopy.geocoders.Photon") is Photon
    assert provider_class("geopy.geocoders:Photon") is Photon
    assert provider_class(Photon) is Photon


def test_misspelt_geocoder_fails_at_start_up(database_url):
    with pytest.raises(Exception, match="Unknown geocoder 'nominatimm'"):
        create_app({"REFERRAL_DATABASE_URL": database_url, "REFERRAL_GEOCODER": "nominatimm"})


def test_provider_without_country_codes_gets_the_country_in_the_query(make_app, nominatim):
    """Photon has no country filter: the country goes into the text it searches."""
    app = make_app(**geocoding(nominatim, REFERRAL_GEOCODER="photon"))
    with app.app_context():
        session = app.extensions["referral"].ext.session
        with pytest.raises(LocationNotFound):
            locate(session, "1 Campbell Parade", "AU", app.config)
    [request] = nominatim.requests
    assert request["path"] == "/api" and request["params"]["q"] == "1 campbell parade, AU"


# --- issue 12: the remote geocoder asked sparingly, politely, and never for nonsense -----


@pytest.mark.parametrize(
    "typed", ["0000", "9998", "zz';--", "';--", "!!!", "Newtown", "Bondi Beach", "x" * 90]
)
def test_what_cannot_be_an_address_is_404_at_once_with_no_remote_call(geo_app, nominatim, typed):
    """A postcode-shaped string not in the list, text with no letter or digit, or a bare
    name the gazetteer does not hold (the sample has no Newtown) never leaves the building."""
    started = time.monotonic()
    response = geo_app.test_client().get(
        f"{PREFIX}/api/v1/practitioners", query_string={"postcode": typed}
    )
    assert time.monotonic() - started < 0.5
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "location_not_found"
    assert isinstance(error["suggestions"], list)
    assert nominatim.requests == []
    assert _cache_rows(geo_app) == []


def test_not_found_suggests_what_was_meant(geo_app, nominatim):
    body = geo_app.test_client().get(f"{PREFIX}/api/v1/practitioners?postcode=Parramata").get_json()
    assert body["error"]["suggestions"][0] == "Parramatta NSW 2150"
    assert "Parramata" in body["error"]["message"]
    page = geo_app.test_client().get(f"{PREFIX}/?postcode=Surry+Hils").get_data(as_text=True)
    assert "Did you mean" in page and "Surry Hills NSW 2010" in page
    assert nominatim.requests == []


def test_looks_like_address():
    from referral.geo.geocode import looks_like_address

    for text in ("12 Smith St, Newtown", "1 Campbell Parade", "Unit 3 Park Road", "5/12 King Way"):
        assert looks_like_address(text), text
    for text in ("Newtown", "Bondi Beach", "zz';--", "0000", "12", "x" * 90):
        assert not looks_like_address(text), text


def test_a_country_without_local_data_may_ask_the_geocoder(geo_app, nominatim):
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        with pytest.raises(LocationNotFound):
            locate(session, "Zermatt", "CH", geo_app.config)
    assert nominatim.queries() == ["zermatt"]


def test_one_request_a_second_for_the_whole_site_across_processes(
    make_app, nominatim, redis_limits
):
    """Two apps (two workers) sharing the Redis storage take turns: never two requests
    within a second, though each app made only one."""
    config = geocoding(nominatim, REFERRAL_GEOCODER_MIN_DELAY=1, REFERRAL_GEOCODER_TIMEOUT=10)
    apps = [make_app(**config, **redis_limits.config) for _ in range(2)]
    results: list[str] = []

    def search(app: Flask, text: str) -> None:
        with app.app_context():
            session = app.extensions["referral"].ext.session
            try:
                locate(session, text, "AU", app.config)
                results.append("found")
            except LocationNotFound:
                results.append("not found")

    threads = [
        threading.Thread(target=search, args=(app, f"{n} nowhere street"))
        for n, app in enumerate(apps * 2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = sorted(r["at"] for r in nominatim.requests)
    assert len(times) == 4 and results == ["not found"] * 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.9, gaps
    assert any("geocoder-slot" in k for k in redis_limits.stored_keys())


def test_busy_geocoder_says_try_a_postcode_instead_of_queueing_forever(make_app, nominatim):
    app = make_app(
        **geocoding(nominatim, REFERRAL_GEOCODER_MIN_DELAY=5, REFERRAL_GEOCODER_TIMEOUT=0.3)
    )
    with app.app_context():
        session = app.extensions["referral"].ext.session
        with pytest.raises(LocationNotFound):
            locate(session, "1 nowhere street", "AU", app.config)
        started = time.monotonic()
        with pytest.raises(LocationServiceUnavailable, match="busy"):
            locate(session, "2 nowhere street", "AU", app.config)
        assert time.monotonic() - started < 1
    assert len(nominatim.requests) == 1


def test_a_client_gets_only_its_share_of_remote_searches(make_app, nominatim):
    app = make_app(**geocoding(nominatim, REFERRAL_GEOCODER_CLIENT_RATE_LIMIT="2 per minute"))
    client = app.test_client()
    url = f"{PREFIX}/api/v1/practitioners"
    for n in range(2):
        assert client.get(url, query_string={"postcode": f"{n} nowhere street"}).status_code == 404
    limited = client.get(url, query_string={"postcode": "3 nowhere street"})
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "geocoder_rate_limited"
    assert limited.headers["Retry-After"]
    # postcode and suburb searches never count
    assert client.get(url, query_string={"postcode": "2000"}).status_code == 200
    assert len(nominatim.requests) == 2


def test_cache_is_bounded_and_purged(make_app, nominatim):
    app = make_app(**geocoding(nominatim, REFERRAL_GEOCODE_CACHE_MAX_ROWS=2))
    with app.app_context():
        session = app.extensions["referral"].ext.session
        for n in range(4):
            with pytest.raises(LocationNotFound):
                locate(session, f"{n} nowhere street", "AU", app.config)
    assert [r.query for r in _cache_rows(app)] == ["2 nowhere street", "3 nowhere street"]
    with app.app_context():  # misses expire after REFERRAL_GEOCODE_NOT_FOUND_DAYS
        session = app.extensions["referral"].ext.session
        for row in session.scalars(select(GeocodeCache)):
            row.created_at -= timedelta(days=2)
        session.commit()
    result = app.test_cli_runner().invoke(args=["referral", "purge", "--older-than", "30", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Removed 2 expired geocode cache entries." in result.output
    assert _cache_rows(app) == []


def test_geocoded_place_carries_the_openstreetmap_credit(geo_app, nominatim, add_practitioner):
    add_practitioner("Bea Bondi", (-33.8920, 151.2740))
    client = geo_app.test_client()
    body = client.get(f"{PREFIX}/api/v1/practitioners?postcode=1+Campbell+Parade").get_json()
    assert body["query"]["attribution"] == "© OpenStreetMap contributors"
    page = client.get(f"{PREFIX}/?postcode=1+Campbell+Parade").get_data(as_text=True)
    assert "© OpenStreetMap contributors" in page
    local = client.get(f"{PREFIX}/api/v1/practitioners?postcode=2000").get_json()
    assert "attribution" not in local["query"]


def test_typed_places_are_not_logged(geo_app, nominatim, caplog):
    # at INFO, as sites run; urllib3's own DEBUG lines name every URL it fetches
    caplog.set_level("INFO")
    with geo_app.app_context():
        session = geo_app.extensions["referral"].ext.session
        with pytest.raises(LocationServiceUnavailable):
            locate(session, "1 broken street", "AU", geo_app.config)
        with pytest.raises(LocationServiceUnavailable):
            locate(session, "1 garbled street", "AU", geo_app.config)
    assert caplog.records  # the failures are logged ...
    assert "broken" not in caplog.text and "garbled" not in caplog.text  # ... not the text


def test_placeholder_user_agent_is_refused_at_start_up(database_url):
    production = {
        "REFERRAL_DATABASE_URL": database_url,
        "SECRET_KEY": "0123456789abcdef" * 4,
        "REFERRAL_PUBLIC_URL": "https://clinic.example",
    }
    with pytest.raises(RuntimeError, match="REFERRAL_GEOCODER_USER_AGENT"):
        create_app(production)
    for fine in (
        {"REFERRAL_GEOCODER": None},
        {"REFERRAL_GEOCODER_USER_AGENT": "clinic.example directory (admin@clinic.example)"},
    ):
        app = create_app({**production, **fine})
        app.extensions["referral"].engine.dispose()

"""The search page's script (``static/referral/search.js``) in Debian's chromium.

"Use my location" and the place autocomplete are progressive enhancements: these tests
drive a real browser against the app served on 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser
PREFIX = "/find-a-therapist"


@pytest.fixture
def live_url(app, add_practitioner) -> Iterator[str]:
    add_practitioner("Nina Near", (-33.8700, 151.2100))
    add_practitioner("Milo Mid", (-33.8150, 151.0010), modalities=("physiotherapy",))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_use_my_location_fills_coordinates_and_searches(browser, live_url):
    context = browser.new_context(
        geolocation={"latitude": -33.8705, "longitude": 151.2095}, permissions=["geolocation"]
    )
    page = context.new_page()
    page.goto(f"{live_url}{PREFIX}/")
    button = page.get_by_role("button", name="Use my location")
    assert button.is_visible()
    with page.expect_navigation():
        button.click()
    args = parse_qs(urlsplit(page.url).query)
    # rounded to about 1 km in the browser: the URL (and any access log) holds no address
    assert args["lat"] == ["-33.87"] and args["lon"] == ["151.21"]
    assert "postcode" not in args
    heading = page.locator(".referral-results h2").inner_text()
    assert heading == "2 practitioners near your location"
    assert page.locator(".referral-card__name").all_inner_texts() == ["Nina Near", "Milo Mid"]

    # changing a filter keeps the location; typing a postcode replaces it
    page.get_by_text("Filters", exact=True).click()
    page.get_by_label("Physiotherapy").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Show results").click()
    assert page.locator(".referral-card__name").all_inner_texts() == ["Milo Mid"]
    assert parse_qs(urlsplit(page.url).query)["lat"] == ["-33.87"]
    page.fill("#referral-postcode", "3000")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    assert "lat" not in parse_qs(urlsplit(page.url).query)
    assert "No practitioners within" in page.locator(".referral-results h2").inner_text()
    context.close()


def test_permission_denied_says_type_a_postcode(browser, live_url):
    context = browser.new_context()  # no geolocation permission granted
    page = context.new_page()
    page.goto(f"{live_url}{PREFIX}/")
    page.get_by_role("button", name="Use my location").click()
    message = page.locator("[data-referral-locate-message]")
    message.filter(has_text="did not allow").wait_for()
    assert "Type your postcode or suburb instead" in message.inner_text()
    assert urlsplit(page.url).query == ""  # stayed on the form
    context.close()


def test_position_unavailable_says_so(browser, live_url):
    context = browser.new_context()
    # the device's own positioning failing: what the browser reports then
    context.add_init_script(
        "navigator.geolocation.getCurrentPosition = (ok, fail) => fail({code: 2});"
    )
    page = context.new_page()
    page.goto(f"{live_url}{PREFIX}/")
    page.get_by_role("button", name="Use my location").click()
    assert (
        "could not work out where you are"
        in page.locator("[data-referral-locate-message]").inner_text()
    )
    context.close()


def test_not_https_says_location_needs_a_secure_page(browser, live_url):
    port = urlsplit(live_url).port
    context = browser.new_context(permissions=["geolocation"])
    page = context.new_page()
    page.goto(f"http://clinic.test:{port}{PREFIX}/")  # plain http, not localhost
    assert page.evaluate("window.isSecureContext") is False
    page.get_by_role("button", name="Use my location").click()
    assert "secure (https) sites" in page.locator("[data-referral-locate-message]").inner_text()
    context.close()


def test_without_javascript_the_button_stays_hidden(browser, live_url):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_url}{PREFIX}/")
    assert page.locator("[data-referral-locate-button]").is_hidden()
    page.fill("#referral-postcode", "2000")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    assert page.locator(".referral-card__name").all_inner_texts() == ["Nina Near", "Milo Mid"]
    context.close()


def test_autocomplete_offers_places_from_our_own_table(browser, live_url):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_url}{PREFIX}/")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    # typed faster than the 200 ms debounce, whatever the machine's load: one input event
    # per key, all within one debounce window, so exactly one request may follow
    page.locator("#referral-postcode").evaluate(
        """el => { for (const text of ["s", "su", "sur", "surr"]) {
             el.value = text; el.dispatchEvent(new Event("input", {bubbles: true})); } }"""
    )
    options = page.locator("#referral-places option")
    options.first.wait_for(state="attached")
    assert options.evaluate_all("os => os.map(o => o.value)") == ["Surry Hills NSW 2010"]
    # debounced, and only ever our own API
    assert requests == [f"{live_url}{PREFIX}/api/v1/places?q=surr&country=AU"]
    page.fill("#referral-postcode", "Surry Hills NSW 2010")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    heading = page.locator(".referral-results h2").inner_text()
    assert heading.endswith("near Surry Hills NSW 2010")
    context.close()

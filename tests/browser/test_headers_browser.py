"""The Content-Security-Policy in a real browser: every script, style, tile and request the
plugin's pages make is allowed, and an inline script or ``style=`` attribute is refused.

Violations are collected by a ``securitypolicyviolation`` listener installed before any page
script runs (an init script, which the page's CSP does not govern) and from the console,
where chromium reports each refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, TILE, LiveServer

pytestmark = pytest.mark.browser

PREFIX = "/find-a-therapist"
SIZES = {"390x844": {"width": 390, "height": 844}, "1366x900": {"width": 1366, "height": 900}}

COLLECT = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = e.documentURI;
  window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} on ${where}`);
});
"""


def _tiles(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "image/png")])
    return [TILE]


def _violations(page: Any) -> list[str]:
    found: list[str] = []
    for frame in page.frames:
        found += frame.evaluate("() => window.__csp || []")
    return found


@pytest.fixture
def csp_page(new_page: Callable[..., Any]) -> tuple[Any, list[str]]:
    """A page that records every CSP refusal, with geolocation allowed for "use my location"."""
    page = new_page(
        geolocation={"latitude": -33.8705, "longitude": 151.2095}, permissions=["geolocation"]
    )
    page.context.add_init_script(COLLECT)
    console: list[str] = []
    page.on(
        "console",
        lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page, console


def test_the_plugin_pages_run_under_their_policy_without_a_violation(
    csp_page, demo_site, directory, serve: Callable[[Any], LiveServer]
):
    page, console = csp_page
    # tiles from another origin (localhost, not 127.0.0.1), as from a real tile server
    tiles = serve(_tiles).origin.replace("127.0.0.1", "localhost")
    site = demo_site(REFERRAL_MAP_TILE_URL=tiles + "/{z}/{x}/{y}.png")

    page.goto(site.url(f"{PREFIX}/"))
    page.locator("#referral-postcode").press_sequentially("surr", delay=40)
    page.locator("#referral-places option").first.wait_for(state="attached")  # connect-src
    with page.expect_navigation():
        page.get_by_role("button", name="Use my location").click()
    page.goto(site.url(f"{PREFIX}/?postcode=2000"))
    count = page.locator(".referral-card").count()
    page.get_by_role("link", name="Map", exact=True).click()
    page.locator(".leaflet-marker-icon").nth(count - 1).wait_for()
    page.locator(".leaflet-tile-loaded").first.wait_for()  # img-src: the tile origin
    page.wait_for_function(  # every marker image found and drawn (not a broken image)
        "() => [...document.querySelectorAll('img.leaflet-marker-icon')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.get_by_role("button", name="Nina Near").click()
    page.locator(".leaflet-popup-content a").wait_for()
    for name, size in SIZES.items():
        page.set_viewport_size(size)
        page.wait_for_timeout(400)  # the map refits after a resize
        page.screenshot(path=str(ARTIFACTS / f"csp-search-map-{name}.png"), full_page=True)
    assert _violations(page) == [] and console == []

    nina = directory["nina"].id
    for path in (f"/practitioners/{nina}", f"/practitioners/{nina}/referrals", "/embed/"):
        page.goto(site.url(PREFIX + path))
        page.wait_for_load_state("load")
        assert _violations(page) == [], path
    page.goto(site.url("/for-websites"))  # the embed snippet: a frame running embed-frame.js
    frame = page.frame_locator("iframe.referral-embed-frame")
    frame.locator("h1").first.wait_for()
    assert _violations(page) == [] and console == []

    # and the policy is really there: inline script and style attributes are refused
    page.goto(site.url(f"{PREFIX}/practitioners/{nina}"))
    ran = page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.__inlineRan = true";
            document.head.appendChild(script);
            document.body.setAttribute("style", "outline: 9px solid red");
            return window.__inlineRan === true;
        }"""
    )
    assert ran is False
    page.wait_for_function("() => window.__csp.length >= 2")
    refused = " | ".join(_violations(page))
    assert re.search(r"script-src-elem blocked inline", refused), refused
    assert re.search(r"style-src-attr blocked inline", refused), refused

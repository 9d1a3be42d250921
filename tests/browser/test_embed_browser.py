"""The one-line snippet on a clinic page served from another origin, in a real browser."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.browser

PREFIX = "/find-a-therapist"


def clinic_page(plugin_origin: str, attributes: str) -> Any:
    """A WSGI app standing in for a WordPress site: one page carrying the snippet."""
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Sunrise Wellness</title></head>"
        "<body style='margin:0;font-family:sans-serif'><main><h1>Sunrise Wellness</h1>"
        "<p>Find a therapist near you:</p>"
        f"<script src='{plugin_origin}{PREFIX}/embed.js' {attributes} async></script>"
        "<footer style='min-height:1500px'><p>Sunrise Wellness, 1 Beach Road</p></footer>"
        "</main></body></html>"
    ).encode()

    def app(environ: dict, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body]

    return app


def _frame_fits(page: Any) -> tuple[int, int]:
    frame_el = page.locator("iframe.referral-embed-frame")
    frame = frame_el.element_handle().content_frame()
    content = frame.evaluate("() => Math.ceil(document.body.getBoundingClientRect().height)")
    return round(frame_el.bounding_box()["height"]), content


def _wait_fit(page: Any) -> tuple[int, int]:
    page.wait_for_function(
        """() => {
            const f = document.querySelector('iframe.referral-embed-frame');
            return f && f.style.height !== '600px';
        }"""
    )
    return _frame_fits(page)


def test_snippet_on_another_origin_inserts_a_frame_that_fits(
    page, demo_site, serve, directory, audit
):
    # the clinic's site must exist first: the directory lists its origin
    holder: dict[str, str] = {}
    clinic = serve(lambda e, s: clinic_page(holder["origin"], 'data-postcode="2000"')(e, s))
    plugin = demo_site(REFERRAL_EMBED_ORIGINS=[clinic.origin])
    holder["origin"] = plugin.origin
    assert clinic.origin != plugin.origin

    page.goto(clinic.url("/"))
    frame_el = page.locator("iframe.referral-embed-frame")
    assert frame_el.get_attribute("title") == "Find a therapist"
    assert frame_el.get_attribute("src") == plugin.url(f"{PREFIX}/embed/?postcode=2000")
    frame = page.frame_locator("iframe.referral-embed-frame")
    frame.locator(".referral-card").first.wait_for()
    height, content = _wait_fit(page)
    assert height > 600 and abs(height - content) <= 2, (height, content)

    # the frame is the bare layout, with the same results as the full page
    assert frame.locator(".clinic-header").count() == 0
    names = frame.locator(".referral-card__name a").all_inner_texts()
    assert names[:2] == ["Nina Near", "Pete Physio"]
    audit(page, "embed-clinic-results")
    audit(page, "embed-frame-results", frame=page.frames[1])

    # following a result from the bottom of a long frame brings the new page's top into view
    frame.get_by_role("link", name="Milo Mid").scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, 400)")  # the frame's top is well above the fold
    assert (
        page.locator("iframe.referral-embed-frame").evaluate("f => f.getBoundingClientRect().top")
        < -200
    )
    frame.get_by_role("link", name="Milo Mid").click()
    frame.get_by_role("heading", level=1, name="Milo Mid").wait_for()
    page.wait_for_function(
        "() => Math.abs(document.querySelector('iframe.referral-embed-frame')"
        ".getBoundingClientRect().top) < 2"
    )
    page.frames[1].evaluate("() => history.back()")  # the frame's own history
    frame.locator(".referral-card").first.wait_for()

    # a search inside the frame stays inside it, and the frame shrinks to the new content
    frame.get_by_text("Filters", exact=True).click()
    frame.get_by_label("Osteopathy").check()
    frame.get_by_role("button", name="Show results").click()
    frame.locator(".referral-card").first.wait_for()
    page.wait_for_function(
        f"() => document.querySelector('iframe.referral-embed-frame').offsetHeight < {height}"
    )
    smaller, content = _frame_fits(page)
    assert smaller < height and abs(smaller - content) <= 2
    assert frame.locator(".referral-card__name a").all_inner_texts() == ["Olga Osteo"]

    # on to a listing, still framed, still fitted
    frame.get_by_role("link", name="Olga Osteo").click()
    frame.get_by_role("heading", level=1, name="Olga Osteo").wait_for()
    listing = rf"{PREFIX}/embed/practitioners/\d+\?back=\S*modality%3Dosteopathy"
    assert re.search(listing, page.frames[1].url)
    page.wait_for_timeout(300)
    height, content = _frame_fits(page)
    assert abs(height - content) <= 2
    audit(page, "embed-frame-practitioner", frame=page.frames[1])


def test_snippet_can_open_one_listing(page, demo_site, serve, directory, session):
    holder: dict[str, str] = {}
    pete = directory["pete"]
    clinic = serve(
        lambda e, s: clinic_page(holder["origin"], f'data-practitioner="{pete.id}"')(e, s)
    )
    pete.website = clinic.url("/pete-physio")
    session.commit()
    plugin = demo_site(REFERRAL_EMBED_ORIGINS=[clinic.origin])
    holder["origin"] = plugin.origin
    page.goto(clinic.url("/"))
    frame = page.frame_locator("iframe.referral-embed-frame")
    frame.get_by_role("heading", level=1, name="Pete Physio").wait_for()
    height, content = _wait_fit(page)
    assert abs(height - content) <= 2
    # the practitioner's own website opens in a new tab, not squeezed into the frame
    with page.expect_popup() as opened:
        frame.get_by_role("link", name="Website").click()
    assert opened.value.url == clinic.url("/pete-physio")
    assert page.frames[1].url.endswith(f"/embed/practitioners/{pete.id}")


def test_an_origin_not_listed_cannot_frame_the_plugin(page, demo_site, serve, directory):
    holder: dict[str, str] = {}
    stranger = serve(lambda e, s: clinic_page(holder["origin"], 'data-postcode="2000"')(e, s))
    plugin = demo_site(REFERRAL_EMBED_ORIGINS=["https://clinic.example"])
    holder["origin"] = plugin.origin
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
    page.goto(stranger.url("/"))
    frame_el = page.locator("iframe.referral-embed-frame")
    frame_el.wait_for()
    page.wait_for_timeout(1000)
    frame = frame_el.element_handle().content_frame()
    assert frame.locator(".referral-card").count() == 0  # the browser refused to show it
    assert frame_el.evaluate("f => f.style.height") == "600px"  # and nothing resized it
    assert blocked, "chromium should report the frame-ancestors refusal"


def test_demo_shows_a_working_snippet(page, demo_site, directory, audit):
    site = demo_site()
    page.goto(site.url("/for-websites"))
    code = page.locator("#snippet-code").inner_text()
    assert code.startswith(f'<script src="{site.origin}{PREFIX}/embed.js" data-postcode="2000"')
    page.frame_locator("iframe.referral-embed-frame").locator(".referral-card").first.wait_for()
    height, content = _wait_fit(page)  # same origin: 'self' is always allowed
    assert abs(height - content) <= 2
    audit(page, "demo-for-websites")


def test_a_refused_frame_becomes_a_plain_link_to_the_finder(page, demo_site, serve, directory):
    holder: dict[str, str] = {}
    attributes = 'data-postcode="2000" data-wait="1500"'
    stranger = serve(lambda e, s: clinic_page(holder["origin"], attributes)(e, s))
    plugin = demo_site(REFERRAL_EMBED_ORIGINS=["https://clinic.example"])
    holder["origin"] = plugin.origin
    page.goto(stranger.url("/"))
    link = page.locator(".referral-embed-fallback a")
    link.wait_for(timeout=8000)
    assert page.locator("iframe.referral-embed-frame").count() == 0  # no broken box
    assert link.get_attribute("href") == f"{plugin.origin}{PREFIX}/?postcode=2000"
    link.click()
    page.get_by_role("heading", level=1).first.wait_for()
    assert page.url.startswith(f"{plugin.origin}{PREFIX}/")


def test_a_frame_that_loads_keeps_no_fallback(page, demo_site, serve, directory):
    holder: dict[str, str] = {}
    attributes = 'data-postcode="2000" data-wait="1500"'
    clinic = serve(lambda e, s: clinic_page(holder["origin"], attributes)(e, s))
    plugin = demo_site(REFERRAL_EMBED_ORIGINS=[clinic.origin])
    holder["origin"] = plugin.origin
    page.goto(clinic.url("/"))
    frame = page.frame_locator("iframe.referral-embed-frame")
    frame.locator(".referral-card").first.wait_for()
    page.wait_for_timeout(2500)  # past data-wait: the frame said it loaded, so it stays
    assert page.locator("iframe.referral-embed-frame").count() == 1
    assert page.locator(".referral-embed-fallback").count() == 0

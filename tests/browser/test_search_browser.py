"""A patient in a real browser: search by postcode, filter, list/map, keyboard only.

Later features add their browser tests beside this module (referral sending, "use my
location", the other filters), using the same fixtures from ``tests/browser/conftest.py``.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

PREFIX = "/find-a-therapist"


def _names(page) -> list[str]:
    return page.locator(".referral-list .referral-card__name a").all_inner_texts()


def test_search_by_postcode_lists_nearest_first(page, demo_site, directory, audit):
    site = demo_site()
    page.goto(site.url(f"{PREFIX}/"))
    audit(page, "search-form")
    page.get_by_label("Postcode or suburb").fill("2000")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"postcode=2000"))
    assert _names(page) == ["Nina Near", "Pete Physio", "Yara Yoga", "Olga Osteo", "Milo Mid"]
    assert page.get_by_role("heading", level=2).inner_text().startswith("5 practitioners near")
    first = page.locator(".referral-card__distance strong").first.inner_text()
    assert re.fullmatch(r"0\.\d km", first)
    audit(page, "search-results")


def test_modality_filter_narrows_the_results(page, demo_site, directory, audit):
    site = demo_site()
    page.goto(site.url(f"{PREFIX}/"))
    page.get_by_label("Postcode or suburb").fill("2000")
    page.get_by_label("Physiotherapy").check()
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"modality=physiotherapy"))
    assert _names(page) == ["Pete Physio", "Milo Mid"]
    # the choice survives the round trip, so the visitor can refine it
    assert page.get_by_label("Physiotherapy").is_checked()
    assert not page.get_by_label("Osteopathy").is_checked()
    audit(page, "search-filtered")


def test_unknown_postcode_is_explained(page, demo_site, directory, audit):
    site = demo_site()
    page.goto(site.url(f"{PREFIX}/?postcode=9999"))
    assert "could not find the postcode or suburb" in page.get_by_role("alert").inner_text()
    assert _names(page) == []
    audit(page, "search-not-found")


def test_map_view_shows_a_marker_per_result(page, demo_site, directory, audit):
    site = demo_site()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(site.url(f"{PREFIX}/?postcode=2000"))
    map_button = page.get_by_role("button", name="Map")
    assert map_button.get_attribute("aria-pressed") == "false"
    assert not any("leaflet" in url for url in requests)  # loaded only when asked for
    count = page.locator(".referral-card").count()
    map_button.click()
    page.locator(".leaflet-marker-icon").nth(count - 1).wait_for()
    assert page.locator(".leaflet-marker-icon").count() == count
    assert map_button.get_attribute("aria-pressed") == "true"
    assert page.locator(".referral-list").is_hidden()
    assert "OpenStreetMap" in page.locator(".leaflet-control-attribution").inner_text()
    assert any("/test-tiles/" in url for url in requests)  # tiles from the configured URL
    # turned to a phone, the map fits every result into the smaller view again
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(400)
    inside = page.evaluate(
        """() => {
            const box = document.getElementById('referral-map').getBoundingClientRect();
            return Array.from(document.querySelectorAll('.leaflet-marker-icon')).every(m => {
                const r = m.getBoundingClientRect();
                return r.left >= box.left && r.right <= box.right
                    && r.top >= box.top && r.bottom <= box.bottom;
            });
        }"""
    )
    assert inside
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_timeout(400)
    page.get_by_role("button", name="Nina Near").click()  # a marker, named for screen readers
    popup = page.locator(".leaflet-popup-content a")
    assert popup.inner_text() == "Nina Near"
    href = popup.get_attribute("href")
    assert href.endswith(f"/practitioners/{directory['nina'].id}?back=postcode%3D2000")
    audit(page, "search-map")
    page.get_by_role("button", name="List").click()
    assert page.locator(".referral-list").is_visible()
    assert page.locator("#referral-map").is_hidden()


def test_results_are_a_plain_list_without_javascript(new_page, demo_site, directory, audit):
    site = demo_site()
    page = new_page(java_script_enabled=False)
    page.goto(site.url(f"{PREFIX}/?postcode=2000"))
    assert len(_names(page)) == 5
    assert page.get_by_role("button", name="Map").count() == 0
    assert page.locator("#referral-map").is_hidden()


def test_keyboard_only_from_search_to_a_practitioner(page, demo_site, directory, audit):
    site = demo_site()
    page.goto(site.url(f"{PREFIX}/"))

    def tab_to(predicate: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"() => {{ const e = document.activeElement; return {predicate}; }}"):
                return
        raise AssertionError(f"Tab never reached {predicate}")

    tab_to("e.id === 'referral-postcode'")
    page.keyboard.type("2000")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"postcode=2000"))
    tab_to("e.matches('.referral-card__name a')")
    assert page.evaluate("() => document.activeElement.textContent") == "Nina Near"
    # the focused link is visibly marked (WCAG 2.4.7)
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    page.wait_for_url(
        re.compile(rf"/practitioners/{directory['nina'].id}\?back=\S*postcode%3D2000")
    )
    assert page.get_by_role("heading", level=1).inner_text() == "Nina Near"
    audit(page, "practitioner")


def test_demo_pages_are_accessible(page, demo_site, directory, audit):
    site = demo_site()
    page.goto(site.url("/"))
    audit(page, "demo-home")
    page.goto(site.url(f"{PREFIX}/?postcode=4000&radius_km=5"))
    assert "No practitioners within 5.0 km" in page.content()
    audit(page, "search-nearest-beyond")


def test_back_to_search_keeps_the_search(page, demo_site, directory):
    site = demo_site()
    page.goto(site.url(f"{PREFIX}/?postcode=2000&modality=physiotherapy&radius_km=50"))
    assert _names(page) == ["Pete Physio", "Milo Mid"]
    page.get_by_role("link", name="Milo Mid").click()
    page.get_by_role("heading", level=1, name="Milo Mid").wait_for()
    page.get_by_role("link", name="← Back to search").click()
    page.wait_for_url(re.compile(r"/\?postcode=2000&modality=physiotherapy&radius_km=50$"))
    assert _names(page) == ["Pete Physio", "Milo Mid"]
    assert page.get_by_label("Physiotherapy").is_checked()

"""A patient in a real browser: search by postcode, filter, list/map, keyboard only.

Later features add their browser tests beside this module (referral sending, "use my
location", the other filters), using the same fixtures from ``tests/browser/conftest.py``.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

PREFIX = "/find-a-therapist"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


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
    page.get_by_text("Filters", exact=True).click()  # folded until asked for
    page.get_by_label("Physiotherapy").check()
    page.get_by_role("button", name="Show results").click()
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


def _markers(page) -> int:
    page.locator("#referral-map[data-complete]").wait_for(state="attached")
    return page.locator(".leaflet-marker-icon").count()


def test_map_view_shows_a_marker_per_result(page, demo_site, directory, audit):
    site = demo_site()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_viewport_size(PHONE)
    page.goto(site.url(f"{PREFIX}/?postcode=2000"))
    map_link = page.get_by_role("link", name="Map", exact=True)
    assert map_link.get_attribute("aria-current") is None
    assert page.get_by_role("link", name="List", exact=True).get_attribute("aria-current") == "true"
    assert not any("leaflet" in url for url in requests)  # on a phone: loaded only when asked
    count = page.locator(".referral-card").count()
    map_link.click()
    page.wait_for_url(re.compile(r"view=map"))
    assert _markers(page) == count
    assert page.get_by_role("link", name="Map", exact=True).get_attribute("aria-current") == "true"
    assert page.locator(".referral-list").is_hidden()  # a phone: the map instead of the list
    assert "OpenStreetMap" in page.locator(".leaflet-control-attribution").inner_text()
    assert any("/test-tiles/" in url for url in requests)  # tiles from the configured URL
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
    # a marker, named for screen readers, opened by keyboard (on a phone they overlap)
    page.get_by_role("button", name="Nina Near").focus()
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup-content a")
    assert popup.inner_text() == "Nina Near"
    href = popup.get_attribute("href")
    assert href.endswith(f"/practitioners/{directory['nina'].id}?back=postcode%3D2000%26view%3Dmap")
    audit(page, "search-map")
    page.get_by_role("link", name="List", exact=True).click()
    page.wait_for_url(re.compile(r"view=list"))
    assert page.locator(".referral-list").is_visible()
    assert page.locator("#referral-map").is_hidden()


def test_results_are_a_plain_list_without_javascript(new_page, demo_site, directory, audit):
    site = demo_site()
    page = new_page(java_script_enabled=False)
    page.goto(site.url(f"{PREFIX}/?postcode=2000"))
    assert len(_names(page)) == 5
    assert page.get_by_role("link", name="Map", exact=True).count() == 0
    assert page.locator("#referral-map").is_hidden()
    # the folded filters open without JavaScript: a native <details>
    assert page.get_by_label("Physiotherapy").is_hidden()
    page.get_by_text("Filters", exact=True).click()
    assert page.get_by_label("Physiotherapy").is_visible()


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


@pytest.fixture
def many(add_practitioner, session):
    """Practitioners of every kind around Sydney, some treating low back pain."""
    from sqlalchemy import select

    from referral.models import HealthFund, PractitionerFund

    bupa = session.scalar(select(HealthFund).where(HealthFund.slug == "bupa"))
    made = {
        "rita": add_practitioner(
            "Rita Remedial",
            (-33.8700, 151.2100),
            conditions=("low-back-pain",),
            business_name="Harbour Hands",
            languages=["Greek", "English"],
            funds=[PractitionerFund(fund=bupa)],
            telehealth=True,
        ),
        "paul": add_practitioner(
            "Paul Physio",
            (-33.8800, 151.2000),
            modalities=("physiotherapy",),
            conditions=("low-back-pain",),
            accepting_new_patients=False,
        ),
        "olly": add_practitioner(
            "Olly Osteo",
            (-33.8900, 151.1900),
            modalities=("osteopathy",),
            conditions=("low-back-pain",),
            home_visits=True,
        ),
        "yoko": add_practitioner(
            "Yoko Yoga", (-33.8500, 151.2300), modalities=("yoga",), conditions=("low-back-pain",)
        ),
    }
    made["paul"].locations[0].opening_hours = {
        d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
    }
    session.commit()
    for n in range(26):  # more than a page of 20, for the map
        made[f"extra{n}"] = add_practitioner(
            f"Extra {n:02d}", (-33.80 - n * 0.004, 151.10 + n * 0.003), modalities=("yoga",)
        )
    return made


def _top(page, selector: str) -> float:
    return page.locator(selector).first.bounding_box()["y"]


def test_on_a_phone_the_results_come_first(page, demo_site, many, audit):
    site = demo_site()
    page.set_viewport_size(PHONE)
    page.goto(site.url(f"{PREFIX}/"))
    page.get_by_label("Postcode or suburb").fill("2000")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"postcode=2000"))
    assert page.evaluate("() => window.scrollY") == 0
    # the count and the whole first card are on screen without scrolling
    assert page.locator(".referral-results h2").first.bounding_box()["y"] < PHONE["height"]
    first = page.locator(".referral-card").first.bounding_box()
    assert first["y"] + first["height"] <= PHONE["height"], first
    assert page.get_by_label("Physiotherapy").is_hidden()  # folded into "Filters"
    # what the patient sees before scrolling, as well as the whole page
    page.screenshot(path="test-artifacts/screenshots/search-phone-above-the-fold.png")
    audit(page, "search-phone-results")


def test_filters_show_their_count_and_chips_remove_one(page, demo_site, many, audit):
    site = demo_site()
    page.set_viewport_size(PHONE)
    page.goto(site.url(f"{PREFIX}/?postcode=2000&modality=physiotherapy&modality=osteopathy"))
    summary = page.locator("summary", has_text="Filters")
    assert summary.inner_text() == "Filters (2)"
    assert _names(page) == ["Paul Physio", "Olly Osteo"]
    chips = page.get_by_role("list", name="Showing only:").get_by_role("link")
    assert chips.count() == 2
    assert chips.nth(0).get_attribute("href").endswith("?postcode=2000&modality=osteopathy")
    assert page.get_by_role("link", name="Remove filter: Osteopathy").count() == 1
    # by keyboard: the summary opens the folded filters
    summary.focus()
    page.keyboard.press("Enter")
    assert page.get_by_label("Physiotherapy").is_visible()
    assert page.get_by_label("Physiotherapy").is_checked()
    page.screenshot(path="test-artifacts/screenshots/search-filters-open-phone.png", full_page=True)
    page.keyboard.press("Enter")
    assert page.get_by_label("Physiotherapy").is_hidden()
    audit(page, "search-chips")
    page.get_by_role("link", name="Remove filter: Physiotherapy").click()
    page.wait_for_url(re.compile(r"\?postcode=2000&modality=osteopathy$"))
    assert _names(page) == ["Olly Osteo"]
    assert page.locator("summary", has_text="Filters").inner_text() == "Filters (1)"
    page.get_by_role("link", name="Remove filter: Osteopathy").click()
    page.wait_for_url(re.compile(r"\?postcode=2000$"))
    assert page.locator("summary", has_text="Filters").inner_text() == "Filters"
    assert page.locator(".referral-chip").count() == 0


def test_desktop_shows_the_list_with_every_result_on_the_map(page, demo_site, many, audit):
    site = demo_site()
    api: list[str] = []
    page.on("request", lambda r: api.append(r.url) if "/api/v1/practitioners" in r.url else None)
    page.set_viewport_size(DESKTOP)
    page.goto(site.url(f"{PREFIX}/?postcode=2000"))
    assert page.locator(".referral-card").count() == 20  # a page of the 30
    assert page.locator(".referral-results h2").first.inner_text() == (
        "30 practitioners near Sydney NSW 2000"
    )
    assert _markers(page) == 30  # every result of the search, not just this page's
    assert any("per_page=100" in url for url in api)
    listing = page.locator(".referral-results__list").bounding_box()
    shown = page.locator("#referral-map").bounding_box()
    assert shown["x"] >= listing["x"] + listing["width"]  # beside the list, not instead
    assert shown["y"] < DESKTOP["height"] and shown["height"] > 400
    assert page.get_by_role("link", name="Map", exact=True).get_attribute("aria-current") == "true"
    assert "The map shows 30 practitioners" in page.get_by_role("status").last.inner_text()
    page.screenshot(path="test-artifacts/screenshots/search-desktop-list-and-map.png")
    audit(page, "search-desktop")
    # "List" is the list alone, full width
    page.get_by_role("link", name="List", exact=True).click()
    page.wait_for_url(re.compile(r"view=list"))
    assert page.locator("#referral-map").is_hidden()


def test_the_view_survives_reload_and_back(page, demo_site, many):
    site = demo_site()
    page.set_viewport_size(PHONE)
    page.goto(site.url(f"{PREFIX}/?postcode=2000&condition=low-back-pain"))
    page.get_by_role("link", name="Map", exact=True).click()
    page.wait_for_url(re.compile(r"view=map"))
    assert page.locator("#referral-map").is_visible()
    page.locator("#referral-map[data-complete]").wait_for(state="attached")
    page.screenshot(path="test-artifacts/screenshots/search-phone-map.png")
    page.reload()
    assert page.locator("#referral-map").is_visible()
    assert page.locator(".referral-list").is_hidden()
    assert _markers(page) == 4
    page.get_by_role("button", name="Olly Osteo").focus()
    page.keyboard.press("Enter")
    page.locator(".leaflet-popup-content a").click()
    page.get_by_role("heading", level=1, name="Olly Osteo").wait_for()
    page.go_back()
    page.wait_for_url(re.compile(r"view=map"))
    assert page.locator("#referral-map").is_visible()
    page.go_forward()
    page.get_by_role("link", name="← Back to search").click()
    page.wait_for_url(re.compile(r"condition=low-back-pain&view=map$"))
    assert page.locator("#referral-map").is_visible()
    # applying a filter keeps the view too
    page.get_by_text("Filters", exact=True).click()
    page.get_by_label("Accept new patients").check()
    page.get_by_role("button", name="Show results").click()
    page.wait_for_url(re.compile(r"accepting=1"))
    assert "view=map" in page.url and page.locator("#referral-map").is_visible()


def test_condition_alone_finds_every_kind_of_practitioner(page, demo_site, many, audit):
    site = demo_site()
    page.set_viewport_size(PHONE)
    page.goto(site.url(f"{PREFIX}/"))
    # the second question, beside the place, before any filter
    order = page.evaluate(
        "() => Array.from(document.querySelectorAll('.referral-search input:not([type=hidden]),"
        " .referral-search select')).map(e => e.name).slice(0, 2)"
    )
    assert order == ["postcode", "condition"]
    page.get_by_label("Postcode or suburb").fill("2000")
    page.get_by_label("What's bothering you?").select_option(label="Low back pain")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"condition=low-back-pain"))
    assert _names(page) == ["Rita Remedial", "Paul Physio", "Yoko Yoga", "Olly Osteo"]
    kinds = page.locator(".referral-card__modalities").all_inner_texts()
    assert len(set(kinds)) == 4  # massage, physiotherapy, osteopathy and yoga together
    assert page.title().startswith("Low back pain near Sydney NSW 2000")
    # modality stays a filter
    page.get_by_text("Filters", exact=True).click()
    page.get_by_label("Osteopathy").check()
    page.get_by_role("button", name="Show results").click()
    page.wait_for_url(re.compile(r"modality=osteopathy"))
    assert _names(page) == ["Olly Osteo"]
    assert page.title().startswith("Osteopathy for low back pain near Sydney NSW 2000")
    audit(page, "search-condition")


def test_cards_and_listing_say_who_is_taking_new_patients(page, demo_site, many, audit):
    site = demo_site()
    page.set_viewport_size(PHONE)
    page.goto(site.url(f"{PREFIX}/?postcode=2000&condition=low-back-pain"))
    rita = page.locator(".referral-card", has_text="Rita Remedial")
    for fact in ("Harbour Hands", "Accepting new patients", "Telehealth", "Bupa", "Greek"):
        assert fact in rita.inner_text()
    paul = page.locator(".referral-card", has_text="Paul Physio")
    assert "Existing patients only" in paul.inner_text()
    paul.get_by_role("link", name="Paul Physio").click()
    page.get_by_role("heading", level=1, name="Paul Physio").wait_for()
    assert page.title().startswith("Paul Physio")
    assert "Existing patients only" in page.locator(".referral-capacity").inner_text()
    note = page.locator("#referral-capacity-note")
    assert "is not taking new patients at the moment" in note.inner_text()
    assert "Monday to Friday" in page.locator(".referral-hours").inner_text()
    page.locator("#referral-capacity-note").scroll_into_view_if_needed()
    page.screenshot(path="test-artifacts/screenshots/practitioner-not-accepting-note-phone.png")
    audit(page, "practitioner-not-accepting")
    note.get_by_role("link").click()
    page.wait_for_url(re.compile(r"condition=low-back-pain&accepting=1$"))
    assert "Paul Physio" not in _names(page)

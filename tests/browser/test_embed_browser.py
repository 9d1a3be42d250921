"""The one-line snippet on a clinic page served from another origin, in a real browser."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

PREFIX = "/find-a-therapist"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}


def clinic_page(plugin_origin: str, attributes: str, link: str = "") -> Any:
    """A WSGI app standing in for a WordPress site: one page carrying the snippet (``link``:
    the snippet's own link to the finder, before the script, as ``/for-websites`` gives it)."""
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Sunrise Wellness</title></head>"
        "<body style='margin:0;font-family:sans-serif'><main><h1>Sunrise Wellness</h1>"
        "<p>Find a therapist near you:</p>"
        f"{link}<script src='{plugin_origin}{PREFIX}/embed.js' {attributes} async></script>"
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


def test_demo_shows_a_working_snippet(page, demo_site, directory, audit):
    site = demo_site()
    page.goto(site.url("/for-websites"))
    code = page.locator("#snippet-code").input_value()
    assert code.startswith(
        f'<a class="referral-embed-link" href="{site.origin}{PREFIX}/?postcode=2000">'
        f'Find a therapist near you</a><script src="{site.origin}{PREFIX}/embed.js" '
        'data-postcode="2000"'
    )
    page.frame_locator("iframe.referral-embed-frame").locator(".referral-card").first.wait_for()
    height, content = _wait_fit(page)  # same origin: 'self' is always allowed
    assert abs(height - content) <= 2
    audit(page, "demo-for-websites")


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


def _shoot(page: Any, name: str) -> None:
    """Screenshots at a phone's and a desktop's size, kept as test artefacts."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        page.wait_for_timeout(300)
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(size)


def _sign_in(page: Any, site: Any, email: str) -> None:
    page.goto(site.url(f"{PREFIX}/account/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def _no_frame_seen(page: Any) -> None:
    """Poll while the page settles: an embed frame, if there is one, is never visible."""
    for _ in range(12):
        frames = page.locator("iframe.referral-embed-frame")
        assert frames.count() == 0 or not frames.first.is_visible()
        page.wait_for_timeout(100)


def test_a_clinic_not_yet_allowed_gets_a_link_until_an_admin_adds_it(
    new_page, demo_site, serve, directory, make_account, audit
):
    # a real second origin: the clinic's own site, another server on another port
    holder: dict[str, str] = {}
    clinic = serve(lambda e, s: clinic_page(holder["origin"], 'data-postcode="2000"')(e, s))
    plugin = demo_site()
    holder["origin"] = plugin.origin
    assert clinic.origin != plugin.origin
    make_account("ada@admin.example", admin=True, listing=False)

    visitor = new_page()
    refusals: list[str] = []
    visitor.on(
        "console", lambda m: refusals.append(m.text) if "frame-ancestors" in m.text else None
    )
    visitor.goto(clinic.url("/"))
    _no_frame_seen(visitor)  # loading: the frame is there but hidden
    link = visitor.locator(".referral-embed-fallback a")
    link.wait_for(timeout=5000)  # soon after the refused frame's load, well before data-wait
    assert refusals, "chromium reports the frame-ancestors refusal, which fires no error event"
    assert visitor.locator("iframe.referral-embed-frame").count() == 0  # no broken box
    assert visitor.locator(".referral-embed-loading").count() == 0
    note = visitor.locator(".referral-embed-fallback").inner_text()
    assert note == f"Find a therapist (opens on {plugin.origin[len('http://') :]})"
    assert link.get_attribute("href") == plugin.url(f"{PREFIX}/?postcode=2000")
    _shoot(visitor, "embed-not-allowed-fallback")

    # the operator allows the clinic's website on the admin page
    admin = new_page()
    _sign_in(admin, plugin, "ada@admin.example")
    admin.get_by_role("navigation", name="Your account").get_by_role(
        "link", name="Websites that embed the finder"
    ).click()
    admin.get_by_role("heading", level=1, name="Websites that embed the finder").wait_for()
    admin.get_by_label("Website address").fill(clinic.url("/contact"))
    admin.get_by_role("button", name="Allow this website").click()
    summary = admin.locator(".referral-error-summary")
    summary.wait_for()
    assert "without a page" in summary.inner_text()
    admin.wait_for_function("() => document.activeElement.matches('.referral-error-summary')")
    assert admin.title().startswith("Error: ")
    audit(admin, "admin-embeds-error")
    summary.get_by_role("link").click()  # the summary's link leads to the field
    assert admin.evaluate("() => document.activeElement.id") == "referral-origin"
    admin.get_by_label("Website address").fill(clinic.origin)
    admin.get_by_label("Whose website (optional)").fill("Sunrise Wellness")
    admin.get_by_role("button", name="Allow this website").click()
    admin.get_by_text(f"{clinic.origin} can now show the finder").wait_for()
    row = admin.locator("table.referral-table tbody tr").first
    assert row.locator("td").nth(0).inner_text() == clinic.origin
    assert row.locator("td").nth(1).inner_text() == "Sunrise Wellness"
    audit(admin, "admin-embeds")
    _shoot(admin, "admin-embeds")  # the desktop one at 1366x900

    # the clinic's page, reloaded, shows the finder, sized to its content
    refusals.clear()
    visitor.reload()
    frame = visitor.frame_locator("iframe.referral-embed-frame")
    frame.locator(".referral-card").first.wait_for()
    height, content = _wait_fit(visitor)
    assert height > 600 and abs(height - content) <= 2, (height, content)
    assert visitor.locator("iframe.referral-embed-frame").is_visible()
    assert visitor.locator(".referral-embed-fallback").count() == 0
    assert visitor.locator(".referral-embed-loading").count() == 0
    assert refusals == []
    _shoot(visitor, "embed-allowed")

    # removed again: the next visitor gets the link again
    admin.get_by_role("button", name=f"Remove {clinic.origin}").click()
    admin.get_by_text(f"{clinic.origin} can no longer show the finder").wait_for()
    visitor.reload()
    visitor.locator(".referral-embed-fallback a").wait_for(timeout=5000)
    assert visitor.locator("iframe.referral-embed-frame").count() == 0


def test_a_frame_whose_page_fails_becomes_a_link(page, serve):
    """The finder's server answers the frame with an error page (a proxy's 502): that page
    never reports, so the visitor gets the link, not the error in a box."""
    holder: dict[str, str] = {}
    embed_js = (ROOT / "referral" / "static" / "referral" / "embed.js").read_bytes()

    def site(environ: dict, start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == f"{PREFIX}/embed.js":
            start_response("200 OK", [("Content-Type", "text/javascript")])
            return [embed_js]
        if path.startswith(f"{PREFIX}/embed"):
            start_response("502 Bad Gateway", [("Content-Type", "text/html")])
            return [b"<h1>502 Bad Gateway</h1>"]
        return clinic_page(holder["origin"], 'data-postcode="2000"')(environ, start_response)

    server = serve(site)
    holder["origin"] = server.origin
    page.goto(server.url("/"))
    _no_frame_seen(page)
    link = page.locator(".referral-embed-fallback a")
    link.wait_for(timeout=5000)
    assert page.locator("iframe.referral-embed-frame").count() == 0
    assert link.get_attribute("href") == server.url(f"{PREFIX}/?postcode=2000")


def _accent_of(frame: Any) -> str:
    return frame.evaluate(
        "() => getComputedStyle(document.querySelector('.referral-button')).backgroundColor"
    )


def test_the_snippet_page_changes_the_snippet_live_and_copies_it(
    new_page, demo_site, directory, add_practitioner, audit
):
    add_practitioner(
        "Sam Sciatica",
        (-33.8710, 151.2110),
        modalities=("physiotherapy",),
        conditions=("sciatica",),
    )
    site = demo_site()
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto(site.url("/for-websites"))
    snippet = page.locator("#snippet-code")
    first = snippet.input_value()
    assert f'<script src="{site.origin}{PREFIX}/embed.js" data-postcode="2000"' in first
    page.frame_locator("iframe.referral-embed-frame").locator(".referral-card").first.wait_for()
    audit(page, "for-websites")
    _shoot(page, "for-websites")  # the desktop one at 1366x900

    # every option changes the snippet, the script-free frame and the preview at once
    page.get_by_label("Start with a condition (optional)").select_option(label="Sciatica")
    page.get_by_label("Start with one kind of practitioner (optional)").select_option(
        label="Physiotherapy"
    )
    page.get_by_label("Accent colour for buttons and links (optional)").fill("#6B2D5C")
    page.get_by_label("Hide the finder's heading (your page has its own)").check()
    page.wait_for_function(
        "() => document.getElementById('snippet-code').value.includes('data-hide-heading')"
    )
    page.wait_for_function(
        "() => document.getElementById('snippet-code').value.includes('data-accent')"
    )
    code = snippet.input_value()
    assert code == (
        f'<a class="referral-embed-link" href="{site.origin}{PREFIX}/?postcode=2000'
        '&amp;condition=sciatica&amp;modality=physiotherapy">Find a therapist near you</a>'
        f'<script src="{site.origin}{PREFIX}/embed.js" data-postcode="2000" '
        'data-condition="sciatica" data-modality="physiotherapy" data-accent="#6b2d5c" '
        'data-hide-heading="true" data-title="Find a therapist near you" async></script>'
    )
    frame_code = page.locator("#snippet-frame").input_value()
    assert f"{PREFIX}/embed-6b2d5c-plain/?postcode=2000&condition=sciatica" in frame_code
    assert "accent=%236b2d5c" in page.url.lower() and "hide_heading=1" in page.url  # for reload

    # the preview honours them: the accent, the starting filters, the heading hidden
    element = page.locator("iframe.referral-embed-frame")
    element.wait_for()
    page.wait_for_function(
        "() => document.querySelector('iframe.referral-embed-frame').src.includes('embed-6b2d5c')"
    )
    frame = page.frame_locator("iframe.referral-embed-frame")
    frame.locator(".referral-card").first.wait_for()
    inner = element.element_handle().content_frame()
    assert _accent_of(inner) == "rgb(107, 45, 92)"
    heading = inner.locator("h1").first
    assert heading.bounding_box()["height"] <= 1  # hidden from sight, kept for screen readers
    assert heading.inner_text() != ""
    assert frame.get_by_label("Physiotherapy").is_checked()
    # the frame starts filtered: the physiotherapist who treats sciatica, only
    assert frame.locator(".referral-card__name a").all_inner_texts() == ["Sam Sciatica"]
    # after a click inside the frame the colour stays: it rides in the frame's address
    frame.locator(".referral-card__name a").first.click()
    frame.get_by_role("heading", level=1, name="Sam Sciatica").wait_for()
    assert _accent_of(page.frames[1]) == "rgb(107, 45, 92)"
    assert page.frames[1].locator("h1").first.bounding_box()["height"] > 1  # a name shows

    # a bad colour is named, and left out of the snippet
    page.get_by_label("Accent colour for buttons and links (optional)").fill("red;}body{x")
    page.get_by_label("Accent colour for buttons and links (optional)").press("Enter")
    page.locator("#referral-embed-accent-error").wait_for()
    page.wait_for_function(
        "() => !document.getElementById('snippet-code').value.includes('data-accent')"
    )

    # the copy button copies it and says so
    page.get_by_role("button", name="Copy the snippet").click()
    page.get_by_text("Copied", exact=True).wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == snippet.input_value()
    audit(page, "for-websites-options")
    _shoot(page, "for-websites-options")  # the desktop one at 1366x900


def test_the_snippet_page_works_without_script(new_page, demo_site, directory, session):
    site = demo_site()
    page = new_page(java_script_enabled=False)
    page.goto(site.url("/for-websites"))
    assert not page.get_by_role("button", name="Copy the snippet").is_visible()
    snippet = page.locator("#snippet-code")
    assert snippet.get_attribute("readonly") is not None
    page.get_by_label("Start with one kind of practitioner (optional)").select_option(label="Yoga")
    page.get_by_label("Accent colour for buttons and links (optional)").fill("#abc")
    page.get_by_role("button", name="Update the snippet").click()
    page.wait_for_load_state()
    assert 'data-modality="yoga" data-accent="#aabbcc"' in snippet.input_value()
    # and a website's address can be checked without script too
    page.get_by_label("Is my website allowed yet? Its address:").fill("https://sunrise.example")
    page.get_by_role("button", name="Check").click()
    page.get_by_text("Not yet: https://sunrise.example is not on the list.").wait_for()
    assert 'data-modality="yoga"' in page.locator("#snippet-code").input_value()  # kept


def test_the_snippet_ignores_a_bad_colour_and_keeps_the_others(page, demo_site, serve, directory):
    holder: dict[str, str] = {}
    attributes = 'data-postcode="2000" data-accent="red;}body{display:none" data-hide-heading="yes"'
    clinic = serve(lambda e, s: clinic_page(holder["origin"], attributes)(e, s))
    plugin = demo_site(REFERRAL_EMBED_ORIGINS=[clinic.origin])
    holder["origin"] = plugin.origin
    page.goto(clinic.url("/"))
    frame_el = page.locator("iframe.referral-embed-frame")
    assert frame_el.get_attribute("src") == plugin.url(f"{PREFIX}/embed-plain/?postcode=2000")
    page.frame_locator("iframe.referral-embed-frame").locator(".referral-card").first.wait_for()
    inner = frame_el.element_handle().content_frame()
    assert _accent_of(inner) == "rgb(11, 92, 107)"  # the usual colour
    assert inner.locator("h1").first.bounding_box()["height"] <= 1


def test_the_snippets_own_link_gives_way_to_the_frame_or_stays(page, demo_site, serve, directory):
    holder: dict[str, str] = {}

    def link() -> str:
        return f"<a class='referral-embed-link' href='{holder['origin']}{PREFIX}/'>Find one</a>"

    clinic = serve(lambda e, s: clinic_page(holder["origin"], "", link())(e, s))
    plugin = demo_site(REFERRAL_EMBED_ORIGINS=[clinic.origin])
    holder["origin"] = plugin.origin
    page.goto(clinic.url("/"))
    page.frame_locator("iframe.referral-embed-frame").locator("h1").first.wait_for()
    assert page.locator(".referral-embed-link").count() == 0  # the frame took its place
    assert page.locator("iframe.referral-embed-frame").count() == 1


def test_the_snippets_own_link_stays_when_the_finder_is_down(page, serve, closed_port):
    down = f"http://127.0.0.1:{closed_port}"
    link = f"<a class='referral-embed-link' href='{down}{PREFIX}/'>Find a therapist</a>"
    clinic = serve(clinic_page(down, 'data-postcode="2000"', link))
    page.goto(clinic.url("/"))
    page.wait_for_load_state("load")  # embed.js failed to load: nothing ran
    shown = page.get_by_role("link", name="Find a therapist")
    assert shown.is_visible() and shown.get_attribute("href") == f"{down}{PREFIX}/"
    assert page.locator("iframe").count() == 0

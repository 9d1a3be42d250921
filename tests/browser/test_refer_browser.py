"""Sending a referral in a real browser: on a listing, by keyboard, and inside the embed frame
on another site (where the browser keeps the plugin's session cookie to itself)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from sqlalchemy import select

from referral.models import ReferralRequest
from referral.referrals import reference
from tests.browser.conftest import ARTIFACTS, PHONE

pytestmark = pytest.mark.browser

PREFIX = "/find-a-therapist"
SECRET = "Sharp pain since lifting my grandson"
FRAME = "iframe.referral-embed-frame"


def clinic_page(plugin_origin: str, attributes: str) -> Any:
    """A WSGI app standing in for a clinic's WordPress site: one page carrying the snippet."""

    def app(environ: dict, start_response: Any) -> list[bytes]:
        body = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>Sunrise Wellness</title></head><body><main><h1>Sunrise Wellness</h1>"
            f"<script src='{plugin_origin}{PREFIX}/embed.js' {attributes} async></script>"
            "</main></body></html>"
        )
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body.encode()]

    return app


def other_site(server: Any) -> str:
    """The same server under ``localhost``: another *site* than ``127.0.0.1`` (ports alone do
    not make sites differ, so SameSite cookies would still flow between two 127.0.0.1 ports)."""
    return server.origin.replace("127.0.0.1", "localhost")


def wait_for_mail(smtp_server: Any, address: str, timeout: float = 5.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not smtp_server.to(address):
        time.sleep(0.05)
    return smtp_server.to(address)


def fill_referral(form: Any) -> None:
    form.get_by_label("Your name").fill("Pat Patient")
    form.get_by_label("Email").fill("pat@example.com")
    form.get_by_label("Phone (optional)").fill("0412 345 678")
    form.get_by_label("What would you like help with?").select_option(label="Low back pain")
    form.get_by_label("Anything the practitioner should know").fill(SECRET)
    form.get_by_label("I agree that this practitioner may receive").check()


def assert_no_health_details(mail: Any) -> None:
    whole = mail.message.as_string()
    for secret in (SECRET, "Low back pain", "low-back-pain", "0412 345 678", "412345678"):
        assert secret not in whole, secret


@pytest.fixture
def nina(add_practitioner):
    return add_practitioner(
        "Nina Near", (-33.8700, 151.2100), conditions=("low-back-pain",), email="nina@example.com"
    )


def test_referral_from_a_snippet_on_another_site(
    page, demo_site, serve, nina, session, smtp_server, audit
):
    holder: dict[str, str] = {}
    clinic = serve(
        lambda e, s: clinic_page(holder["origin"], f'data-practitioner="{nina.id}"')(e, s)
    )
    clinic_origin = other_site(clinic)
    plugin = demo_site(REFERRAL_EMBED_ORIGINS=[clinic_origin], **smtp_server.config)
    holder["origin"] = plugin.origin

    page.goto(clinic_origin + "/")
    frame = page.frame_locator(FRAME)
    frame.get_by_role("heading", level=1, name="Nina Near").wait_for()
    fill_referral(frame)
    frame.get_by_role("button", name="Send request").click()
    frame.get_by_role("heading", name="Your request has been received").wait_for()
    # the confirmation is a page of its own (post/redirect/get), still inside the frame
    assert re.search(rf"{PREFIX}/embed/referrals/sent/[\w.-]+$", page.frames[1].url)

    session.expire_all()
    referral = session.scalars(select(ReferralRequest)).one()
    assert referral.practitioner_id == nina.id and referral.referrer_id is None
    assert referral.email == "pat@example.com" and referral.message == SECRET
    assert reference(referral.id) in frame.locator(".referral-sent").inner_text()
    (notice,) = wait_for_mail(smtp_server, "nina@example.com")
    assert_no_health_details(notice)
    (ack,) = wait_for_mail(smtp_server, "pat@example.com")
    assert_no_health_details(ack)
    audit(page, "embed-frame-referral-sent", frame=page.frames[1])


def test_sending_a_referral_from_a_listing(page, demo_site, nina, session, smtp_server, audit):
    site = demo_site(**smtp_server.config)
    page.goto(site.url(f"{PREFIX}/practitioners/{nina.id}"))
    audit(page, "practitioner")
    form = page.locator("form.referral-form")
    # sent as it is, the form explains what is missing and keeps the page
    form.get_by_role("button", name="Send request").click()
    page.get_by_text("Please check the highlighted fields").wait_for()
    for name in ("patient_name", "email", "consent"):  # each error is tied to its field
        field = page.locator(f"#referral-{name}")
        assert field.get_attribute("aria-invalid") == "true", name
        described = page.locator(f"#{field.get_attribute('aria-describedby')}").inner_text()
        assert described.startswith("Please"), name
    audit(page, "practitioner-form-errors")

    fill_referral(page.locator("form.referral-form"))
    page.get_by_role("button", name="Send request").click()
    page.get_by_role("heading", level=1, name="Your request has been received").wait_for()
    audit(page, "referral-sent")

    session.expire_all()
    referral = session.scalars(select(ReferralRequest)).one()
    assert (referral.patient_name, referral.phone) == ("Pat Patient", "+61412345678")
    assert referral.condition.slug == "low-back-pain" and referral.status == "sent"
    assert reference(referral.id) in page.locator(".referral-sent").inner_text()
    (notice,) = wait_for_mail(smtp_server, "nina@example.com")
    (ack,) = wait_for_mail(smtp_server, "pat@example.com")
    for mail in (notice, ack):
        assert_no_health_details(mail)
    assert "Pat Patient" not in notice.message.as_string()  # a link to the inbox, no more
    assert f"{PREFIX}/inbox" in notice.text
    assert f"{PREFIX}/referrals/cancel/" in ack.text


def _focused(page: Any) -> str:
    return page.evaluate("() => document.activeElement.id || document.activeElement.tagName")


def test_referral_form_by_keyboard_alone(page, demo_site, nina, session, smtp_server):
    site = demo_site(**smtp_server.config)
    page.goto(site.url(f"{PREFIX}/practitioners/{nina.id}"))
    for _ in range(40):  # Tab from the top of the page to the form's first field
        page.keyboard.press("Tab")
        if _focused(page) == "referral-patient_name":
            break
    else:
        pytest.fail("Tab never reached the referral form")

    order = []
    typed = {
        "referral-patient_name": "Pat Patient",
        "referral-email": "pat@example.com",
        "referral-message": SECRET,
    }
    while True:
        focused = _focused(page)
        order.append(focused)
        # the focused control shows where the keyboard is
        outline = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }"
        )
        assert outline, f"no visible focus indicator on {focused}"
        if focused in typed:
            page.keyboard.type(typed[focused])
        if focused == "referral-consent":
            page.keyboard.press("Space")
            assert page.locator("#referral-consent").is_checked()
        if focused == "BUTTON":
            break
        page.keyboard.press("Tab")
    # every field in reading order; the hidden honeypot is skipped
    assert order == [
        "referral-patient_name",
        "referral-email",
        "referral-phone",
        "referral-postcode",
        "referral-condition",
        "referral-message",
        "referral-consent",
        "BUTTON",
    ]
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name="Your request has been received").wait_for()
    session.expire_all()
    referral = session.scalars(select(ReferralRequest)).one()
    assert referral.message == SECRET and referral.phone is None
    assert wait_for_mail(smtp_server, "nina@example.com")


def test_use_my_location_inside_the_embed_frame(new_page, demo_site, serve, directory, audit):
    page = new_page(
        geolocation={"latitude": -33.8705, "longitude": 151.2095}, permissions=["geolocation"]
    )
    holder: dict[str, str] = {}
    clinic = serve(lambda e, s: clinic_page(holder["origin"], "")(e, s))
    clinic_origin = other_site(clinic)
    plugin = demo_site(REFERRAL_EMBED_ORIGINS=[clinic_origin])
    holder["origin"] = plugin.origin

    page.goto(clinic_origin + "/")
    frame = page.frame_locator(FRAME)
    button = frame.get_by_role("button", name="Use my location")
    button.click()
    frame.locator(".referral-card").first.wait_for()
    url = page.frames[1].url
    assert f"{PREFIX}/embed/?" in url and "lat=-33.87&" in url and url.endswith("lon=151.21")
    assert frame.locator(".referral-results h2").inner_text().endswith("near your location")
    names = frame.locator(".referral-card__name a").all_inner_texts()
    assert names[:2] == ["Nina Near", "Pete Physio"]
    audit(page, "embed-frame-my-location", frame=page.frames[1])


def test_a_bad_email_on_a_phone_puts_the_error_in_front_of_you(
    new_page, demo_site, nina, session, audit
):
    site = demo_site()
    page = new_page(has_touch=True)
    page.set_viewport_size(PHONE)
    page.goto(site.url(f"{PREFIX}/practitioners/{nina.id}"))
    fill_referral(page)
    page.fill("#referral-email", "sam@example")
    page.get_by_role("button", name="Send request").click()
    summary = page.locator(".referral-error-summary")
    summary.wait_for()
    assert page.title().startswith("Error: ")
    # the summary has focus and is on screen, at the top of a phone's viewport
    # focus.js (deferred) gives it focus once the page has loaded
    page.wait_for_function(
        "document.activeElement && document.activeElement.classList.contains("
        "'referral-error-summary')"
    )
    box = summary.bounding_box()
    assert box is not None and 0 <= box["y"] < PHONE["height"]
    page.screenshot(path=str(ARTIFACTS / "refer-error-summary-phone.png"))
    # its link takes you to the field
    summary.get_by_role("link", name=re.compile("email address")).click()
    page.wait_for_function("document.activeElement.id === 'referral-email'")
    audit(page, "refer-error-summary")
    session.expire_all()
    assert session.scalars(select(ReferralRequest)).all() == []

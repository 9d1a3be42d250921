"""The capacity notice on a listing's form and the patient's status page, in a real
browser at phone size, with axe and screenshots."""

from __future__ import annotations

import re

import pytest

from referral.db import get_session
from referral.models import ReferralRequest
from referral.referrals import ReferralData, create_referral, transition
from referral.status import status_token
from tests.browser.conftest import PHONE

pytestmark = pytest.mark.browser

PREFIX = "/find-a-therapist"


def test_waitlist_notice_and_an_accepted_request_s_page_on_a_phone(
    page, demo_site, test_apps, add_practitioner, smtp_server, audit
):
    wendy = add_practitioner(
        "Wendy Wait",
        (-33.8700, 151.2100),
        conditions=("low-back-pain",),
        capacity_status="waitlist",
        waitlist_weeks=3,
        phone="+61291234567",
        email="wendy@clinic.example",
        booking_url="https://cal.com/wendy/30min",
    )
    site = demo_site(**smtp_server.config)
    page.set_viewport_size(PHONE)
    page.goto(site.url(f"{PREFIX}/practitioners/{wendy.id}"))
    notice = page.locator(".referral-capacity-notice")
    assert "Usual wait: about 3 weeks." in notice.inner_text()
    button = page.get_by_role("button", name="Send request")
    # the notice comes before the button, in reading order and on screen
    assert notice.bounding_box()["y"] < button.bounding_box()["y"]
    notice.scroll_into_view_if_needed()
    audit(page, "listing-waitlist-notice")

    app = test_apps[-1]
    with app.test_request_context("/"):
        s = get_session()
        data = ReferralData(
            patient_name="Pat Patient", email="pat@example.com", consent_version="v"
        )
        referral, _ = create_referral(s, s.merge(wendy), data)
        transition(s, referral, "accepted", f"practitioner:{wendy.id}")
        s.commit()
        path = f"{PREFIX}/referrals/status/{status_token(s.get(ReferralRequest, referral.id))}"
    page.goto(site.url(path))
    page.get_by_role("heading", level=1, name="Your request to Wendy Wait").wait_for()
    assert "Accepted: Wendy Wait will contact you" in page.get_by_role("status").inner_text()
    book = page.get_by_role("link", name="Book a time")
    assert re.fullmatch(
        r"https://cal\.com/wendy/30min\?name=Pat\+Patient&email=pat%40example\.com",
        book.get_attribute("href"),
    )
    audit(page, "request-status-accepted")


def test_an_expired_request_s_page_offers_alternatives_on_a_phone(
    page, demo_site, test_apps, add_practitioner, smtp_server, audit
):
    nina = add_practitioner("Nina Near", (-33.8700, 151.2100), conditions=("low-back-pain",))
    for n, name in enumerate(("Ada Alt", "Ben Alt", "Cai Alt", "Dee Alt"), 1):
        add_practitioner(name, (-33.87 - n * 0.01, 151.21), conditions=("low-back-pain",))
    site = demo_site(**smtp_server.config)
    app = test_apps[-1]
    with app.test_request_context("/"):
        s = get_session()
        p = s.merge(nina)
        data = ReferralData(
            patient_name="Pat Patient",
            email="pat@example.com",
            postcode="2000",
            condition_id=p.conditions[0].id,
            consent_version="v",
        )
        referral, _ = create_referral(s, p, data)
        transition(s, referral, "expired", "system")
        s.commit()
        path = f"{PREFIX}/referrals/status/{status_token(referral)}"
    page.set_viewport_size(PHONE)
    page.goto(site.url(path))
    assert "Closed without an answer" in page.get_by_role("status").inner_text()
    offers = page.locator(".referral-alternatives > li")
    assert offers.count() == 3
    assert "Dee Alt" not in page.locator(".referral-alternatives").inner_text()
    page.get_by_role("link", name="Send my request to Ada Alt").click()
    page.get_by_role("heading", level=1, name="Send your request to Ada Alt?").wait_for()
    page.go_back()
    audit(page, "request-status-expired")

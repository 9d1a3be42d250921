"""Referring a patient on and reading the outcome, then the operator's funnel, in a real
browser: axe-core on each page, phone (390x844) and desktop screenshots."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from referral.models import ReferralRequest
from tests.browser.test_accounts_browser import sign_in
from tests.browser.test_refer_browser import fill_referral

pytestmark = pytest.mark.browser

PREFIX = "/find-a-therapist"
NOTE = "Soft tissue work for her lower back, please"


def test_refer_on_outcome_and_funnel(
    new_page, demo_site, add_account, add_practitioner, session, smtp_server, audit
):
    site = demo_site(**smtp_server.config)
    nina_user, otto_user = add_account("nina@example.com"), add_account("otto@example.com")
    add_account("ada@example.com", admin=True)
    nina = add_practitioner(
        "Nina Near",
        (-33.8700, 151.2100),
        modalities=("physiotherapy",),
        email="nina@clinic.example",
        user_id=nina_user.id,
    )
    add_practitioner(
        "Otto Other",
        (-33.8800, 151.2000),
        conditions=("low-back-pain",),
        email="otto@clinic.example",
        user_id=otto_user.id,
        business_name="Other Massage",
    )
    add_practitioner("Yara Yoga", (-33.8500, 151.2300), modalities=("yoga",))

    patient = new_page()
    patient.goto(site.url(f"{PREFIX}/practitioners/{nina.id}"))
    form = patient.locator("form.referral-form")
    fill_referral(form)
    form.locator("[name=postcode]").fill("2000")
    patient.get_by_role("button", name="Send request").click()
    patient.get_by_role("heading", name="Your request has been received").wait_for()

    page = new_page()
    sign_in(page, site, "nina@example.com")
    page.goto(site.url(f"{PREFIX}/inbox"))
    page.get_by_role("link", name="Pat Patient").click()
    page.wait_for_url(re.compile(rf"{PREFIX}/inbox/[\w-]+$"))
    page.get_by_role("link", name="Refer on to another practitioner").click()
    page.get_by_role("heading", name="Refer Pat Patient on").wait_for()
    # the search starts from the patient's postcode and condition: Otto treats it
    page.get_by_role("link", name="Choose Otto Other").wait_for()
    assert page.get_by_role("link", name="Choose Nina Near").count() == 0
    audit(page, "refer-on-search")
    page.get_by_role("link", name="Choose Otto Other").click()
    page.get_by_role("heading", name="Refer Pat Patient on to Otto Other").wait_for()
    page.get_by_label("Note for the practitioner (optional)").fill(NOTE)
    audit(page, "refer-on-confirm")
    page.get_by_role("button", name="Refer on to Otto Other").click()
    page.get_by_text("Referred on to").wait_for()
    assert page.locator(".referral-status").inner_text() == "Referred on"
    audit(page, "refer-on-done")

    session.expire_all()
    onward = session.scalars(
        select(ReferralRequest).where(ReferralRequest.referred_from_id.is_not(None))
    ).one()
    otto = new_page()
    sign_in(otto, site, "otto@example.com")
    otto.goto(site.url(f"{PREFIX}/inbox/{onward.id}"))
    assert NOTE in otto.content()
    otto.get_by_role("button", name="Accept").click()
    otto.get_by_label("Improved").check()
    otto.get_by_label("Note for the referring practitioner (optional)").fill("Much better")
    audit(otto, "complete-with-outcome")
    otto.get_by_role("button", name="Mark completed").click()
    otto.get_by_text("Improved: Much better").wait_for()

    page.goto(site.url(f"{PREFIX}/inbox/sent"))
    page.get_by_text("Improved: Much better").wait_for()
    audit(page, "sent-referrals-outcome")

    admin = new_page()
    sign_in(admin, site, "ada@example.com")
    admin.get_by_role("link", name="Referral funnel").click()
    admin.get_by_role("heading", level=1, name="Referral funnel").wait_for()
    assert admin.locator("svg.referral-funnel-chart").count() == 2
    assert "Pat Patient" not in admin.content()
    audit(admin, "admin-funnel")

"""Practitioner and admin pages in a real browser, signed in through the real sign-in form:
axe-core on each page and phone/desktop screenshots (``test-artifacts/``)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from referral.models import Practitioner, ReferralRequest
from tests.browser.test_refer_browser import fill_referral
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

PREFIX = "/find-a-therapist"


def sign_in(page: Any, site: Any, email: str) -> None:
    page.goto(site.url(f"{PREFIX}/account/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_practitioner_and_admin_pages(
    new_page, demo_site, make_account, add_practitioner, session, smtp_server, audit
):
    site = demo_site(**smtp_server.config)
    nina_user = make_account("nina@example.com", name="Nina Near", status="active")
    nina = session.scalars(select(Practitioner).where(Practitioner.user_id == nina_user.id)).one()
    add_practitioner("Pat Pending", (-33.88, 151.20), status="pending", email="pat@clinic.example")
    make_account("ada@example.com", admin=True, listing=False)

    anonymous = new_page()
    anonymous.goto(site.url(f"{PREFIX}/account/signup"))
    audit(anonymous, "account-signup")
    anonymous.goto(site.url(f"{PREFIX}/account/login"))
    audit(anonymous, "account-login")
    # a wrong password is said plainly, on the same page
    anonymous.get_by_label("Email").fill("nina@example.com")
    anonymous.get_by_label("Password").fill("not the password")
    anonymous.get_by_role("button", name="Sign in").click()
    anonymous.get_by_role("alert").filter(has_text="do not match").wait_for()
    audit(anonymous, "account-login-failed")

    # a patient sends Nina a referral through her listing
    anonymous.goto(site.url(f"{PREFIX}/practitioners/{nina.id}"))
    fill_referral(anonymous.locator("form.referral-form"))
    anonymous.get_by_role("button", name="Send request").click()
    anonymous.get_by_role("heading", name="Your request has been received").wait_for()

    page = new_page()
    sign_in(page, site, nina_user.email)
    assert page.url.endswith(f"{PREFIX}/account/listing")  # the listing editor
    page.get_by_role("heading", level=1).wait_for()
    audit(page, "account-listing")
    page.goto(site.url(f"{PREFIX}/inbox"))
    page.get_by_role("heading", level=1, name="Referral inbox").wait_for()
    audit(page, "inbox")
    page.get_by_role("link", name="Pat Patient").click()
    page.wait_for_url(re.compile(rf"{PREFIX}/inbox/[\w-]+$"))
    assert "Sharp pain since lifting my grandson" in page.content()
    audit(page, "inbox-referral")
    session.expire_all()
    assert session.scalars(select(ReferralRequest)).one().status == "viewed"

    admin = new_page()
    sign_in(admin, site, "ada@example.com")
    assert admin.url.endswith(f"{PREFIX}/admin/listings")
    admin.get_by_text("Pat Pending").first.wait_for()
    audit(admin, "admin-queue")

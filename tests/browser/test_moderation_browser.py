"""The moderation queue, a listing's decisions, the audit log and "Report wrong details" in
a real browser: axe-core on each page, phone and desktop screenshots (``test-artifacts/``)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from referral.models import AuditEvent, Location, Practitioner, ProblemReport
from tests.browser.conftest import PHONE
from tests.browser.test_accounts_browser import sign_in

pytestmark = pytest.mark.browser

PREFIX = "/find-a-therapist"


def test_report_form_then_the_queue_and_decisions(
    new_page, demo_site, make_account, add_practitioner, session, smtp_server, audit
):
    site = demo_site(**smtp_server.config)
    nina = add_practitioner("Nina Near", (-33.87, 151.21), email="nina@example.com")
    session.add_all(
        Practitioner(
            name=f"Pending Therapist {n:02d}",
            status="pending",
            accreditation_body="Massage & Myotherapy Australia",
            membership_number=f"M-{n}",
            locations=[Location(lat=-33.8, lon=151.2, country="AU", postcode=f"{2000 + n}")],
        )
        for n in range(40)
    )
    session.commit()
    make_account("ada@example.com", admin=True, listing=False)

    visitor = new_page()
    visitor.set_viewport_size(PHONE)
    visitor.goto(site.url(f"{PREFIX}/practitioners/{nina.id}"))
    visitor.get_by_role("link", name="Report wrong details").click()
    visitor.get_by_role("heading", name="Report wrong details").wait_for()
    audit(visitor, "report-form")
    visitor.get_by_role("button", name="Send report").click()
    visitor.get_by_text("There is a problem").wait_for()
    audit(visitor, "report-form-error")
    visitor.get_by_label("The phone number is wrong").check()
    visitor.get_by_label("Tell us more (optional)").fill("The number rings out.")
    visitor.get_by_role("button", name="Send report").click()
    visitor.get_by_role("heading", name="Thank you").wait_for()

    admin = new_page()
    admin.set_viewport_size(PHONE)
    sign_in(admin, site, "ada@example.com")
    admin.goto(site.url(f"{PREFIX}/admin/listings"))
    admin.get_by_role("heading", name="Problem reports (1 open)").wait_for()
    admin.get_by_text("Page 1 of 2 (40 in all)").wait_for()
    audit(admin, "admin-queue")
    admin.get_by_label("Search pending listings by name or postcode").fill("2017")
    admin.get_by_role("button", name="Search").click()
    admin.get_by_text("1 pending listing matching").wait_for()
    admin.get_by_role("link", name="Pending Therapist 17").click()
    admin.get_by_role("heading", name="Pending Therapist 17").wait_for()
    assert admin.get_by_role("button", name="⏸ Suspend").count() == 0
    audit(admin, "admin-listing-pending")
    admin.get_by_role("button", name="✕ Reject").click()
    admin.get_by_text("Please give a reason.").wait_for()
    admin.get_by_label("Why reject? (sent to the practitioner)").fill("No such member.")
    admin.get_by_role("button", name="✕ Reject").click()
    admin.get_by_text("Pending Therapist 17: rejected.").wait_for()
    admin.get_by_role("button", name="✓ Resolved: details put right").click()
    admin.get_by_text("Report on Nina Near: resolved.").wait_for()
    admin.goto(site.url(f"{PREFIX}/admin/audit"))
    audit(admin, "admin-audit")
    session.expire_all()
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["report", "reject", "resolve"]
    assert session.scalars(select(ProblemReport.status)).all() == ["resolved"]

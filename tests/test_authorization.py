"""Every route that shows or changes private data, tried by the wrong people.

Anonymous visitors are sent to sign in; a practitioner gets 404 for another's location
ids and 403 on admin pages; an admin without a listing gets 403 on the editor. The first
test fails when a new private route is added without being listed here.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from referral.models import Location, Practitioner, ProblemReport
from tests.conftest import csrf_token, sign_in

P = "/find-a-therapist"
PUBLIC = {
    "referral.static",
    "referral.index",
    "referral.practitioner",
    "referral.export_hsds",
    # the directory as a FHIR R4 Bundle and the code systems it names (tests/test_fhir_directory.py)
    "referral.export_fhir",
    "referral.fhir_code_system",
    "referral.signup",
    "referral.verify_email",
    "referral.login",
    "referral.logout",
    "referral.forgot_password",
    "referral.reset_password",
    "referral.embed_js",
    # the snippet builder for clinics and the embed options' stylesheet
    "referral.for_websites",
    "referral.embed_style",
    # "report wrong details" on an active listing (tests/test_reports.py)
    "referral.report_problem",
    # "my details are still right", authorised by its signed token (tests/test_reconfirm.py)
    "referral.reconfirm_listing",
    # the referral form, and the cancel link (authorised by its signed token: tests/test_refer.py)
    "referral.refer",
    "referral.cancel",
    # the confirmation after sending: a practitioner's name and the reference, by signed token
    "referral.referral_sent",
    # the patient's status page and the re-send of a declined or expired request, by signed
    # token (tests/test_status.py, tests/test_sweep.py)
    "referral.request_status",
    "referral.resend",
    # the public JSON API: active listings and taxonomies only
    "referral.api.practitioners",
    "referral.api.practitioner",
    "referral.api.modalities",
    "referral.api.conditions",
    "referral.api.funds",
    "referral.api.languages",
    "referral.api.places",
    "referral.api.openapi",
    "referral.api.unknown",
    # the HSDS 3.0 API: active listings and taxonomies only (tests/test_hsds.py shows that
    # pending and suspended listings are not there, even by id)
    "referral.api.hsds.meta",
    "referral.api.hsds.openapi",
    "referral.api.hsds.services",
    "referral.api.hsds.service",
    "referral.api.hsds.organizations",
    "referral.api.hsds.organization",
    "referral.api.hsds.service_at_locations",
    "referral.api.hsds.service_at_location",
    "referral.api.hsds.taxonomies",
    "referral.api.hsds.taxonomy",
    "referral.api.hsds.taxonomy_terms",
    "referral.api.hsds.taxonomy_term",
}
#: referral routes, each tried with another practitioner's referral id, anonymously and
#: without a listing in tests/test_inbox.py
REFERRAL_ROUTES = {
    "referral.inbox",
    "referral.sent_referrals",
    "referral.inbox_referral",
    "referral.export_referral",
    "referral.answer_referral",
    "referral.refer_on",
    "referral.refer_on_confirm",
}
#: endpoint -> (methods, path with the victim's ids filled in)
PRACTITIONER_ROUTES = {
    "referral.listing": (("GET", "POST"), "/account/listing"),
    "referral.listing_submit": (("POST",), "/account/listing/submit"),
    "referral.location_new": (("GET", "POST"), "/account/listing/locations/new"),
    "referral.location_edit": (("GET", "POST"), "/account/listing/locations/{location}"),
    "referral.location_delete": (("POST",), "/account/listing/locations/{location}/delete"),
}
#: a signed-in account's own settings: any account, no listing needed
ACCOUNT_ROUTES = {
    "referral.change_password": (("GET", "POST"), "/account/password"),
}
ADMIN_ROUTES = {
    "referral.admin_queue": (("GET",), "/admin/listings"),
    "referral.admin_outbox": (("GET",), "/admin/outbox"),
    "referral.admin_funnel": (("GET",), "/admin/funnel"),
    "referral.admin_listing": (("GET",), "/admin/listings/{practitioner}"),
    "referral.admin_approve": (("POST",), "/admin/listings/{practitioner}/approve"),
    "referral.admin_reject": (("POST",), "/admin/listings/{practitioner}/reject"),
    "referral.admin_suspend": (("POST",), "/admin/listings/{practitioner}/suspend"),
    "referral.admin_embeds": (("GET", "POST"), "/admin/embeds"),
    "referral.admin_embed_remove": (("POST",), "/admin/embeds/1/remove"),
    "referral.admin_reconfirm": (("POST",), "/admin/listings/{practitioner}/reconfirm"),
    "referral.admin_audit": (("GET",), "/admin/audit"),
    "referral.admin_report_resolve": (("POST",), "/admin/reports/{report}/resolve"),
    "referral.admin_report_dismiss": (("POST",), "/admin/reports/{report}/dismiss"),
}
#: routes about the victim's own records (the others act on the signed-in user's listing)
BY_ID = {"referral.location_edit", "referral.location_delete"}


@pytest.fixture
def people(session, make_account):
    victim_user = make_account(
        "victim@example.com", status="pending", accreditation_body="X", membership_number="1"
    )
    victim = session.scalars(
        select(Practitioner).where(Practitioner.user_id == victim_user.id)
    ).one()
    victim.locations.append(
        Location(lat=-33.87, lon=151.21, postcode="2000", suburb="Sydney", country="AU")
    )
    report = ProblemReport(practitioner_id=victim.id, kind="phone", note="")
    session.add(report)
    session.commit()
    make_account("intruder@example.com")
    make_account("admin@example.com", admin=True, listing=False)
    return {"practitioner": victim.id, "location": victim.locations[0].id, "report": report.id}


def _requests(routes, ids):
    for endpoint, (methods, path) in routes.items():
        for method in methods:
            yield endpoint, method, P + path.format(**ids)


def _snapshot(session, ids):
    session.expire_all()
    p = session.get(Practitioner, ids["practitioner"])
    report = session.get(ProblemReport, ids["report"])
    return (
        p.status,
        p.name,
        p.verified_at,
        [(loc.id, loc.postcode, loc.lat) for loc in p.locations],
        report.status,
    )


def test_every_private_route_is_listed(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("referral.")}
    assert (
        endpoints - PUBLIC
        == set(PRACTITIONER_ROUTES) | set(ACCOUNT_ROUTES) | set(ADMIN_ROUTES) | REFERRAL_ROUTES
    )


def test_anonymous_is_sent_to_sign_in_everywhere(client, session, people):
    before = _snapshot(session, people)
    routes = PRACTITIONER_ROUTES | ACCOUNT_ROUTES | ADMIN_ROUTES
    for endpoint, method, url in _requests(routes, people):
        response = client.open(url, method=method, data={"reason": "x", "postcode": "3000"})
        assert response.status_code == 302, (endpoint, method)
        assert "/account/login?next=" in response.location, (endpoint, method)
    assert _snapshot(session, people) == before


def test_another_practitioner_gets_404_for_my_records_and_403_on_admin(client, session, people):
    before = _snapshot(session, people)
    sign_in(client, "intruder@example.com")
    token = csrf_token(client, f"{P}/account/listing")
    form = {
        "csrf_token": token,
        "reason": "x",
        "postcode": "3000",
        "country": "AU",
        "name": "Hacked",
    }
    for endpoint, method, url in _requests(PRACTITIONER_ROUTES, people):
        if endpoint in BY_ID:
            response = client.open(url, method=method, data=form)
            assert response.status_code == 404, (endpoint, method)
    for endpoint, method, url in _requests(ADMIN_ROUTES, people):
        response = client.open(url, method=method, data=form)
        assert response.status_code == 403, (endpoint, method)
    assert _snapshot(session, people) == before
    # what the intruder's own pages show is their own listing, never the victim's
    page = client.get(f"{P}/account/listing").get_data(as_text=True)
    assert "Intruder" in page and "Victim" not in page


def test_admin_without_a_listing_cannot_use_the_editor(client, session, people):
    sign_in(client, "admin@example.com")
    token = csrf_token(client, f"{P}/admin/listings")
    for endpoint, method, url in _requests(PRACTITIONER_ROUTES, people):
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 403, (endpoint, method)
    assert client.get(f"{P}/admin/listings/{people['practitioner']}").status_code == 200


def test_owner_can_reach_every_practitioner_route(client, session, people):
    sign_in(client, "victim@example.com")
    for endpoint, method, url in _requests(PRACTITIONER_ROUTES, people):
        if method == "GET":
            assert client.get(url).status_code == 200, endpoint

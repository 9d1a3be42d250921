"""404, 403 and 500 are pages of the site with a way on; the API keeps answering JSON;
the safety notice is where a patient decides."""

from __future__ import annotations

from tests.conftest import sign_in

P = "/find-a-therapist"
LAYOUT = "Harbour Back &amp; Body Clinic"


def test_a_missing_listing_is_a_page_of_the_site_with_a_way_back(client):
    response = client.get(f"{P}/practitioners/99999")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert LAYOUT in html and "Page not found" in html
    assert f'href="{P}/"' in html


def test_the_api_still_answers_json(client):
    response = client.get(f"{P}/api/v1/practitioners/99999")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_an_admin_on_a_practitioner_page_is_shown_the_moderation_queue(client, make_account):
    make_account("root@example.com", admin=True, listing=False)
    sign_in(client, "root@example.com")
    response = client.get(f"{P}/account/listing")
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert LAYOUT in html and "moderation queue" in html
    assert f'href="{P}/admin/listings"' in html


def test_a_fault_is_a_page_that_says_what_to_do(make_app, add_practitioner, monkeypatch):
    app = make_app(TESTING=False, REFERRAL_PUBLIC_URL="http://localhost", SECRET_KEY="k" * 32)

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("referral.views.public.run_search", broken)
    response = app.test_client().get(f"{P}/?postcode=2000")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert LAYOUT in html and "Something went wrong" in html
    assert "check your email" in html and "secret internals" not in html


def test_the_safety_notice_is_on_the_listing_and_can_be_changed(make_app, add_practitioner):
    nina = add_practitioner("Nina", (-33.87, 151.21))
    default = make_app().test_client().get(f"{P}/practitioners/{nina.id}")
    assert "In an emergency call 000. For health advice call healthdirect on 1800 022 222." in (
        default.get_data(as_text=True)
    )
    custom = make_app(REFERRAL_EMERGENCY_NOTICE="In an emergency call 999.").test_client()
    assert "call 999" in custom.get(f"{P}/practitioners/{nina.id}").get_data(as_text=True)
    off = make_app(REFERRAL_EMERGENCY_NOTICE="").test_client()
    assert "referral-emergency" not in off.get(f"{P}/practitioners/{nina.id}").get_data(
        as_text=True
    )


def test_every_page_starts_with_a_skip_link_to_the_content(client):
    html = client.get(f"{P}/").get_data(as_text=True)
    body = html[html.index("<body") :]
    assert body.index('href="#main">Skip to the content</a>') < body.index("<header")
    assert 'id="main"' in html

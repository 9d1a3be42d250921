"""Absolute URLs come from ``REFERRAL_PUBLIC_URL``, whatever ``Host`` a request forges."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from referral.models import OutboxMessage
from referral.urls import check_public_url, external_url
from tests.conftest import post_form

P = "/find-a-therapist"
PUBLIC = "https://clinic.example/care"


@pytest.fixture
def app(make_app):
    return make_app(REFERRAL_PUBLIC_URL=PUBLIC + "/")


@pytest.fixture
def forged(client):
    """A client whose every request says ``Host: evil.example``."""
    client.environ_base["HTTP_HOST"] = "evil.example"
    return client


def _links(session) -> list[str]:
    session.expire_all()
    bodies = session.scalars(select(OutboxMessage.body_text)).all()
    return [url for body in bodies for url in re.findall(r"https?://\S+", body)]


def test_a_reset_link_never_follows_a_forged_host(forged, session, make_account):
    make_account("bob@example.com")
    response = post_form(forged, f"{P}/account/forgot", {"email": "bob@example.com"})
    assert response.status_code == 200
    [link] = _links(session)
    assert link.startswith(f"{PUBLIC}{P}/account/reset/")
    assert "evil.example" not in link


def test_referral_emails_never_follow_a_forged_host(forged, session, add_practitioner):
    nina = add_practitioner("Nina", (-33.87, 151.21), email="nina@clinic.example")
    token_page = forged.get(f"{P}/practitioners/{nina.id}")
    html = token_page.get_data(as_text=True)
    fields = dict(
        re.findall(r'name="(csrf_token|idempotency_key|form_token)"[^>]*value="([^"]*)"', html)
    )
    data = {
        **fields,
        "patient_name": "Pat Example",
        "email": "pat@example.com",
        "message": "Lower back pain for two weeks.",
        "consent": "y",
    }
    response = forged.post(
        f"{P}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    links = _links(session)
    assert links, "no email was queued"
    assert all(link.startswith(PUBLIC + P) for link in links), links


def test_api_links_and_the_openapi_server_use_the_public_url(forged, add_practitioner):
    add_practitioner("Nina", (-33.87, 151.21))
    answer = forged.get(f"{P}/api/v1/practitioners?lat=-33.87&lon=151.21").get_json()
    assert answer["results"][0]["url"].startswith(f"{PUBLIC}{P}/practitioners/")
    document = forged.get(f"{P}/api/openapi.json").get_json()
    assert document["servers"] == [{"url": f"{PUBLIC}{P}/api"}]
    hsds = forged.get(f"{P}/api/v1/export/hsds.json").get_data(as_text=True)
    assert "evil.example" not in hsds and PUBLIC in hsds


def test_the_embed_snippet_uses_the_public_url(app, forged):
    page = forged.get("/for-websites").get_data(as_text=True)
    assert f'src="{PUBLIC}{P}/embed.js"' in page
    assert "evil.example" not in page


def test_links_are_built_outside_a_request_too(app):
    with app.app_context():
        assert external_url("referral.inbox") == f"{PUBLIC}{P}/inbox"


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("https://Clinic.Example/", "https://clinic.example"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("https://clinic.example/care/", "https://clinic.example/care"),
        (None, None),
        ("", None),
    ],
)
def test_public_url_is_normalised(value, normalised):
    assert check_public_url(value) == normalised


@pytest.mark.parametrize(
    "value",
    [
        "clinic.example",
        "javascript:alert(1)",
        "https://x.example/#top",
        "https://u:p@x.example",
        "http://[oops.example",
        "https://x.example:port",
    ],
)
def test_public_url_that_is_not_an_address_is_refused(value):
    with pytest.raises(ValueError, match="REFERRAL_PUBLIC_URL"):
        check_public_url(value)

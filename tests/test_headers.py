"""Security headers on the plugin's responses (referral/headers.py): what each kind of page
sends, that HSTS follows HTTPS, and that a host's own choices are kept."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from flask import after_this_request
from werkzeug.middleware.proxy_fix import ProxyFix

from referral.headers import build
from referral.models import EmbedOrigin, ReferralRequest, utcnow
from referral.referrals import cancel_token

PREFIX = "/find-a-therapist"
CLINIC = "https://clinic.example"
ONE_YEAR = 365 * 24 * 3600


def csp(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as ``{directive: [sources]}``."""
    header = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


@pytest.fixture
def session(unbound_session):
    return unbound_session


@pytest.fixture
def nina(add_practitioner):
    return add_practitioner("Nina Near", (-33.8700, 151.2100))


@pytest.fixture
def referral(session, nina):
    """A patient's request to Nina: health information, so every page showing it is private."""
    made = ReferralRequest(
        practitioner_id=nina.id,
        patient_name="Pat Patient",
        email="pat@example.com",
        message="Sciatica down the left leg since March.",
        consent_version="2026-11",
        consent_at=utcnow(),
    )
    session.add(made)
    session.commit()
    return made


@pytest.fixture
def nina_client(login_client, make_account, session, nina):
    user = make_account("nina@login.example", listing=False)
    nina.user_id = user.id
    session.commit()
    return login_client(user)


PUBLIC = [
    f"{PREFIX}/",
    f"{PREFIX}/?postcode=2000",
    f"{PREFIX}/practitioners/{{nina}}",
    f"{PREFIX}/practitioners/{{nina}}/referrals",
    f"{PREFIX}/api/v1/practitioners?postcode=2000",
    f"{PREFIX}/practitioners/999999",  # a 404 page is the plugin's too
]


@pytest.mark.parametrize("url", PUBLIC)
def test_public_pages_send_the_baseline_headers(client, nina, url):
    response = client.get(url.format(nina=nina.id))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    policy = csp(response)
    assert policy["frame-ancestors"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP


def test_static_files_are_not_sniffed(client):
    response = client.get(f"{PREFIX}/static/search.js")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" not in response.headers.get("Cache-Control", "")


def test_styles_come_from_files_and_no_inline_style_is_allowed(client):
    policy = csp(client.get(f"{PREFIX}/"))
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]


def test_map_tiles_may_come_from_the_configured_tile_host(client):
    response = client.get(f"{PREFIX}/?postcode=2000")
    assert csp(response)["img-src"] == ["'self'", "https://tile.openstreetmap.org"]
    assert "Cache-Control" not in response.headers  # results are public: a cache may keep them


@pytest.mark.parametrize(
    ("tiles", "allowed"),
    [
        ("https://{s}.tile.example/{z}/{x}/{y}.png", ["'self'", "https://*.tile.example"]),
        (
            "http://tiles.example:8080/t/{z}/{x}/{y}.png?key=1",
            ["'self'", "http://tiles.example:8080"],
        ),
        ("//tiles.example/{z}/{x}/{y}.png", ["'self'", "tiles.example"]),
        ("/tiles/{z}/{x}/{y}.png", ["'self'"]),
    ],
)
def test_the_tile_origin_is_derived_from_the_tile_url(make_app, tiles, allowed):
    app = make_app(REFERRAL_MAP_TILE_URL=tiles)
    assert csp(app.test_client().get(f"{PREFIX}/"))["img-src"] == allowed


def test_the_theme_style_block_is_allowed_by_its_hash(make_app):
    app = make_app(REFERRAL_THEME={"accent": "#6b2d5c", "radius": "4px"})
    response = app.test_client().get(f"{PREFIX}/")
    block = re.search(r"<style>(.*?)</style>", response.get_data(as_text=True), re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
    assert csp(response)["style-src"] == ["'self'", f"'sha256-{digest}'"]


def test_extra_sources_are_added_to_the_policy(make_app):
    app = make_app(
        REFERRAL_THEME={"accent": "#6b2d5c"},
        REFERRAL_CSP_EXTRA={
            "img-src": "https://cdn.example",
            "style-src": ["'unsafe-inline'"],
            "frame-src": "https://video.example",
        },
    )
    policy = csp(app.test_client().get(f"{PREFIX}/"))
    assert policy["img-src"] == ["'self'", "https://tile.openstreetmap.org", "https://cdn.example"]
    # a hash beside 'unsafe-inline' would switch it off: the host asked for inline styles
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["frame-src"] == ["'self'", "https://video.example"]  # a new -src starts at self
    assert policy["script-src"] == ["'self'"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"img-src": "https://a.example; script-src *"}, "not a CSP source"),
        ({"img-src": "https://a.example\r\nSet-Cookie: x=1"}, "not a CSP source"),
        ({"frame-ancestors": "https://a.example"}, "REFERRAL_EMBED_ORIGINS"),
        ({"Script Src": "'self'"}, "not a CSP directive"),
        ("img-src https://a.example", "a dict"),
    ],
)
def test_bad_extra_policy_is_refused_at_start_up(make_app, extra, message):
    with pytest.raises(ValueError, match=message):
        make_app(REFERRAL_CSP_EXTRA=extra)


PRIVATE = [
    f"{PREFIX}/inbox",
    f"{PREFIX}/inbox/sent",
    f"{PREFIX}/inbox/{{referral}}",
    f"{PREFIX}/inbox/{{referral}}/export.json",
    f"{PREFIX}/account/listing",
]


@pytest.mark.parametrize("url", PRIVATE)
def test_private_pages_are_never_stored_and_send_no_referrer(nina_client, referral, url):
    response = nina_client.get(url.format(referral=referral.id))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert csp(response)["script-src"] == ["'self'"]


@pytest.mark.parametrize(
    "url",
    [
        f"{PREFIX}/account/login",
        f"{PREFIX}/account/signup",
        f"{PREFIX}/account/forgot",
        f"{PREFIX}/account/reset/not-a-token",
        f"{PREFIX}/inbox",  # the sign-in redirect
    ],
)
def test_account_pages_are_private_to_a_visitor_too(client, url):
    response = client.get(url)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_cancel_page_is_private(app, client, referral):
    with app.test_request_context():
        token = cancel_token(referral)
    response = client.get(f"{PREFIX}/referrals/cancel/{token}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_admin_pages_are_private(login_client, make_account, nina):
    admin = make_account("ada@admin.example", admin=True, listing=False)
    client = login_client(admin)
    for url in (f"{PREFIX}/admin/listings", f"{PREFIX}/admin/listings/{nina.id}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
        assert response.headers["Referrer-Policy"] == "no-referrer", url


def test_embed_pages_may_be_framed_by_the_allowed_origins_under_the_same_policy(make_app, nina):
    app = make_app(REFERRAL_EMBED_ORIGINS=[CLINIC, "http://127.0.0.1:8080"])
    client = app.test_client()
    for url in (f"{PREFIX}/embed/?postcode=2000", f"{PREFIX}/embed/practitioners/{nina.id}"):
        response = client.get(url)
        policy = csp(response)
        assert policy["frame-ancestors"] == ["'self'", CLINIC, "http://127.0.0.1:8080"]
        assert policy["script-src"] == ["'self'"]
        assert response.headers.get_all("Content-Security-Policy") == [
            response.headers["Content-Security-Policy"]
        ]  # one header: framing is merged in, not a second policy
        assert "X-Frame-Options" not in response.headers  # it cannot name several origins
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_embed_pages_may_also_be_framed_by_the_websites_an_admin_added(make_app, session, nina):
    app = make_app(REFERRAL_EMBED_ORIGINS=[CLINIC], REFERRAL_EMBED_ORIGINS_REFRESH=0)
    session.add_all(
        [EmbedOrigin(origin="https://sunrise.example"), EmbedOrigin(origin=CLINIC)]  # twice
    )
    session.commit()
    client = app.test_client()
    embedded = client.get(f"{PREFIX}/embed/practitioners/{nina.id}")
    policy = csp(embedded)
    assert policy["frame-ancestors"] == ["'self'", CLINIC, "https://sunrise.example"]
    assert policy["script-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert len(embedded.headers.get_all("Content-Security-Policy")) == 1
    # the same origins on an embed page's 404, and none on the plugin's other pages
    missing = client.get(f"{PREFIX}/embed/practitioners/999999")
    assert missing.status_code == 404
    assert csp(missing)["frame-ancestors"] == ["'self'", CLINIC, "https://sunrise.example"]
    for url in (f"{PREFIX}/", f"{PREFIX}/practitioners/{nina.id}", f"{PREFIX}/embed.js"):
        response = client.get(url)
        assert csp(response)["frame-ancestors"] == ["'self'"], url
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN", url


def test_the_embed_policy_is_the_page_policy_with_its_own_framing(make_app):
    app = make_app(REFERRAL_THEME={"accent": "#6b2d5c"})
    policy = build(app.config)
    embed = policy.embed_csp(["https://a.example", "http://127.0.0.1:8080"])
    assert embed == policy.page_csp.replace(
        "frame-ancestors 'self'", "frame-ancestors 'self' https://a.example http://127.0.0.1:8080"
    )
    assert policy.embed_csp([]).endswith("; frame-ancestors 'self'")


def test_without_the_table_embed_pages_keep_the_configured_origins(make_app, caplog):
    app = make_app(REFERRAL_EMBED_ORIGINS=[CLINIC])
    engine = app.extensions["referral"].engine
    with engine.begin() as conn:  # a host that has not run `flask referral upgrade` yet
        conn.exec_driver_sql("ALTER TABLE referral_embed_origin RENAME TO referral_embed_later")
    try:
        response = app.test_client().get(f"{PREFIX}/embed/")
        assert response.status_code == 200
        assert csp(response)["frame-ancestors"] == ["'self'", CLINIC]
        assert "Cannot read the embed origins table" in caplog.text
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE referral_embed_later RENAME TO referral_embed_origin")


def test_hsts_is_sent_over_https_only(client):
    secure = client.get(f"{PREFIX}/", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"] == f"max-age={ONE_YEAR}"
    assert "Strict-Transport-Security" not in client.get(f"{PREFIX}/").headers


def test_hsts_follows_a_proxy_the_host_trusts(make_app):
    app = make_app()
    client = app.test_client()
    forwarded = {"X-Forwarded-Proto": "https"}
    # without ProxyFix the header is anyone's to send: it proves nothing
    assert "Strict-Transport-Security" not in client.get(f"{PREFIX}/", headers=forwarded).headers
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1)
    response = client.get(f"{PREFIX}/", headers=forwarded)
    assert response.headers["Strict-Transport-Security"] == f"max-age={ONE_YEAR}"


def test_hsts_can_be_switched_off_or_shortened(make_app):
    off = make_app(REFERRAL_HSTS_SECONDS=0).test_client()
    response = off.get(f"{PREFIX}/", base_url="https://localhost")
    assert "Strict-Transport-Security" not in response.headers
    short = make_app(REFERRAL_HSTS_SECONDS=300).test_client()
    response = short.get(f"{PREFIX}/", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=300"


def test_a_header_the_host_already_set_is_kept(app):
    host_policy = "default-src 'self' https://cdn.host.example"

    @app.before_request
    def host_headers() -> None:
        @after_this_request
        def choose(response):
            response.headers["Referrer-Policy"] = "same-origin"
            response.headers["Content-Security-Policy"] = host_policy
            response.headers["Cache-Control"] = "private, max-age=60"
            return response

    response = app.test_client().get(f"{PREFIX}/account/login")
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers.get_all("Content-Security-Policy") == [host_policy]
    assert response.headers["Cache-Control"] == "private, max-age=60"
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # the rest still comes


def test_the_hosts_own_pages_get_nothing_from_the_plugin(client):
    plugin = client.get(f"{PREFIX}/")
    assert plugin.headers["X-Content-Type-Options"] == "nosniff"
    host = client.get("/")
    for header in (
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "X-Frame-Options",
    ):
        assert header not in host.headers, header

from __future__ import annotations

import json
import re
import time

import pytest
from flask import url_for
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from referral.embed import FORM_TOKEN_SALT, form_token, form_token_valid, parse_origins, snippet

PREFIX = "/find-a-therapist"
CLINIC = "https://clinic.example"


def frame_ancestors(response) -> str:
    """The ``frame-ancestors`` directive of the page's one Content-Security-Policy."""
    policy = response.headers["Content-Security-Policy"]
    return next(d.strip() for d in policy.split(";") if d.strip().startswith("frame-ancestors"))


@pytest.fixture
def embed_app(make_app):
    return make_app(REFERRAL_EMBED_ORIGINS=[CLINIC, "http://127.0.0.1:8080"])


@pytest.fixture
def listed(add_practitioner):
    nearby = [add_practitioner(f"Near {i:02d}", (-33.87 - i / 1000, 151.21)) for i in range(1, 24)]
    hidden = add_practitioner("Pat Pending", (-33.869, 151.209), status="pending")
    return {"nearby": nearby, "hidden": hidden}


def test_origins_are_normalised_from_a_list_or_a_string():
    assert parse_origins(None) == []
    assert parse_origins(["HTTPS://Clinic.Example/", "http://127.0.0.1:8080"]) == [
        CLINIC,
        "http://127.0.0.1:8080",
    ]
    assert parse_origins(f"{CLINIC}, https://b.example  {CLINIC}") == [CLINIC, "https://b.example"]
    assert parse_origins(["http://[::1]:5000"]) == ["http://[::1]:5000"]


@pytest.mark.parametrize(
    "bad",
    [
        "*",
        "https://*.example.com",
        "https://clinic.example/page",
        "https://clinic.example; script-src *",
        "javascript:alert(1)",
        "ftp://clinic.example",
        "'self'",
    ],
)
def test_bad_origin_is_refused_at_start_up(make_app, bad):
    with pytest.raises(ValueError, match="is not an origin"):
        make_app(REFERRAL_EMBED_ORIGINS=[bad])


def test_plain_pages_may_only_be_framed_by_the_same_origin(embed_app, listed):
    client = embed_app.test_client()
    for url in (f"{PREFIX}/", f"{PREFIX}/?postcode=2000", f"{PREFIX}/practitioners/1"):
        response = client.get(url)
        assert frame_ancestors(response) == "frame-ancestors 'self'"
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_embed_pages_may_be_framed_by_the_configured_origins(embed_app, listed):
    client = embed_app.test_client()
    for path in ("", "?postcode=2000", "practitioners/999999"):
        url = f"{PREFIX}/embed/{path}"
        response = client.get(url)
        assert frame_ancestors(response) == f"frame-ancestors 'self' {CLINIC} http://127.0.0.1:8080"
        assert "X-Frame-Options" not in response.headers  # it cannot name several origins


def test_default_allows_only_the_same_origin_to_frame_embed_pages(client):
    response = client.get(f"{PREFIX}/embed/")
    assert frame_ancestors(response) == "frame-ancestors 'self'"


def test_embed_search_uses_the_bare_layout_and_keeps_links_embedded(embed_app, listed):
    response = embed_app.test_client().get(f"{PREFIX}/embed/?postcode=2000&per_page=10")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Harbour Back" not in html  # not the demo clinic's layout
    assert 'class="referral-embed"' in html and "embed-frame.js" in html
    assert f'action="{PREFIX}/embed/"' in html
    cards = re.findall(r'href="([^"]+)">Near \d\d<', html)
    assert len(cards) == 10 and all(c.startswith(f"{PREFIX}/embed/practitioners/") for c in cards)
    assert re.search(rf'rel="next" href="{PREFIX}/embed/\?[^"]*page=2', html)
    origins = json.loads(re.search(r"data-referral-parent-origins='([^']*)'", html).group(1))
    assert origins == ["http://localhost", CLINIC, "http://127.0.0.1:8080"]


def test_embed_practitioner_page(embed_app, listed):
    client = embed_app.test_client()
    first = listed["nearby"][0]
    response = client.get(f"{PREFIX}/embed/practitioners/{first.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert first.name in html and "Harbour Back" not in html
    assert f'href="{PREFIX}/embed/"' in html  # back to the embedded search
    assert client.get(f"{PREFIX}/embed/practitioners/{listed['hidden'].id}").status_code == 404


def test_embed_bad_input_gets_the_same_clear_4xx(embed_app, listed):
    client = embed_app.test_client()
    response = client.get(f"{PREFIX}/embed/?postcode=2000&radius_km=abc")
    assert response.status_code == 400
    assert "Choose a distance between" in response.get_data(as_text=True)
    assert client.get(f"{PREFIX}/embed/?postcode=9999").status_code == 404
    assert client.get(f"{PREFIX}/embedded/").status_code == 404


def test_embed_mode_can_be_left_explicitly(embed_app):
    with embed_app.test_request_context(f"{PREFIX}/embed/"):
        embed_app.preprocess_request()
        assert url_for("referral.index") == f"{PREFIX}/embed/"
        assert url_for("referral.index", _embed=None) == f"{PREFIX}/"
        assert url_for("referral.static", filename="x.css") == f"{PREFIX}/static/x.css"
    with embed_app.test_request_context(f"{PREFIX}/"):
        embed_app.preprocess_request()
        assert url_for("referral.practitioner", practitioner_id=3) == f"{PREFIX}/practitioners/3"


def test_embed_script_is_served_to_any_site(client):
    response = client.get(f"{PREFIX}/embed.js")
    assert response.status_code == 200
    assert response.mimetype in ("text/javascript", "application/javascript")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    body = response.get_data(as_text=True)
    assert "event.origin !== source.origin" in body and "referral:height" in body


def test_snippet_escapes_values_and_drops_unknown_attributes():
    html = snippet(
        "https://dir.example/find-a-therapist/embed.js",
        postcode='2000"><script>alert(1)</script>',
        radius_km=10,
        onload="alert(1)",
        modality=None,
    )
    assert html == (
        '<script src="https://dir.example/find-a-therapist/embed.js" '
        'data-postcode="2000&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" '
        'data-radius-km="10" async></script>'
    )


def test_demo_shows_the_snippet_to_copy(client):
    html = client.get("/for-websites").get_data(as_text=True)
    shown = (
        "&lt;script src=&#34;http://localhost/find-a-therapist/embed.js&#34; "
        "data-postcode=&#34;2000&#34;"
    )
    assert shown in html  # as text to copy
    assert '<script src="http://localhost/find-a-therapist/embed.js" data-postcode="2000"' in html
    assert 'href="/for-websites"' in client.get("/").get_data(as_text=True)


def test_origins_from_the_demo_environment(monkeypatch, tmp_path):
    from wsgi import create_app

    monkeypatch.setenv("FLASK_REFERRAL_DATABASE_URL", f"sqlite:///{tmp_path}/env.sqlite")
    monkeypatch.setenv("FLASK_REFERRAL_EMBED_ORIGINS", "https://a.example https://b.example:8443")
    monkeypatch.setenv("FLASK_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("FLASK_REFERRAL_PUBLIC_URL", "https://clinic.example")
    monkeypatch.setenv("FLASK_REFERRAL_GEOCODER_USER_AGENT", "clinic.example (a@clinic.example)")
    app = create_app()
    assert app.config["REFERRAL_EMBED_ORIGINS"] == ["https://a.example", "https://b.example:8443"]
    app.extensions["referral"].engine.dispose()


def test_form_token_is_bound_to_practitioner_key_secret_and_age(make_app):
    app = make_app()
    with app.test_request_context():
        token = form_token(7, "key-1")
        assert form_token_valid(token, 7, "key-1")
        assert not form_token_valid(token, 8, "key-1")  # another practitioner
        assert not form_token_valid(token, 7, "key-2")  # another form
        assert not form_token_valid(token, 7, None)
        assert not form_token_valid(None, 7, "key-1")
        assert not form_token_valid(token[:-2] + "xx", 7, "key-1")  # tampered
        # made two hours ago: older than REFERRAL_EMBED_FORM_MAX_AGE (an hour)
        old = URLSafeTimedSerializer(
            app.secret_key, salt=FORM_TOKEN_SALT, signer=_TwoHoursAgo
        ).dumps([7, "key-1"])
        assert not form_token_valid(old, 7, "key-1")
    with make_app(SECRET_KEY="another").test_request_context():
        assert not form_token_valid(token, 7, "key-1")
    with make_app(REFERRAL_EMBED_FORM_MAX_AGE=3 * 3600).test_request_context():
        assert form_token_valid(old, 7, "key-1")


class _TwoHoursAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 7200

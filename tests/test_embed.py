from __future__ import annotations

import json
import re
import time

import pytest
from flask import url_for
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from referral import embed_origins
from referral.embed import (
    FORM_TOKEN_SALT,
    Mode,
    SnippetOptions,
    accent_colour,
    form_token,
    form_token_valid,
    parse_origins,
    readable_accent,
    snippet,
    snippet_for_site,
)
from referral.embed_origins import check_origin
from referral.errors import InvalidInput
from referral.models import EmbedOrigin
from referral.theme import contrast_ratio
from tests.conftest import csrf_token, post_form, sign_in

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
    assert shown in html  # as text to copy, in a readonly textarea
    assert '<textarea id="snippet-code" class="referral-snippet" readonly' in html
    assert (
        '<a class="referral-embed-link" href="http://localhost/find-a-therapist/?postcode=2000">'
        'Find a therapist near you</a><script src="http://localhost/find-a-therapist/embed.js" '
        'data-postcode="2000"'
    ) in html  # a link first, for a visitor whose browser never runs the script
    assert "Ask us to add your website" in html
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


# --- websites an admin allows: the address they type ----------------------------------


@pytest.mark.parametrize(
    ("typed", "origin"),
    [
        ("https://clinic.example", "https://clinic.example"),
        ("  HTTPS://Clinic.Example/  ", "https://clinic.example"),
        ("https://clinic.example:443", "https://clinic.example"),
        ("https://clinic.example:8443/", "https://clinic.example:8443"),
        ("https://www.physio-café.example", "https://www.xn--physio-caf-k7a.example"),
        ("https://203.0.113.5", "https://203.0.113.5"),
        ("https://clinic.example.", "https://clinic.example"),
    ],
)
def test_a_website_address_is_normalised_to_its_origin(typed, origin):
    assert check_origin(typed) == origin


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("", "Enter the website's address"),
        ("clinic.example", "Start the address with https://, for example https://clinic.example"),
        ("http://clinic.example", "Use the secure address, starting with https://"),
        ("ftp://clinic.example", "starts with https://"),
        ("javascript:alert(1)", "Start the address with https://"),
        ("https://clinic.example/book-now", "https://clinic.example instead of"),
        ("https://clinic.example/?utm=1", "without a page"),
        ("https://clinic.example/#top", "without a page"),
        ("https://*.clinic.example", "wildcards"),
        ("https://user:pw@clinic.example", "name or password"),
        ("https://clinic.example:port", "port that is not a number"),
        ("https://clinic.example:99999", "port that is not a number"),
        ("https://clinic", "has a dot"),
        ("https://clinic_.example", "not a website name"),
        ("https://clinic.example; script-src *", "not a website address"),
        ("https://clinic.example\r\nSet-Cookie: x", "not a website address"),
        ("https://" + "a" * 300 + ".example", "not a website address"),
        ("https://", "no website name"),
    ],
)
def test_a_bad_website_address_is_refused_in_plain_words(typed, words):
    with pytest.raises(InvalidInput) as refused:
        check_origin(typed)
    assert refused.value.code == "invalid_origin"
    assert words in refused.value.message
    assert "origin" not in refused.value.message.lower()  # an operator's words, not ours


def test_plain_http_only_for_this_computer_and_only_while_testing():
    assert check_origin("http://127.0.0.1:8080", allow_local_http=True) == "http://127.0.0.1:8080"
    assert check_origin("http://localhost:80", allow_local_http=True) == "http://localhost"
    assert check_origin("http://[::1]:5000", allow_local_http=True) == "http://[::1]:5000"
    with pytest.raises(InvalidInput, match="only while testing on this computer"):
        check_origin("http://127.0.0.1:8080")
    with pytest.raises(InvalidInput, match="secure address"):
        check_origin("http://clinic.example", allow_local_http=True)


# --- the admin page "Websites that embed the finder" -------------------------------------

EMBEDS = f"{PREFIX}/admin/embeds"


@pytest.fixture
def admin_client(client, make_account):
    make_account("ada@admin.example", admin=True, listing=False)
    sign_in(client, "ada@admin.example")
    return client


def _stored(session) -> list[str]:
    session.expire_all()
    return [row.origin for row in session.query(EmbedOrigin).order_by(EmbedOrigin.id)]


def test_an_admin_adds_a_website_and_its_pages_may_frame_the_finder_at_once(admin_client, session):
    assert frame_ancestors(admin_client.get(f"{PREFIX}/embed/")) == "frame-ancestors 'self'"
    page = admin_client.get(EMBEDS)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>Websites that embed the finder</h1>" in html
    assert f'href="{EMBEDS}" aria-current="page"' in html  # in the admin's navigation
    assert "No website may show the finder yet" in html

    response = post_form(
        admin_client, EMBEDS, {"origin": "HTTPS://Sunrise.Example/", "note": "Sunrise Wellness"}
    )
    assert response.status_code == 302
    assert _stored(session) == ["https://sunrise.example"]
    row = session.query(EmbedOrigin).one()
    assert (row.note, row.added_by) == ("Sunrise Wellness", "ada@admin.example")
    listed = admin_client.get(EMBEDS).get_data(as_text=True)
    assert "https://sunrise.example can now show the finder" in listed
    assert "<td>https://sunrise.example</td>" in listed and "Sunrise Wellness" in listed

    embedded = admin_client.get(f"{PREFIX}/embed/")
    assert frame_ancestors(embedded) == "frame-ancestors 'self' https://sunrise.example"
    origins = re.search(r"data-referral-parent-origins='([^']*)'", embedded.get_data(as_text=True))
    assert json.loads(origins.group(1)) == ["http://localhost", "https://sunrise.example"]
    # plain pages still refuse every frame but their own
    assert frame_ancestors(admin_client.get(f"{PREFIX}/")) == "frame-ancestors 'self'"


def test_a_removed_website_can_no_longer_frame_the_finder(admin_client, session):
    post_form(admin_client, EMBEDS, {"origin": "https://a.example"})
    post_form(admin_client, EMBEDS, {"origin": "https://b.example"})
    a = session.query(EmbedOrigin).filter_by(origin="https://a.example").one()
    token = csrf_token(admin_client, EMBEDS)
    response = admin_client.post(f"{EMBEDS}/{a.id}/remove", data={"csrf_token": token})
    assert response.status_code == 302
    assert _stored(session) == ["https://b.example"]
    assert "https://a.example can no longer show the finder" in admin_client.get(EMBEDS).get_data(
        as_text=True
    )
    embedded = admin_client.get(f"{PREFIX}/embed/")
    assert frame_ancestors(embedded) == "frame-ancestors 'self' https://b.example"
    # gone already: 404, and nothing else changes
    again = admin_client.post(f"{EMBEDS}/{a.id}/remove", data={"csrf_token": token})
    assert again.status_code == 404
    assert _stored(session) == ["https://b.example"]


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("", "Enter the website&#39;s address"),
        ("sunrise.example", "Start the address with https://"),
        ("https://sunrise.example/contact", "without a page: https://sunrise.example instead"),
        ("http://sunrise.example", "Use the secure address"),
    ],
)
def test_a_bad_address_gets_the_form_back_with_the_reason_and_nothing_stored(
    admin_client, session, typed, words
):
    response = post_form(admin_client, EMBEDS, {"origin": typed})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert words in html
    assert "<title>Error: Websites that embed the finder" in html
    assert 'href="#referral-origin"' in html and 'aria-invalid="true"' in html
    assert _stored(session) == []


def test_a_website_already_allowed_is_refused(make_app, make_account, session):
    app = make_app(REFERRAL_EMBED_ORIGINS=[CLINIC])
    client = app.test_client()
    make_account("ada@admin.example", admin=True, listing=False)
    sign_in(client, "ada@admin.example")
    assert post_form(client, EMBEDS, {"origin": "https://b.example"}).status_code == 302
    again = post_form(client, EMBEDS, {"origin": "https://B.example:443/"})
    assert again.status_code == 400
    assert "https://b.example is already on the list." in again.get_data(as_text=True)
    configured = post_form(client, EMBEDS, {"origin": CLINIC})
    assert configured.status_code == 400
    assert "already allowed by the server&#39;s settings" in configured.get_data(as_text=True)
    assert _stored(session) == ["https://b.example"]
    page = client.get(EMBEDS).get_data(as_text=True)
    assert f"<td>{CLINIC}</td><td>Server settings</td>" in page  # shown, not removable
    assert f"Remove {CLINIC}" not in page


def test_without_the_form_token_nothing_is_added_or_removed(admin_client, session):
    assert admin_client.post(EMBEDS, data={"origin": "https://a.example"}).status_code == 400
    assert _stored(session) == []
    post_form(admin_client, EMBEDS, {"origin": "https://a.example"})
    row = session.query(EmbedOrigin).one()
    refused = admin_client.post(f"{EMBEDS}/{row.id}/remove")
    assert refused.status_code == 400
    assert "The form expired" in refused.get_data(as_text=True)
    assert _stored(session) == ["https://a.example"]


def test_only_an_admin_sees_or_changes_the_websites(client, make_account, session):
    session.add(EmbedOrigin(origin="https://secret-clinic.example", note="Dr Private"))
    session.commit()
    row = session.query(EmbedOrigin).one()
    # a visitor is sent to sign in
    for response in (
        client.get(EMBEDS),
        client.post(EMBEDS, data={"origin": "https://evil.example"}),
        client.post(f"{EMBEDS}/{row.id}/remove"),
    ):
        assert response.status_code == 302
        assert "/account/login" in response.headers["Location"]
    # a practitioner is refused, with a page that is not the list
    make_account("pat@practice.example")
    sign_in(client, "pat@practice.example")
    page = client.get(EMBEDS)
    assert page.status_code == 403
    assert "Dr Private" not in page.get_data(as_text=True)
    token = csrf_token(client, f"{PREFIX}/account/listing")
    for response in (
        client.post(EMBEDS, data={"csrf_token": token, "origin": "https://evil.example"}),
        client.post(f"{EMBEDS}/{row.id}/remove", data={"csrf_token": token}),
    ):
        assert response.status_code == 403
    assert _stored(session) == ["https://secret-clinic.example"]
    assert 'href="/find-a-therapist/admin/embeds"' not in client.get(f"{PREFIX}/inbox").get_data(
        as_text=True
    )


def test_admin_pages_are_private(admin_client):
    response = admin_client.get(EMBEDS)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


# --- how soon other processes see a change ------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_another_process_sees_a_change_within_the_refresh_time(make_app, session):
    # two apps on one database stand for two worker processes, each with its own copy
    here = make_app(REFERRAL_EMBED_ORIGINS_REFRESH=30)
    there = make_app(REFERRAL_EMBED_ORIGINS_REFRESH=30)
    clock = Clock()
    there.extensions["referral"].embed_origins.clock = clock
    there_client = there.test_client()
    assert frame_ancestors(there_client.get(f"{PREFIX}/embed/")) == "frame-ancestors 'self'"

    with here.test_request_context():
        embed_origins.add(session, "https://a.example")
        assert embed_origins.allowed() == ["https://a.example"]  # at once where it was made
    clock.now += 29
    assert frame_ancestors(there_client.get(f"{PREFIX}/embed/")) == "frame-ancestors 'self'"
    clock.now += 2
    assert (
        frame_ancestors(there_client.get(f"{PREFIX}/embed/"))
        == "frame-ancestors 'self' https://a.example"
    )


def test_refresh_zero_reads_the_table_on_every_embed_page(make_app, session):
    app = make_app(REFERRAL_EMBED_ORIGINS_REFRESH=0)
    client = app.test_client()
    assert frame_ancestors(client.get(f"{PREFIX}/embed/")) == "frame-ancestors 'self'"
    session.add(EmbedOrigin(origin="https://b.example"))  # written by some other process
    session.commit()
    assert (
        frame_ancestors(client.get(f"{PREFIX}/embed/"))
        == "frame-ancestors 'self' https://b.example"
    )


# --- options a clinic picks: accent, a starting condition or modality, no heading --------


@pytest.mark.parametrize(
    ("value", "accent"),
    [
        ("#6B2D5C", "6b2d5c"),
        ("6b2d5c", "6b2d5c"),
        ("#abc", "aabbcc"),
        ("red", None),
        ("#6b2d5c;}body{display:none", None),
        ("#12345", None),
        ("", None),
        (None, None),
    ],
)
def test_an_accent_is_six_hex_digits_or_nothing(value, accent):
    assert accent_colour(value) == accent


def test_options_become_the_embed_segment():
    assert Mode().segment == "embed"
    assert Mode("6b2d5c").segment == "embed-6b2d5c"
    assert Mode(plain=True).segment == "embed-plain"
    assert Mode("6b2d5c", True).segment == "embed-6b2d5c-plain"
    assert Mode.parse("embed-6b2d5c-plain") == Mode("6b2d5c", True)
    assert Mode.parse("embed-plain") == Mode(None, True)


def test_snippet_options_keep_only_known_values():
    options = SnippetOptions.from_args(
        {
            "postcode": "2000",
            "condition": "sciatica",
            "modality": "not-a-modality",
            "accent": "url(javascript:alert(1))",
            "hide_heading": "1",
        },
        conditions=["sciatica"],
        modalities=["yoga"],
    )
    assert options == SnippetOptions(postcode="2000", condition="sciatica", hide_heading=True)
    assert options.data() == {
        "postcode": "2000",
        "condition": "sciatica",
        "modality": "",
        "accent": "",
        "hide_heading": "true",
    }


def test_a_light_accent_is_darkened_until_it_reads_on_the_page(app):
    with app.app_context():
        for asked in ("ffcc00", "ffffff", "00ff00", "0b5c6b"):
            colour = readable_accent(asked)
            for background in ("#ffffff", "#f5f7f8"):
                assert contrast_ratio(colour, background) >= 4.5, (asked, colour)
            assert contrast_ratio("#ffffff", colour) >= 4.5  # the buttons' text on it
        assert readable_accent("0b5c6b") == "#0b5c6b"  # dark enough already: kept


def test_the_embed_segment_styles_every_page_in_the_frame(embed_app, listed):
    client = embed_app.test_client()
    response = client.get(f"{PREFIX}/embed-6b2d5c-plain/?postcode=2000")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    style = f"{PREFIX}/embed/style/embed-6b2d5c-plain.css"
    assert f'<link rel="stylesheet" href="{style}">' in html
    assert '<body class="referral-embed referral-embed--plain"' in html
    # every link and the search form stay in the same mode
    assert f'action="{PREFIX}/embed-6b2d5c-plain/"' in html
    cards = re.findall(r'href="([^"]+)">Near \d\d<', html)
    assert cards and all(c.startswith(f"{PREFIX}/embed-6b2d5c-plain/practitioners/") for c in cards)
    # a listing keeps the colour but not the hidden heading: its heading is the name
    listing = client.get(cards[0]).get_data(as_text=True)
    assert f'href="{style}"' in listing and "referral-embed--plain" not in listing
    css = client.get(style)
    assert css.mimetype == "text/css"
    body = css.get_data(as_text=True)
    assert ":root{--referral-accent:#6b2d5c;--referral-accent-text:#ffffff}" in body
    assert ".referral-embed--plain" in body and "clip:rect(0 0 0 0)" in body
    # the plain frame has no extra stylesheet
    plain = client.get(f"{PREFIX}/embed/?postcode=2000").get_data(as_text=True)
    assert "embed/style/" not in plain and "referral-embed--plain" not in plain


@pytest.mark.parametrize(
    "url",
    [
        f"{PREFIX}/embed-red/",
        f"{PREFIX}/embed-6b2d5c;x/",
        f"{PREFIX}/embed-6B2D5C/",
        f"{PREFIX}/embed-plain-6b2d5c/",
        f"{PREFIX}/embed/style/embed-url(x).css",
        f"{PREFIX}/embed/style/red.css",
    ],
)
def test_a_bad_embed_option_matches_nothing(client, url):
    assert client.get(url).status_code == 404


def test_the_snippet_page_builds_the_snippet_from_the_options(client):
    response = client.get(
        "/for-websites?options=1&postcode=2010&condition=sciatica&modality=yoga"
        "&accent=%236B2D5C&hide_heading=1"
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert (
        '<script src="http://localhost/find-a-therapist/embed.js" data-postcode="2010" '
        'data-condition="sciatica" data-modality="yoga" data-accent="#6b2d5c" '
        'data-hide-heading="true" data-title="Find a therapist near you" async></script>'
    ) in html
    frame = (
        'src="http://localhost/find-a-therapist/embed-6b2d5c-plain/'
        '?postcode=2010&amp;condition=sciatica&amp;modality=yoga"'
    )
    assert frame in html  # the script-free frame carries the same options
    assert '<option value="sciatica" selected>' in html and 'value="#6b2d5c"' in html


def test_a_bad_colour_on_the_snippet_page_is_named_and_left_out(client):
    html = client.get(
        "/for-websites?options=1&accent=%22%3E%3Cscript%3Ealert(1)%3C/script%3E"
    ).get_data(as_text=True)
    assert "is not a colour we can use, so the usual colour is kept" in html
    assert "<script>alert(1)" not in html
    assert "data-accent" not in html
    assert "data-postcode" not in html  # the form was sent without a postcode: none


def test_the_snippet_page_says_whether_a_website_is_allowed(make_app, session):
    client = make_app(REFERRAL_EMBED_ORIGINS=[CLINIC]).test_client()
    session.add(EmbedOrigin(origin="https://sunrise.example"))
    session.commit()
    answers = {
        "https://Sunrise.Example/": "Yes: https://sunrise.example can show the finder.",
        CLINIC: f"Yes: {CLINIC} can show the finder.",
        "https://other.example": "Not yet: https://other.example is not on the list.",
        "other.example": "Start the address with https://",
    }
    for site, answer in answers.items():
        html = client.get("/for-websites", query_string={"options": 1, "site": site}).get_data(
            as_text=True
        )
        assert answer in html, site


def test_the_plugin_has_its_own_page_for_websites(client):
    response = client.get(f"{PREFIX}/for-websites")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>Show the therapist finder on your website</h1>" in html
    assert 'id="snippet-code"' in html and "snippet.js" in html


def test_the_snippets_link_starts_where_the_frame_does(app):
    with app.test_request_context():
        one = snippet_for_site(practitioner=7, title='Pat "the" Physio')
        assert one.startswith(
            '<a class="referral-embed-link" href="http://localhost/find-a-therapist/'
            'practitioners/7">Pat &#34;the&#34; Physio</a><script '
        )
        search = snippet_for_site(postcode="2000", condition="sciatica", accent="#6b2d5c")
        assert search.startswith(
            '<a class="referral-embed-link" href="http://localhost/find-a-therapist/'
            '?postcode=2000&amp;condition=sciatica">Find a therapist</a>'
        )
    bare = snippet("https://dir.example/embed.js", link_url='https://dir.example/"x', title="<b>")
    assert bare.startswith(
        '<a class="referral-embed-link" href="https://dir.example/&#34;x">&lt;b&gt;</a>'
    )

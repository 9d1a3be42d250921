"""The referral form on a listing, end to end with real CSRF and a real SMTP server."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from referral.models import Condition, OutboxMessage, ReferralEvent, ReferralRequest
from referral.referrals import reference

PREFIX = "/find-a-therapist"
SECRET_MESSAGE = "Sharp pain since lifting my grandson, worse at night"


@pytest.fixture
def app(make_app, smtp_server):
    return make_app(**smtp_server.config)


@pytest.fixture
def session(unbound_session):
    return unbound_session


@pytest.fixture
def nina(add_practitioner):
    return add_practitioner(
        "Nina Near", (-33.87, 151.21), conditions=("low-back-pain",), email="nina@clinic.example"
    )


def hidden_inputs(html: str) -> dict[str, str]:
    return dict(
        re.findall(
            r'<input[^>]*name="(csrf_token|idempotency_key|form_token)"[^>]*value="([^"]*)"', html
        )
    )


def form_for(client, practitioner_id: int, *, embed: bool = False, **fields) -> dict[str, str]:
    """The listing's form filled in, with the hidden fields of the page ``client`` got."""
    page = f"{PREFIX}/embed" if embed else PREFIX
    html = client.get(f"{page}/practitioners/{practitioner_id}").get_data(as_text=True)
    data = {
        **hidden_inputs(html),
        "patient_name": "Pat Patient",
        "email": "pat@example.com",
        "phone": "0412 345 678",
        "postcode": "2000",
        "condition": "low-back-pain",
        "message": SECRET_MESSAGE,
        "consent": "y",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_listing_shows_the_form_with_fixed_field_names(client, nina):
    html = client.get(f"{PREFIX}/practitioners/{nina.id}").get_data(as_text=True)
    for name in ("patient_name", "email", "phone", "postcode", "condition", "message", "consent"):
        assert f'name="{name}"' in html, name
    assert 'name="csrf_token"' in html and 'name="idempotency_key"' in html
    assert 'name="website"' in html  # the honeypot
    assert 'value="low-back-pain"' in html and "Low back pain" in html
    assert "I agree that this practitioner may receive the details I give here" in html


def test_submission_saves_referral_sends_mail_and_says_what_happens_next(
    client, session, nina, smtp_server
):
    response = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(client, nina.id),
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Your request has been received" in page and "What happens next" in page

    referral = session.scalars(select(ReferralRequest)).one()
    assert referral.practitioner_id == nina.id and referral.referrer_id is None
    assert referral.status == "sent"
    assert referral.email == "pat@example.com"
    assert referral.phone == "+61412345678"
    assert referral.condition.slug == "low-back-pain"
    assert referral.message == SECRET_MESSAGE
    assert referral.consent_version == "2026-12" and referral.consent_at is not None
    assert len(referral.id) >= 20
    assert [e.action for e in referral.events] == ["created"]
    assert reference(referral.id) in page

    # delivered right after the commit, to the practitioner and to the patient
    assert sorted(r for m in smtp_server.received for r in m.rcpt_tos) == [
        "nina@clinic.example",
        "pat@example.com",
    ]
    assert all(m.sent_at for m in session.scalars(select(OutboxMessage)))


def test_no_health_details_in_any_email(client, session, nina, smtp_server):
    client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(client, nina.id),
    )
    assert len(smtp_server.received) == 2
    for mail in smtp_server.received:
        whole = mail.message.as_string()
        for secret in (
            SECRET_MESSAGE,
            "Low back pain",
            "low-back-pain",
            "0412 345 678",
            "412345678",
        ):
            assert secret not in whole and secret not in mail.text and secret not in mail.html
    to_nina = smtp_server.to("nina@clinic.example")[0]
    assert "Pat Patient" not in to_nina.message.as_string()
    assert "pat@example.com" not in to_nina.message.as_string()
    assert f"http://localhost{PREFIX}/inbox" in to_nina.text
    ack = smtp_server.to("pat@example.com")[0]
    assert "What happens next" in ack.text and f"{PREFIX}/referrals/cancel/" in ack.text


def test_double_submit_makes_one_referral_and_the_same_confirmation(
    client, session, nina, smtp_server
):
    data = form_for(client, nina.id)
    first = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    second = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert first.status_code == second.status_code == 200
    referral = session.scalars(select(ReferralRequest)).one()
    for response in (first, second):
        assert reference(referral.id) in response.get_data(as_text=True)
    assert count(session, OutboxMessage) == 2
    assert len(smtp_server.received) == 2


def test_missing_csrf_token_is_400_and_nothing_saved_or_sent(client, session, nina, smtp_server):
    data = form_for(client, nina.id)
    del data["csrf_token"]
    response = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert response.status_code == 400
    assert "Nothing was saved" in response.get_data(as_text=True)
    assert count(session, ReferralRequest) == 0 and count(session, OutboxMessage) == 0
    assert smtp_server.received == []


def test_forged_csrf_token_is_400(client, session, nina):
    data = form_for(client, nina.id, csrf_token="forged.token.value")
    assert (
        client.post(
            f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
        ).status_code
        == 400
    )
    assert count(session, ReferralRequest) == 0


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("email", "pat@@example", "Enter your email address in the form name@example.com"),
        ("phone", "12345", "Please check the phone number"),
        ("phone", "not a phone", "Please check the phone number"),
        ("patient_name", "", "Please tell us your name."),
        # someone else's address and a link in the name: the site would mail them the link
        ("patient_name", "Eve ... visit https://evil.example/login now", "without a web address"),
        ("patient_name", "Eve, see evil.example/login", "without a web address"),
        ("patient_name", "Eve <b>urgent</b>", "the signs &lt; and &gt;"),
        ("consent", None, "Please tick the box to agree"),
        ("condition", "made-up-condition", "Not a valid choice"),
    ],
)
def test_invalid_input_shows_the_form_again_with_errors_and_input_kept(
    client, session, nina, smtp_server, field, value, error
):
    data = form_for(client, nina.id, **{field: value})
    response = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert error in html
    assert "Please check the highlighted fields" in html
    assert 'value="Pat Patient"' in html or field == "patient_name"
    assert SECRET_MESSAGE in html  # the message is kept
    if field == "phone":
        assert f'value="{value}"' in html  # the wrong number is shown for correcting
    else:
        assert 'value="+61412345678"' in html  # checked and written in full
    assert count(session, ReferralRequest) == 0 and count(session, OutboxMessage) == 0
    assert smtp_server.received == []


def test_oversized_message_gets_a_clear_error(client, session, nina):
    data = form_for(client, nina.id, message="x" * 2001)
    response = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert response.status_code == 400
    assert "Please keep the message to 2000 characters (it has 2001)." in response.get_data(
        as_text=True
    )
    assert count(session, ReferralRequest) == 0


def test_message_limit_is_a_setting(make_app, smtp_server, session, nina):
    app = make_app(REFERRAL_MESSAGE_MAX_LENGTH=10, **smtp_server.config)
    client = app.test_client()
    data = form_for(client, nina.id, message="eleven chars")
    response = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert "to 10 characters" in response.get_data(as_text=True)


def test_phone_region_is_a_setting(make_app, smtp_server, session, nina):
    app = make_app(REFERRAL_PHONE_REGION="GB", **smtp_server.config)
    client = app.test_client()
    data = form_for(client, nina.id, phone="020 7946 0958")
    assert (
        client.post(
            f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
        ).status_code
        == 200
    )
    assert session.scalars(select(ReferralRequest)).one().phone == "+442079460958"


def test_honeypot_looks_accepted_but_nothing_is_saved(client, session, nina, smtp_server):
    data = form_for(client, nina.id, website="http://spam.example")
    response = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert response.status_code == 200
    assert "Your request has been received" in response.get_data(as_text=True)
    assert count(session, ReferralRequest) == 0 and count(session, OutboxMessage) == 0
    assert smtp_server.received == []


def test_unknown_or_unlisted_practitioner_is_404(client, add_practitioner, session):
    hidden = add_practitioner("Pat Pending", (-33.8, 151.2), status="pending")
    data = form_for(client, hidden.id)
    assert (
        client.post(
            f"{PREFIX}/practitioners/{hidden.id}/referrals", follow_redirects=True, data=data
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"{PREFIX}/practitioners/999999/referrals", follow_redirects=True, data=data
        ).status_code
        == 404
    )
    assert count(session, ReferralRequest) == 0


def test_get_on_the_form_url_goes_to_the_listing(client, nina):
    response = client.get(f"{PREFIX}/practitioners/{nina.id}/referrals")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/practitioners/{nina.id}")


def test_host_form_without_idempotency_key_is_accepted(client, session, nina):
    data = form_for(client, nina.id, idempotency_key=None)
    assert (
        client.post(
            f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
        ).status_code
        == 200
    )
    assert count(session, ReferralRequest) == 1


def test_smtp_down_keeps_referral_and_sends_later(
    make_app, session, nina, closed_port, smtp_server
):
    down = make_app(REFERRAL_SMTP_PORT=closed_port, REFERRAL_OUTBOX_BACKOFF_SECONDS=0)
    client = down.test_client()
    response = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(client, nina.id),
    )
    assert response.status_code == 200
    assert "Your request has been received" in response.get_data(as_text=True)
    assert count(session, ReferralRequest) == 1
    messages = session.scalars(select(OutboxMessage)).all()
    assert len(messages) == 2
    # the request only committed them; the worker tries them, and the server is down
    assert all(m.sent_at is None and m.attempts == 0 for m in messages)
    result = down.test_cli_runner().invoke(args=["referral", "send-outbox"])
    assert "sent 0, failed 2, given up 0; 2 waiting" in result.output
    session.expire_all()
    assert all(m.attempts == 1 and "ConnectionRefusedError" in m.last_error for m in messages)

    # the server is back: the worker command sends what waited
    back = make_app(REFERRAL_OUTBOX_BACKOFF_SECONDS=0, **smtp_server.config)
    result = back.test_cli_runner().invoke(args=["referral", "send-outbox"])
    assert result.exit_code == 0, result.output
    assert "sent 2, failed 0" in result.output
    assert sorted(r for m in smtp_server.received for r in m.rcpt_tos) == [
        "nina@clinic.example",
        "pat@example.com",
    ]
    session.expire_all()
    assert all(m.sent_at and m.attempts == 2 and m.last_error is None for m in messages)


def test_a_silent_mail_server_holds_up_no_page(make_app, session, nina, black_hole):
    """The background sender is stuck on a server that accepts and never answers; pages,
    referrals included, answer all the same and never connect to it themselves."""
    app = make_app(
        REFERRAL_BACKGROUND_SENDER=True,
        REFERRAL_SMTP_PORT=black_hole.port,
        REFERRAL_SMTP_TIMEOUT=60,
    )
    client = app.test_client()
    first = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(client, nina.id),
    )
    assert first.status_code == 200
    assert black_hole.wait_for_connections(1), "the background sender never tried"
    # the sender now waits on the silent server; a page and another referral do not
    data = form_for(client, nina.id, email="sam@example.com", patient_name="Sam Lee")
    second = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert second.status_code == 200
    assert client.get(f"{PREFIX}/?postcode=2000").status_code == 200
    assert black_hole.connections == 1
    assert count(session, ReferralRequest) == 2
    assert count(session, OutboxMessage) == 4
    black_hole.close()
    app.extensions["referral"].sender.stop()


def test_fifty_concurrent_submissions(make_app, session, nina, smtp_server):
    # fifty patients behind one address: above the default rate limit, on purpose
    app = make_app(REFERRAL_REFERRAL_RATE_LIMIT="100 per hour", **smtp_server.config)

    def submit(n: int) -> int:
        # each thread has its own client and app context: its own cookie and CSRF token
        client = app.test_client()
        data = form_for(client, nina.id, email=f"patient{n}@example.com", patient_name=f"P {n}")
        return client.post(
            f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
        ).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(submit, range(50)))
    assert statuses == [200] * 50
    assert count(session, ReferralRequest) == 50
    assert count(session, OutboxMessage) == 100
    assert count(session, ReferralEvent) == 50
    # the requests sent nothing themselves; one worker pass sends each message once
    result = app.test_cli_runner().invoke(args=["referral", "send-outbox"])
    assert "sent 100, failed 0" in result.output
    again = app.test_cli_runner().invoke(args=["referral", "send-outbox"])
    assert "sent 0, failed 0, given up 0; nothing waiting" in again.output
    ids = [m.message["X-Referral-Outbox-Id"] for m in smtp_server.received]
    assert len(ids) == 100 and len(set(ids)) == 100
    patients = sorted(
        r for m in smtp_server.received for r in m.rcpt_tos if r != "nina@clinic.example"
    )
    assert patients == sorted(f"patient{n}@example.com" for n in range(50))


def test_condition_is_optional(client, session, nina):
    data = form_for(client, nina.id, condition="")
    assert (
        client.post(
            f"{PREFIX}/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
        ).status_code
        == 200
    )
    assert session.scalars(select(ReferralRequest)).one().condition_id is None
    assert session.scalars(select(Condition)).first() is not None


def cancel_link(smtp_server) -> str:
    ack = smtp_server.to("pat@example.com")[0]
    return re.search(r"http://localhost(\S+/referrals/cancel/\S+)", ack.text).group(1)


def test_patient_cancels_through_the_signed_link(client, session, nina, smtp_server):
    client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(client, nina.id),
    )
    url = cancel_link(smtp_server)
    smtp_server.received.clear()
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Cancel your request to Nina Near?" in html
    referral = session.scalars(select(ReferralRequest)).one()
    assert referral.status == "sent"  # opening the link (a mail scanner may) changes nothing
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    assert client.post(url).status_code == 400  # no CSRF token
    response = client.post(url, follow_redirects=True, data={"csrf_token": token})
    assert response.status_code == 200
    assert "Your request is cancelled" in response.get_data(as_text=True)
    session.refresh(referral)
    assert referral.status == "cancelled"
    assert [(e.actor, e.action) for e in referral.events][-1] == ("patient", "cancelled")
    [notice] = smtp_server.to("nina@clinic.example")
    assert "was cancelled" in notice.text and SECRET_MESSAGE not in notice.message.as_string()
    # a second press is harmless
    again = client.post(url, follow_redirects=True, data={"csrf_token": token})
    assert again.status_code == 200 and len(smtp_server.received) == 1
    assert "already cancelled" in client.get(url).get_data(as_text=True)


def test_tampered_cancel_token_is_404_and_changes_nothing(client, session, nina, smtp_server):
    client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(client, nina.id),
    )
    url = cancel_link(smtp_server)
    referral = session.scalars(select(ReferralRequest)).one()
    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    for bad in (
        tampered,
        f"{PREFIX}/referrals/cancel/{referral.id}",
        f"{PREFIX}/referrals/cancel/x",
    ):
        assert client.get(bad).status_code == 404
        assert client.post(bad).status_code == 404
    session.refresh(referral)
    assert referral.status == "sent"


def test_cancel_link_of_another_app_secret_is_404(make_app, smtp_server, session, nina):
    other = make_app(SECRET_KEY="another-secret", **smtp_server.config)
    client = other.test_client()
    client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(client, nina.id),
    )
    url = cancel_link(smtp_server)
    mine = make_app(**smtp_server.config).test_client()
    assert mine.get(url).status_code == 404


def test_cancelling_a_declined_referral_is_refused(client, session, nina, smtp_server):
    client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals",
        follow_redirects=True,
        data=form_for(client, nina.id),
    )
    url = cancel_link(smtp_server)
    referral = session.scalars(select(ReferralRequest)).one()
    referral.status = "declined"
    session.commit()
    html = client.get(url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post(url, follow_redirects=True, data={"csrf_token": token})
    assert response.status_code == 409
    assert "cannot become cancelled" in response.get_data(as_text=True)


# --- the form inside an iframe on another site: no session cookie comes back ------------


@pytest.fixture
def framed(app):
    """A browser in a cross-site iframe: it keeps none of the plugin's cookies."""
    return app.test_client(use_cookies=False)


def test_embedded_form_is_sent_without_the_session_cookie(framed, session, nina, smtp_server):
    data = form_for(framed, nina.id, embed=True)
    assert data["form_token"] and data["idempotency_key"]
    url = f"{PREFIX}/embed/practitioners/{nina.id}/referrals"
    response = framed.post(url, follow_redirects=True, data=data)
    assert response.status_code == 200
    assert "Your request has been received" in response.get_data(as_text=True)
    referral = session.scalars(select(ReferralRequest)).one()
    assert referral.practitioner_id == nina.id and referral.referrer_id is None
    assert referral.idempotency_key == data["idempotency_key"]
    assert sorted(r for m in smtp_server.received for r in m.rcpt_tos) == [
        "nina@clinic.example",
        "pat@example.com",
    ]
    # the same form sent again (a double click, a resend) makes no second referral
    assert framed.post(url, follow_redirects=True, data=data).status_code == 200
    assert count(session, ReferralRequest) == 1 and len(smtp_server.received) == 2


def test_embedded_form_with_errors_comes_back_with_a_fresh_token(framed, session, nina):
    data = form_for(framed, nina.id, embed=True, email="not an email")
    response = framed.post(
        f"{PREFIX}/embed/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Enter your email address in the form name@example.com" in html
    again = {**data, **hidden_inputs(html), "email": "pat@example.com"}
    assert again["idempotency_key"] == data["idempotency_key"]
    url = f"{PREFIX}/embed/practitioners/{nina.id}/referrals"
    assert framed.post(url, follow_redirects=True, data=again).status_code == 200
    assert count(session, ReferralRequest) == 1


@pytest.mark.parametrize(
    "change",
    ["missing", "forged", "other_practitioner", "other_key", "non_embed_url"],
)
def test_embedded_form_without_a_good_token_is_400_and_nothing_saved(
    framed, session, nina, add_practitioner, smtp_server, change
):
    data = form_for(framed, nina.id, embed=True)
    url = f"{PREFIX}/embed/practitioners/{nina.id}/referrals"
    if change == "missing":
        del data["form_token"]
    elif change == "forged":
        data["form_token"] = data["form_token"][:-4] + "AAAA"
    elif change == "other_practitioner":
        olga = add_practitioner("Olga Osteo", (-33.89, 151.19))
        data["form_token"] = form_for(framed, olga.id, embed=True)["form_token"]
    elif change == "other_key":
        data["idempotency_key"] = "0" * 32
    else:  # the token stands in for the session only on embed pages
        url = f"{PREFIX}/practitioners/{nina.id}/referrals"
    response = framed.post(url, follow_redirects=True, data=data)
    assert response.status_code == 400
    assert "Nothing was saved" in response.get_data(as_text=True)
    assert count(session, ReferralRequest) == 0 and count(session, OutboxMessage) == 0
    assert smtp_server.received == []


def test_expired_embedded_form_is_400(make_app, smtp_server, session, nina):
    framed = make_app(REFERRAL_EMBED_FORM_MAX_AGE=-1, **smtp_server.config).test_client(
        use_cookies=False
    )
    data = form_for(framed, nina.id, embed=True)
    response = framed.post(
        f"{PREFIX}/embed/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert response.status_code == 400
    assert "open too long" in response.get_data(as_text=True)
    assert count(session, ReferralRequest) == 0


def test_only_the_session_check_makes_a_signed_in_practitioner_the_referrer(
    make_account, login_client, session, nina
):
    otto = make_account("otto@clinic.example", name="Otto Other")
    client = login_client(otto)
    url = f"{PREFIX}/embed/practitioners/{nina.id}/referrals"
    # framed on our own site the cookie comes back: the practitioner refers
    assert (
        client.post(
            url, follow_redirects=True, data=form_for(client, nina.id, embed=True)
        ).status_code
        == 200
    )
    # a post with a valid form token but no session token is a patient's request
    data = form_for(client, nina.id, embed=True)
    del data["csrf_token"]
    assert client.post(url, follow_redirects=True, data=data).status_code == 200
    session.expire_all()
    referrals = session.scalars(select(ReferralRequest).order_by(ReferralRequest.created_at))
    assert [r.referrer.name if r.referrer else None for r in referrals] == ["Otto Other", None]


# --- rate limit -------------------------------------------------------------------------


def test_referrals_past_the_rate_limit_get_429_and_nothing_saved(
    make_app, smtp_server, session, nina
):
    app = make_app(REFERRAL_REFERRAL_RATE_LIMIT="2 per hour", **smtp_server.config)
    client = app.test_client()
    url = f"{PREFIX}/practitioners/{nina.id}/referrals"
    # a form sent back for corrections does not use up the allowance
    bad = client.post(url, follow_redirects=True, data=form_for(client, nina.id, email="nope"))
    assert bad.status_code == 400
    for n in range(2):
        data = form_for(client, nina.id, email=f"p{n}@example.com")
        assert client.post(url, follow_redirects=True, data=data).status_code == 200
    response = client.post(
        url, follow_redirects=True, data=form_for(client, nina.id, email="p3@example.com")
    )
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "this one was not sent and nothing was saved" in html
    assert "Please try again later" in html and "phone them" in html
    assert "at most 2 per hour" in html
    # the embedded form shares the counter, and its 429 stays in the bare frame layout
    framed = app.test_client(use_cookies=False)
    data = form_for(framed, nina.id, embed=True, email="p4@example.com")
    embedded = framed.post(
        f"{PREFIX}/embed/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
    )
    assert embedded.status_code == 429
    assert 'class="referral-embed"' in embedded.get_data(as_text=True)
    assert count(session, ReferralRequest) == 2
    assert len(smtp_server.received) == 4
    # looking at a listing is never limited
    assert client.get(f"{PREFIX}/practitioners/{nina.id}").status_code == 200


def test_confirmation_leads_back_to_the_search_the_patient_came_from(client, session, nina):
    back = "back=postcode%3D2000%26radius_km%3D10"
    data = form_for(client, nina.id)
    response = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals?{back}", follow_redirects=True, data=data
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'<a href="{PREFIX}/?postcode=2000&amp;radius_km=10">Back to the search</a>' in html
    assert count(session, ReferralRequest) == 1


def test_a_sent_form_redirects_so_reload_and_back_send_nothing_twice(client, session, nina):
    response = client.post(
        f"{PREFIX}/practitioners/{nina.id}/referrals?back=postcode%3D2000",
        data=form_for(client, nina.id),
    )
    assert response.status_code == 303
    assert f"{PREFIX}/referrals/sent/" in response.location
    assert "back=postcode%3D2000" in response.location
    for _ in range(2):  # the confirmation, then a reload of it
        page = client.get(response.location)
        assert page.status_code == 200
        assert "Your request has been received" in page.get_data(as_text=True)
    assert count(session, ReferralRequest) == 1
    assert client.get(f"{PREFIX}/referrals/sent/forged-token").status_code == 404


def test_reference_codes_have_no_look_alike_characters_and_read_in_two_groups():
    codes = {reference(f"referral-{n}") for n in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", code), code
    assert reference("same id") == reference("same id")


def test_an_error_puts_a_summary_first_with_links_to_each_field(client, session, nina):
    data = form_for(client, nina.id, email="sam@example", patient_name="", consent=None)
    response = client.post(f"{PREFIX}/practitioners/{nina.id}/referrals", data=data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert re.search(r"<title>Error: Nina", html)
    summary = html[html.index("referral-error-summary") :]
    # first in the page's content, before the listing's own heading, and focusable
    assert html.index("referral-error-summary") < html.index("<h1>")
    assert 'tabindex="-1"' in html[html.index("referral-error-summary") - 200 :][:400]
    links = re.findall(r'<li><a href="#referral-(\w+)">([^<]+)</a></li>', summary)
    assert [name for name, _ in links] == ["patient_name", "email", "consent"]
    assert "Enter your email address in the form name@example.com" in dict(links)["email"]
    assert "focus.js" in html
    # each link lands on a field of that id, and what was typed is kept
    for name, _ in links:
        assert f'id="referral-{name}"' in html
    assert 'value="sam@example"' in html
    assert count(session, ReferralRequest) == 0

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from referral import accounts
from referral.errors import InvalidInput
from referral.models import OutboxMessage, Practitioner, User
from tests.conftest import PASSWORD, csrf_token, post_form, sign_in

P = "/find-a-therapist"


def _outbox(session, to=None):
    session.expire_all()
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    if to:
        stmt = stmt.where(OutboxMessage.recipient == to)
    return list(session.scalars(stmt))


def _link(message: OutboxMessage) -> str:
    match = re.search(r"http://localhost(/\S+)", message.body_text)
    assert match, message.body_text
    return match.group(1)


def _signup(client, email="ana@example.com", password=PASSWORD, name="Ana Lima"):
    return post_form(
        client,
        f"{P}/account/signup",
        {"name": name, "email": email, "password": password, "confirm": password},
    )


def test_signup_creates_unverified_account_draft_listing_and_queues_confirmation(client, session):
    response = _signup(client)
    assert response.status_code == 200
    assert "Check your email" in response.get_data(as_text=True)
    user = session.scalars(select(User).where(User.email == "ana@example.com")).one()
    assert user.email_verified_at is None and not user.is_admin
    assert check_password_hash(user.password_hash, PASSWORD)
    listing = session.scalars(select(Practitioner).where(Practitioner.user_id == user.id)).one()
    assert (listing.name, listing.status) == ("Ana Lima", "draft")
    [message] = _outbox(session)
    assert message.recipient == "ana@example.com"
    assert "Confirm your email" in message.subject
    assert "/account/verify/" in message.body_text


def test_confirmation_email_is_sent_right_after_sign_up(make_app, session, smtp_server):
    """No worker needs to run: the request delivers what it committed to a real SMTP server."""
    client = make_app(**smtp_server.config).test_client()
    assert _signup(client, email="quick@example.com").status_code == 200
    [mail] = smtp_server.to("quick@example.com")
    assert "Confirm your email" in mail.message["Subject"]
    assert "/account/verify/" in mail.text
    [message] = _outbox(session)
    session.refresh(message)
    assert message.sent_at is not None and message.attempts == 1


def test_taken_email_gets_the_same_answer_and_no_second_account(client, session, make_account):
    make_account("taken@example.com")
    first = _signup(client, email="taken@example.com", name="Someone Else")
    fresh = _signup(client, email="fresh@example.com")
    assert first.status_code == fresh.status_code == 200
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", first.get_data(as_text=True)) == strip.sub(
        "", fresh.get_data(as_text=True)
    )
    count = session.scalar(
        select(func.count()).select_from(User).where(User.email == "taken@example.com")
    )
    assert count == 1
    [note] = _outbox(session, "taken@example.com")
    assert "tried to sign up" in note.subject and "/account/forgot" in note.body_text


@pytest.mark.parametrize(
    "password, message",
    [
        ("short", "at least 10 characters"),
        ("ana@example.com", "must not contain your email"),
        ("my-ana-password", "must not contain your email"),
    ],
)
def test_weak_password_is_refused_with_a_message(client, session, password, message):
    response = _signup(client, password=password)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(User)) == 0
    assert _outbox(session) == []


@pytest.mark.parametrize("name", ["Ana www.evil.example", "Ana <i>Lima</i>", "Ana\x1b[2J"])
def test_name_with_a_web_address_or_markup_is_refused_beside_the_field(client, session, name):
    response = _signup(client, name=name)
    assert response.status_code == 400
    assert "without a web address" in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(User)) == 0
    assert _outbox(session) == []


def test_mismatched_confirmation_and_missing_csrf_are_refused(client, session):
    response = post_form(
        client,
        f"{P}/account/signup",
        {"name": "A", "email": "a@example.com", "password": PASSWORD, "confirm": "other one!!"},
    )
    assert response.status_code == 400 and "do not match" in response.get_data(as_text=True)
    no_token = client.post(
        f"{P}/account/signup",
        data={"name": "A", "email": "a@example.com", "password": PASSWORD, "confirm": PASSWORD},
    )
    assert no_token.status_code == 400
    assert "form expired" in no_token.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_verification_link_confirms_then_sign_in_works(client, session):
    _signup(client)
    link = _link(_outbox(session)[0])
    response = client.get(link)
    assert response.status_code == 302 and response.location.endswith("/account/login")
    session.expire_all()
    user = session.scalars(select(User)).one()
    assert user.email_verified_at is not None
    signed = sign_in(client, "ANA@example.com")
    assert signed.status_code == 302 and signed.location.endswith("/account/listing")
    assert "Ana Lima" in client.get(f"{P}/account/listing").get_data(as_text=True)


def test_unverified_sign_in_is_refused_and_a_new_link_sent(client, session, make_account):
    make_account("new@example.com", verified=False)
    response = sign_in(client, "new@example.com")
    assert response.status_code == 403
    assert "confirm your email address first" in response.get_data(as_text=True)
    [message] = _outbox(session, "new@example.com")
    assert "/account/verify/" in message.body_text
    assert client.get(f"{P}/account/listing").status_code == 302


def test_wrong_password_and_unknown_email_get_the_same_answer(client, make_account):
    make_account("known@example.com")
    wrong = sign_in(client, "known@example.com", "not the password")
    unknown = sign_in(client, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match" in wrong.get_data(as_text=True)
    assert "do not match" in unknown.get_data(as_text=True)


def test_sixth_sign_in_attempt_within_a_minute_gets_429(client, make_account):
    make_account("known@example.com")
    for _ in range(5):
        assert sign_in(client, "known@example.com", "wrong password!").status_code == 401
    response = sign_in(client, "known@example.com")
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.get_data(as_text=True)
    assert client.get(f"{P}/account/login").status_code == 200  # the form itself stays up


def test_sign_in_limit_is_configurable(make_app, make_account):
    app = make_app(REFERRAL_SIGNIN_RATE_LIMIT="2 per minute")
    client = app.test_client()
    with app.app_context():
        make_account("known@example.com")
    assert sign_in(client, "known@example.com", "wrong password!").status_code == 401
    assert sign_in(client, "known@example.com", "wrong password!").status_code == 401
    assert sign_in(client, "known@example.com").status_code == 429


def test_sign_out_needs_a_post_with_csrf(client, make_account):
    make_account("out@example.com")
    sign_in(client, "out@example.com")
    assert client.get(f"{P}/account/logout").status_code == 405
    assert client.post(f"{P}/account/logout").status_code == 400
    token = csrf_token(client, f"{P}/account/listing")
    response = client.post(f"{P}/account/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get(f"{P}/account/listing").status_code == 302


def test_next_parameter_only_redirects_within_the_site(client, make_account):
    make_account("next@example.com")
    url = f"{LOGIN}?next=https://evil.example/steal"
    response = post_form(client, url, {"email": "next@example.com", "password": PASSWORD})
    assert response.location.endswith("/account/listing")


def test_a_next_parameter_urlsplit_cannot_parse_lands_on_the_listing(client, make_account):
    make_account("broken-next@example.com")
    url = f"{LOGIN}?next=http://[oops.example/"
    response = post_form(client, url, {"email": "broken-next@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response.location.endswith("/account/listing")


LOGIN = f"{P}/account/login"


def test_password_reset_same_answer_and_single_use_link(client, session, make_account):
    make_account("reset@example.com")
    known = post_form(client, f"{P}/account/forgot", {"email": "reset@example.com"})
    unknown = post_form(client, f"{P}/account/forgot", {"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.get_data(as_text=True) == unknown.get_data(as_text=True)
    [message] = _outbox(session)
    assert message.recipient == "reset@example.com" and "Reset your password" in message.subject
    link = _link(message)
    new = "a brand new secret"
    weak = post_form(client, link, {"password": "short", "confirm": "short"})
    assert weak.status_code == 400 and "at least 10" in weak.get_data(as_text=True)
    done = post_form(client, link, {"password": new, "confirm": new})
    assert done.status_code == 302
    assert sign_in(client, "reset@example.com", new).status_code == 302
    again = client.get(link)
    assert again.status_code == 400
    assert "already been used" in again.get_data(as_text=True)


def test_expired_and_tampered_tokens_get_a_clear_message(app, client, session, make_account):
    user = make_account("old@example.com")
    with app.test_request_context():
        good = accounts.make_token(user, accounts.RESET)

        serializer = URLSafeTimedSerializer(app.secret_key, salt="referral-reset-password")
        signer = serializer.make_signer()
        signer.get_timestamp = lambda: 1_000_000  # long ago
        payload = serializer.dump_payload(
            {"uid": user.id, "fp": accounts._fingerprint(user, accounts.RESET)}
        )
        expired = signer.sign(payload).decode()
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    response = client.get(f"{P}/account/reset/{expired}")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    response = client.get(f"{P}/account/reset/{tampered}")
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)
    response = client.get(f"{P}/account/verify/{tampered}")
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)
    assert client.get(f"{P}/account/reset/{good}").status_code == 200


def test_verification_token_does_not_work_as_reset_token(app, client, make_account):
    user = make_account("salt@example.com")
    with app.test_request_context():
        verify = accounts.make_token(user, accounts.VERIFY)
    assert client.get(f"{P}/account/reset/{verify}").status_code == 400


def test_check_password_strength_rules():
    accounts.check_password_strength("correct horse battery", "ana@example.com", 10)
    with pytest.raises(InvalidInput, match="too long"):
        accounts.check_password_strength("x" * 2000, "ana@example.com", 10)


def test_create_admin_command(runner, session):
    result = runner.invoke(
        args=["referral", "create-admin", "Boss@Example.com"],
        input="an admin password\nan admin password\n",
    )
    assert result.exit_code == 0, result.output
    user = session.scalars(select(User)).one()
    assert user.email == "boss@example.com" and user.is_admin and user.email_verified_at
    assert check_password_hash(user.password_hash, "an admin password")
    weak = runner.invoke(args=["referral", "create-admin", "b@example.com", "--password", "short"])
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output


def test_admin_signs_in_to_the_moderation_queue(client, make_account):
    make_account("admin@example.com", admin=True, listing=False)
    response = sign_in(client, "admin@example.com")
    assert response.location.endswith("/admin/listings")
    assert client.get(f"{P}/account/listing").status_code == 403


def test_cookies_are_secure_by_default_and_lax(tmp_path):
    from flask import Flask

    from referral import Referral

    app = Flask(__name__, instance_path=str(tmp_path))
    app.testing = True
    Referral(app)
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["REMEMBER_COOKIE_HTTPONLY"]


def test_concurrent_signup_with_the_same_address_gets_the_same_answer(
    app, session, make_account, monkeypatch
):
    """The unique email wins a race that find_user cannot see: no 500, no second account."""
    make_account("race@example.com")
    # what the other request saw: the address still free
    monkeypatch.setattr(accounts, "find_user", lambda _session, _email: None)
    with app.test_request_context():
        result = accounts.sign_up(
            session, name="R", email="race@example.com", password=PASSWORD, config=app.config
        )
    assert result is None
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_account_emails_to_one_address_stop_at_the_daily_limit(make_app, session):
    """Sign-up, "already registered" and reset emails all count for the address; past the
    limit the visitor sees the same answer and nothing more is queued for it."""
    client = make_app(REFERRAL_RECIPIENT_DAILY_LIMIT="3 per day").test_client()
    assert _signup(client, email="ana@example.com").status_code == 200  # verify: 1
    taken = _signup(client, email="Ana@Example.com", name="Someone Else")  # already registered
    first = post_form(client, f"{P}/account/forgot", {"email": "ana@example.com"})  # reset: 3
    past = post_form(client, f"{P}/account/forgot", {"email": "ana@example.com"})
    assert taken.status_code == 200 and "Check your email" in taken.get_data(as_text=True)
    assert first.status_code == past.status_code == 200
    assert first.get_data(as_text=True) == past.get_data(as_text=True)
    subjects = [m.subject.split(" · ")[0] for m in _outbox(session, to="ana@example.com")]
    assert subjects == [
        "Confirm your email address",
        "Someone tried to sign up with your address",
        "Reset your password",
    ]
    other = post_form(client, f"{P}/account/forgot", {"email": "ghost@example.com"})
    assert other.get_data(as_text=True) == past.get_data(as_text=True)


def _post(opener, url: str, data: dict) -> int:
    """POST over real HTTP; the status code, whatever it is."""
    body = urllib.parse.urlencode(data).encode()
    try:
        with opener.open(urllib.request.Request(url, data=body), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize(
    ("storage", "answers"), [("redis", [401] * 5 + [429] * 5), ("memory", [401] * 10)]
)
def test_sign_in_limit_holds_across_two_server_processes(
    request, serve, make_account, storage, answers
):
    """Two gunicorn processes on one database, attempts alternating between them: with the
    limits in Redis the 6th attempt overall is refused; counted in each process's memory,
    all 10 get through (5 each), which is what several workers without Redis allow."""
    make_account("ana@example.com")
    config = request.getfixturevalue("redis_limits").config if storage == "redis" else {}
    servers = [serve(**config), serve(**config)]
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with opener.open(servers[0].url + LOGIN, timeout=30) as page:
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.read().decode())
    attempt = {"csrf_token": token.group(1), "email": "ana@example.com", "password": "wrong!"}
    got = [_post(opener, servers[i % 2].url + LOGIN, attempt) for i in range(10)]
    assert got == answers


# --- the same work whether or not an address has an account -----------------------------


def test_sign_up_hashes_the_password_whether_or_not_the_address_is_taken(
    client, make_account, monkeypatch
):
    make_account("taken@example.com")
    hashed: list[str] = []
    real = accounts.hash_password
    monkeypatch.setattr(accounts, "hash_password", lambda p: hashed.append(p) or real(p))
    _signup(client, email="taken@example.com", password="first long secret")
    _signup(client, email="fresh@example.com", password="second long secret")
    assert hashed == ["first long secret", "second long secret"]


def test_forgot_password_renders_and_sends_nothing_for_either_address(
    make_app, session, make_account, smtp_server
):
    from flask import template_rendered

    app = make_app(**smtp_server.config)
    make_account("real@example.com")
    client = app.test_client()
    rendered: dict[str, list[str]] = {}

    def record(sender, template, context, **extra):
        rendered.setdefault(current, []).append(template.name)

    for current in ("real@example.com", "nobody@example.com"):
        token = csrf_token(client, f"{P}/account/forgot")
        with template_rendered.connected_to(record, app):
            response = client.post(
                f"{P}/account/forgot", data={"csrf_token": token, "email": current}
            )
        assert response.status_code == 200
    assert rendered["real@example.com"] == rendered["nobody@example.com"]
    assert "referral/email/reset.txt" in rendered["nobody@example.com"]
    # nothing went to the mail server inside either request
    assert smtp_server._received == []
    assert [m.recipient for m in _outbox(session)] == ["real@example.com"]

"""Sessions end when they should: sign-out, a password change and a reset end every
session and remember-me cookie of the account (``User.session_token``), on every device."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from referral.models import OutboxMessage, User
from tests.conftest import PASSWORD, csrf_token, post_form, sign_in

P = "/find-a-therapist"
LOGIN = f"{P}/account/login"


@pytest.fixture
def session(unbound_session):
    return unbound_session  # several clients: each request gets its own app context


def _link_to(session, to: str) -> str:
    session.expire_all()
    [message] = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == to))
    return re.search(r"http://localhost(/\S+)", message.body_text).group(1)


def _copy_cookies(source, target, names=("session", "remember_token")) -> None:
    """What an attacker who copied a browser's cookies holds."""
    for name in names:
        cookie = source.get_cookie(name)
        if cookie is not None:
            target.set_cookie(name, cookie.value)


def _sign_out(client):
    token = csrf_token(client, f"{P}/account/listing")
    return client.post(f"{P}/account/logout", data={"csrf_token": token})


def test_sign_out_ends_copied_session_and_remember_cookies(app, make_account):
    make_account("leak@example.com")
    owner = app.test_client()
    post_form(owner, LOGIN, {"email": "leak@example.com", "password": PASSWORD, "remember": "y"})
    stolen_session, stolen_remember = app.test_client(), app.test_client()
    _copy_cookies(owner, stolen_session, ("session",))
    _copy_cookies(owner, stolen_remember, ("remember_token",))
    assert stolen_session.get(f"{P}/account/listing").status_code == 200
    assert stolen_remember.get(f"{P}/account/listing").status_code == 200
    out = _sign_out(owner)
    assert out.status_code == 302
    assert "You are signed out on every device." in owner.get(LOGIN).get_data(as_text=True)
    for client in (owner, stolen_session, stolen_remember):
        response = client.get(f"{P}/account/listing")
        assert response.status_code == 302 and "/account/login" in response.location


def test_a_password_reset_ends_every_session(app, session, make_account):
    make_account("victim@example.com")
    attacker = app.test_client()
    post_form(
        attacker, LOGIN, {"email": "victim@example.com", "password": PASSWORD, "remember": "y"}
    )
    assert attacker.get(f"{P}/account/listing").status_code == 200
    owner = app.test_client()
    post_form(owner, f"{P}/account/forgot", {"email": "victim@example.com"})
    link = _link_to(session, "victim@example.com")
    new = "a brand new secret"
    assert post_form(owner, link, {"password": new, "confirm": new}).status_code == 302
    response = attacker.get(f"{P}/account/listing")
    assert response.status_code == 302 and "/account/login" in response.location
    remembered = app.test_client()
    _copy_cookies(attacker, remembered)
    assert remembered.get(f"{P}/account/listing").status_code == 302


def test_changing_the_password_keeps_this_device_and_ends_the_others(app, session, make_account):
    make_account("move@example.com")
    here, there = app.test_client(), app.test_client()
    sign_in(here, "move@example.com")
    sign_in(there, "move@example.com")
    page = here.get(f"{P}/account/listing").get_data(as_text=True)
    assert "Change your password" in page and "Sign out everywhere" in page
    new = "another long secret"
    wrong = post_form(
        here,
        f"{P}/account/password",
        {"current": "not the password", "password": new, "confirm": new},
    )
    assert wrong.status_code == 400
    assert "That is not your current password." in wrong.get_data(as_text=True)
    done = post_form(
        here, f"{P}/account/password", {"current": PASSWORD, "password": new, "confirm": new}
    )
    assert done.status_code == 302
    assert here.get(f"{P}/account/listing").status_code == 200
    assert there.get(f"{P}/account/listing").status_code == 302
    session.expire_all()
    user = session.scalars(select(User).where(User.email == "move@example.com")).one()
    assert check_password_hash(user.password_hash, new)
    assert sign_in(app.test_client(), "move@example.com", PASSWORD).status_code == 401


def test_remember_me_lasts_the_configured_days(make_app, make_account):
    app = make_app(REFERRAL_REMEMBER_DAYS=7)
    make_account("keep@example.com")
    client = app.test_client()
    response = post_form(
        client, LOGIN, {"email": "keep@example.com", "password": PASSWORD, "remember": "y"}
    )
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if "remember_token" in c)
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)


def test_a_session_cookie_without_the_current_token_loads_nobody(app, session, make_account):
    user = make_account("forge@example.com")
    with app.test_request_context():
        from referral.auth import _load_user

        assert _load_user(user.get_id()) is not None
        assert _load_user(str(user.id)) is None  # the old cookie format: an id alone
        assert _load_user(f"{user.id}:not-the-token") is None
        assert _load_user("x:y") is None

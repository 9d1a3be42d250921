"""A host site with its own accounts: its login manager and user loader stay in charge."""

from __future__ import annotations

import pytest
from flask import Flask, abort
from flask_login import LoginManager, UserMixin, login_user
from sqlalchemy import select

from referral import Referral
from referral.db import get_session
from referral.models import Practitioner

P = "/find-a-therapist"


class HostUser(UserMixin):
    """The host's own user class: string ids, nothing to do with ``referral_user``."""

    def __init__(self, uid: str, email: str, is_admin: bool = False) -> None:
        self.id, self.email, self.is_admin = uid, email, is_admin


HOST_USERS = {
    "h-ana": HostUser("h-ana", "ana@clinic.example"),
    "h-ben": HostUser("h-ben", "ben@clinic.example"),
    "h-boss": HostUser("h-boss", "boss@clinic.example", is_admin=True),
}


def listing_for(user: HostUser) -> Practitioner | None:
    """What a host puts in REFERRAL_PRACTITIONER_FOR_USER: here, matched by email."""
    return (
        get_session().scalars(select(Practitioner).where(Practitioner.email == user.email)).first()
    )


@pytest.fixture
def host(database_url, tmp_path):
    app = Flask("host", instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY="host",
        TESTING=True,
        REFERRAL_DATABASE_URL=database_url,
        REFERRAL_PRACTITIONER_FOR_USER=listing_for,
    )
    manager = LoginManager(app)
    manager.login_view = "host_login"
    manager.user_loader(HOST_USERS.get)

    @app.get("/login")
    def host_login():
        return "host sign-in page"

    @app.get("/as/<uid>")
    def sign_in_as(uid):
        if uid not in HOST_USERS:
            abort(404)
        login_user(HOST_USERS[uid])
        return "ok"

    Referral(app)
    with app.app_context():
        session = get_session()
        session.add(Practitioner(name="Ana Host", email="ana@clinic.example", status="active"))
        session.commit()
    yield app
    app.extensions["referral"].engine.dispose()


def test_host_login_manager_is_kept_and_builtin_account_pages_are_off(host):
    assert host.login_manager.login_view == "host_login"
    client = host.test_client()
    for path in ("/account/login", "/account/signup", "/account/forgot"):
        assert client.get(P + path).status_code == 404
    response = client.get(f"{P}/account/listing")
    assert response.status_code == 302 and response.location.startswith("/login")


def test_host_user_edits_the_listing_the_host_maps_them_to(host):
    client = host.test_client()
    client.get("/as/h-ana")
    page = client.get(f"{P}/account/listing")
    assert page.status_code == 200 and "Ana Host" in page.get_data(as_text=True)
    assert "Sign out" not in page.get_data(as_text=True)  # the host owns signing out


def test_host_user_without_a_listing_gets_403_and_no_admin(host):
    client = host.test_client()
    client.get("/as/h-ben")
    assert client.get(f"{P}/account/listing").status_code == 403
    assert client.get(f"{P}/admin/listings").status_code == 403


def test_host_admin_flag_opens_moderation(host):
    client = host.test_client()
    client.get("/as/h-boss")
    assert client.get(f"{P}/admin/listings?status=active").status_code == 200
    assert "Ana Host" in client.get(f"{P}/admin/listings?status=active").get_data(as_text=True)


def test_default_lookup_uses_user_id_of_builtin_accounts(app, client, make_account, session):
    """Without REFERRAL_PRACTITIONER_FOR_USER the listing is the one whose user_id matches."""
    from tests.conftest import sign_in

    make_account("own@example.com", name="Own Listing")
    sign_in(client, "own@example.com")
    assert "Own Listing" in client.get(f"{P}/account/listing").get_data(as_text=True)

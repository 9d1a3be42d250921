"""The forms' own checks (the referral form without a request round trip) and markup."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from referral.forms import ReferralForm


def form(app, **fields):
    data = MultiDict({"patient_name": "Pat", "email": "Pat@Example.COM", "consent": "y", **fields})
    with app.test_request_context("/", method="POST", data=data):
        app.config["WTF_CSRF_ENABLED"] = False  # these tests check fields; CSRF has its own
        f = ReferralForm(conditions=[("neck-pain", "Neck pain")])
        f.validate()
        return f


def test_email_is_normalised_and_phone_written_in_full(app):
    f = form(app, phone="(02) 9999 0000")
    assert not f.errors
    assert f.email.data == "Pat@example.com" and f.phone.data == "+61299990000"


def test_international_number_ignores_the_default_region(app):
    assert form(app, phone="+44 20 7946 0958").phone.data == "+442079460958"


def test_idempotency_key_is_made_when_missing_and_capped(app):
    assert len(form(app).idempotency_key.data) == 32
    assert "too long" in form(app, idempotency_key="k" * 81).errors["idempotency_key"][0]


def test_honeypot(app):
    assert form(app, website="http://spam").is_bot()
    assert not form(app).is_bot()


def test_account_forms_tell_password_managers_what_each_field_is(client):
    signup = client.get("/find-a-therapist/account/signup").get_data(as_text=True)
    assert signup.count('autocomplete="new-password"') == 2
    assert 'autocomplete="email"' in signup and 'autocomplete="name"' in signup
    login = client.get("/find-a-therapist/account/login").get_data(as_text=True)
    assert 'autocomplete="username"' in login and 'autocomplete="current-password"' in login

"""Sign-up, email confirmation, sign-in/out and password reset (built-in accounts only).

Registered only when the plugin installed its own login manager; a host with its own
accounts keeps its pages. The rules are in :mod:`referral.accounts`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter import Limiter
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from referral import accounts
from referral.auth import current_practitioner, is_admin
from referral.db import get_session
from referral.errors import InvalidInput
from referral.forms import (
    ActionForm,
    ChangePasswordForm,
    ForgotPasswordForm,
    ResetPasswordForm,
    SignInForm,
    SignUpForm,
)
from referral.headers import private

SAME_ANSWER = (
    "Thank you. If that address can be used, we have sent it an email with a link: "
    "open it to confirm your address, then sign in."
)


def register(bp: Blueprint, limiter: Limiter) -> None:
    signin_limit = limiter.limit(
        lambda: current_app.config["REFERRAL_SIGNIN_RATE_LIMIT"],
        methods=["POST"],
        error_message="Too many sign-in attempts from your address. "
        "Please wait a minute and try again.",
    )
    email_limit = limiter.limit(
        lambda: current_app.config["REFERRAL_EMAIL_RATE_LIMIT"],
        methods=["POST"],
        error_message="Too many requests from your address. Please try again later.",
    )
    bp.add_url_rule("/account/signup", "signup", email_limit(signup), methods=["GET", "POST"])
    bp.add_url_rule("/account/verify/<token>", "verify_email", verify_email)
    bp.add_url_rule("/account/login", "login", signin_limit(login), methods=["GET", "POST"])
    bp.add_url_rule("/account/logout", "logout", logout, methods=["POST"])
    bp.add_url_rule(
        "/account/password",
        "change_password",
        signin_limit(login_required(change_password)),
        methods=["GET", "POST"],
    )
    bp.add_url_rule(
        "/account/forgot", "forgot_password", email_limit(forgot_password), methods=["GET", "POST"]
    )
    bp.add_url_rule(
        "/account/reset/<token>", "reset_password", reset_password, methods=["GET", "POST"]
    )


def _form_page(form: Any, title: str, submit: str, status: int = 200, **context: Any) -> Any:
    if request.method == "POST" and status == 200 and form.errors:
        status = 400
    return render_template(
        "referral/account/form.html", form=form, title=title, submit=submit, **context
    ), status


def message(title: str, text: str, status: int = 200, **context: Any) -> tuple[str, int]:
    html = render_template(
        "referral/message.html", title=title, message=text, error=status >= 400, **context
    )
    return html, status


@private
def signup() -> Any:
    form = SignUpForm()
    if form.validate_on_submit():
        try:
            accounts.sign_up(
                get_session(),
                name=form.name.data,
                email=form.email.data,
                password=form.password.data,
                config=current_app.config,
            )
        except InvalidInput as exc:
            field = {
                "invalid_email": form.email,
                "missing_name": form.name,
                "invalid_name": form.name,
            }.get(exc.code, form.password)
            field.errors = [*field.errors, exc.message]
            return _form_page(form, "Create your listing", "Sign up", 400)
        return message("Check your email", SAME_ANSWER)
    return _form_page(
        form,
        "Create your listing",
        "Sign up",
        intro="Practitioners: create an account to list yourself in the directory.",
        links=[(url_for("referral.login"), "Already have an account? Sign in")],
    )


@private
def verify_email(token: str) -> Any:
    try:
        accounts.verify_email(get_session(), token, current_app.config)
    except InvalidInput as exc:
        link = (url_for("referral.login"), "Sign in to get a new confirmation link")
        return message("This link does not work", exc.message, 400, link=link)
    flash("Your email address is confirmed. Please sign in.")
    return redirect(url_for("referral.login"))


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never an open redirect; ``None`` for anything else,
    including text :func:`urllib.parse.urlsplit` cannot take apart."""
    if not target:
        return None
    try:
        parts = urlsplit(target)
    except ValueError:  # "http://[oops": not a path on this site either
        return None
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _landing() -> str:
    if current_practitioner() is None and is_admin():
        return url_for("referral.admin_queue")
    return url_for("referral.listing")


@private
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(_landing())
    form = SignInForm()
    title, submit = "Sign in", "Sign in"
    links = [
        (url_for("referral.forgot_password"), "Forgot your password?"),
        (url_for("referral.signup"), "New here? Create your listing"),
    ]
    if form.validate_on_submit():
        session = get_session()
        user = accounts.authenticate(session, form.email.data, form.password.data)
        if user is None:
            return _form_page(
                form, title, submit, 401, error="That email and password do not match.", links=links
            )
        if user.email_verified_at is None:
            accounts.send_verification(session, user)
            session.commit()
            return _form_page(
                form,
                title,
                submit,
                403,
                error="Please confirm your email address first: we have sent you a new link.",
                links=links,
            )
        login_user(user, remember=bool(form.remember.data))
        return redirect(_safe_next(request.args.get("next")) or _landing())
    return _form_page(form, title, submit, links=links)


@private
def logout() -> Response | tuple[str, int]:
    form = ActionForm()
    if not form.validate_on_submit():
        return message("Sign out", "The form expired; please try again.", 400)
    if current_user.is_authenticated:
        session = get_session()
        user = current_user._get_current_object()  # loaded by this session
        accounts.end_sessions(user)
        session.commit()
    logout_user()
    flash("You are signed out on every device.")
    return redirect(url_for("referral.login"))


@private
def change_password() -> Any:
    form = ChangePasswordForm()
    title, submit = "Change your password", "Save password"
    if form.validate_on_submit():
        session = get_session()
        user = current_user._get_current_object()  # loaded by this session
        try:
            accounts.change_password(
                session, user, form.current.data, form.password.data, current_app.config
            )
        except InvalidInput as exc:
            field = form.current if exc.code == "wrong_password" else form.password
            field.errors = [*field.errors, exc.message]
            return _form_page(form, title, submit, 400)
        login_user(user)  # this device stays signed in with the new session token
        flash("Your new password is saved. Every other device is signed out.")
        return redirect(_landing())
    return _form_page(form, title, submit)


@private
def forgot_password() -> Any:
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        accounts.request_password_reset(get_session(), form.email.data)
        return message(
            "Check your email",
            "If an account uses that address, we have sent it a link to choose a new password.",
        )
    return _form_page(form, "Forgot your password?", "Send me a link")


@private
def reset_password(token: str) -> Any:
    session = get_session()
    max_age = int(current_app.config["REFERRAL_PASSWORD_RESET_MAX_AGE"])
    try:
        accounts.read_token(session, token, accounts.RESET, max_age)
    except InvalidInput as exc:
        link = (url_for("referral.forgot_password"), "Ask for a new link")
        return message("This link does not work", exc.message, 400, link=link)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(session, token, form.password.data, current_app.config)
        except InvalidInput as exc:
            form.password.errors = [*form.password.errors, exc.message]
            return _form_page(form, "Choose a new password", "Save password", 400)
        flash("Your new password is saved. Please sign in.")
        return redirect(url_for("referral.login"))
    return _form_page(form, "Choose a new password", "Save password")

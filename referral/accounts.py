"""Built-in practitioner accounts: sign-up, email verification, sign-in and password reset.

Links in emails carry signed, expiring tokens (itsdangerous, the app's ``SECRET_KEY`` and one
salt per purpose). Each token also carries a fingerprint of the state that using it changes
(the email for verification, the password hash for a reset), so a reset link works once.
Answers never reveal whether an email has an account. Links are absolute URLs from
``REFERRAL_PUBLIC_URL`` (:func:`referral.urls.external_url`), never from the request.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from referral.errors import InvalidInput
from referral.listings import check_name
from referral.mail import queue_template, recipient_allowed, render_email
from referral.models import Practitioner, User, new_session_token, utcnow
from referral.urls import external_url

VERIFY = "verify-email"
RESET = "reset-password"
MAX_PASSWORD_LENGTH = 1024


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the email is unknown, so a miss costs as much time as a hit."""
    return generate_password_hash("referral-timing-equaliser")


def normalise_email(text: str) -> str:
    """A syntactically valid address, lower-cased so one mailbox is one account."""
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise InvalidInput("invalid_email", "Please enter a valid email address.") from None


def check_password_strength(password: str, email: str, min_length: int) -> None:
    """Refuse passwords that are short, absurdly long, or built from the email address."""
    if len(password) < min_length:
        raise InvalidInput(
            "weak_password", f"Choose a password of at least {min_length} characters."
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput("weak_password", "That password is too long.")
    lowered = password.casefold()
    local = email.split("@", 1)[0].casefold()
    if lowered == email.casefold() or (len(local) >= 3 and local in lowered):
        raise InvalidInput("weak_password", "Your password must not contain your email address.")


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=f"referral-{purpose}")


def serializer(purpose: str) -> URLSafeTimedSerializer:
    """The signer for one purpose's links (``SECRET_KEY``, a salt per purpose), for other
    modules' signed links (:mod:`referral.reconfirm`)."""
    return _serializer(purpose)


def _fingerprint(user: User, purpose: str) -> str:
    source = (user.password_hash or "") if purpose == RESET else user.email
    return hashlib.sha256(f"{purpose}:{source}".encode()).hexdigest()[:20]


def make_token(user: User, purpose: str) -> str:
    return _serializer(purpose).dumps({"uid": user.id, "fp": _fingerprint(user, purpose)})


def read_token(session: Session, token: str, purpose: str, max_age: int) -> User:
    """The user a link was made for; :class:`InvalidInput` if it is expired, forged or used."""
    try:
        data = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidInput(
            "token_expired", "This link has expired. Please ask for a new one."
        ) from None
    except BadData:
        raise InvalidInput(
            "token_invalid", "This link is not valid. Please check it or ask for a new one."
        ) from None
    user = session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None or not hmac.compare_digest(
        str(data.get("fp", "")), _fingerprint(user, purpose)
    ):
        raise InvalidInput(
            "token_invalid", "This link has already been used. Please ask for a new one."
        )
    return user


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(func.lower(User.email) == email.lower())).first()


def _email(session: Session, user: User, template: str, subject: str, **context: Any) -> None:
    """Queue an account email, unless the address is past ``REFERRAL_RECIPIENT_DAILY_LIMIT``
    (anyone can type it into sign-up or forgot-password); the caller answers the same."""
    if not recipient_allowed(user.email, template):
        return
    site = current_app.config["REFERRAL_SITE_NAME"]
    queue_template(
        session,
        to=user.email,
        subject=f"{subject} · {site}",
        template=template,
        site=site,
        user=user,
        **context,
    )


def sign_up(
    session: Session, *, name: str, email: str, password: str, config: Mapping[str, Any]
) -> User | None:
    """Create an unverified account with a draft listing and queue the confirmation email.

    A taken email gets a note to its owner instead, and the caller shows the same answer:
    returns ``None`` then. Raises :class:`InvalidInput` for a bad email, a name holding a web
    address or markup (:func:`referral.listings.check_name`) or a weak password.
    """
    email = normalise_email(email)
    name = check_name(name)
    check_password_strength(password, email, int(config["REFERRAL_PASSWORD_MIN_LENGTH"]))
    if not name:
        raise InvalidInput("missing_name", "Please enter your name as patients should see it.")
    # hashed whether or not the address is taken: both answers cost the same
    password_hash = hash_password(password)
    existing = find_user(session, email)
    if existing is not None:
        _email(
            session,
            existing,
            "already_registered",
            "Someone tried to sign up with your address",
            signin_url=external_url("referral.login"),
            reset_url=external_url("referral.forgot_password"),
        )
        session.commit()
        return None
    user = User(email=email, password_hash=password_hash)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # the same address signed up a moment ago: same answer
        session.rollback()
        return None
    session.add(Practitioner(name=name[:200], email=email, user_id=user.id, status="draft"))
    send_verification(session, user)
    session.commit()
    return user


def send_verification(session: Session, user: User) -> None:
    """Queue a confirmation link; the caller commits."""
    link = external_url("referral.verify_email", token=make_token(user, VERIFY))
    _email(session, user, "verify", "Confirm your email address", link=link)


def verify_email(session: Session, token: str, config: Mapping[str, Any]) -> User:
    user = read_token(session, token, VERIFY, int(config["REFERRAL_VERIFY_EMAIL_MAX_AGE"]))
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        session.commit()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The account for this email and password, or ``None`` (same cost either way)."""
    try:
        email = normalise_email(email)
    except InvalidInput:
        return None
    user = find_user(session, email)
    if user is None or not user.password_hash:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def request_password_reset(session: Session, email: str) -> None:
    """Queue a reset link if the account exists; silent otherwise (no account leak).

    An unknown address costs what a known one does: the same look-up, recipient count,
    token and rendering, and a commit; only the queueing differs. Nothing is sent here.
    """
    try:
        email = normalise_email(email)
    except InvalidInput:
        return
    user = find_user(session, email)
    target = user or User(id=0, email=email, password_hash=_dummy_hash())
    link = external_url("referral.reset_password", token=make_token(target, RESET))
    if user is not None:
        _email(session, user, "reset", "Reset your password", link=link)
    elif recipient_allowed(email, "reset"):
        site = current_app.config["REFERRAL_SITE_NAME"]
        render_email(f"Reset your password · {site}", "reset", site=site, user=target, link=link)
    session.commit()


def reset_password(session: Session, token: str, password: str, config: Mapping[str, Any]) -> User:
    """Set a new password from a reset link; the link then stops working, and every
    session and remember-me cookie of the account ends (whoever had the old password)."""
    user = read_token(session, token, RESET, int(config["REFERRAL_PASSWORD_RESET_MAX_AGE"]))
    check_password_strength(password, user.email, int(config["REFERRAL_PASSWORD_MIN_LENGTH"]))
    user.password_hash = hash_password(password)
    if user.email_verified_at is None:  # they proved they read this mailbox
        user.email_verified_at = utcnow()
    end_sessions(user)
    session.commit()
    return user


def change_password(
    session: Session, user: User, current: str, new: str, config: Mapping[str, Any]
) -> User:
    """Replace the password of a signed-in account after checking the current one, and end
    every session made with the old one; the caller signs this device in again."""
    if not user.password_hash or not check_password_hash(user.password_hash, current):
        raise InvalidInput("wrong_password", "That is not your current password.")
    check_password_strength(new, user.email, int(config["REFERRAL_PASSWORD_MIN_LENGTH"]))
    user.password_hash = hash_password(new)
    end_sessions(user)
    session.commit()
    return user


def end_sessions(user: User) -> None:
    """Give the account a new session token: every session and remember-me cookie made
    before stops loading it, on every device (see :attr:`User.session_token`). The caller
    commits."""
    user.session_token = new_session_token()


def create_admin(session: Session, email: str, password: str, min_length: int) -> User:
    """Create an admin account, or make an existing account an admin with this password."""
    email = normalise_email(email)
    check_password_strength(password, email, min_length)
    user = find_user(session, email)
    if user is None:
        user = User(email=email)
        session.add(user)
    user.password_hash = hash_password(password)
    user.is_admin = True
    user.email_verified_at = user.email_verified_at or utcnow()
    session.commit()
    return user

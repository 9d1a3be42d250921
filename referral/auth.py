"""Who is signed in, and what they may do.

The plugin uses Flask-Login. If the host already has a ``LoginManager`` on the app, the
plugin leaves it alone and asks ``REFERRAL_PRACTITIONER_FOR_USER`` (or the default: a
practitioner whose ``user_id`` equals the host user's ``get_id()``) which listing the
signed-in user manages; otherwise it installs its own manager loading
:class:`referral.models.User`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app
from flask_login import LoginManager, current_user
from sqlalchemy import select

from referral.db import get_session
from referral.headers import private
from referral.models import Practitioner, User

F = TypeVar("F", bound=Callable[..., Any])


def init_login(app: Flask) -> None:
    """Install the built-in login manager unless the host brought its own."""
    if getattr(app, "login_manager", None) is not None:
        return
    manager = LoginManager()
    manager.login_view = "referral.login"
    manager.login_message = "Please sign in to continue."
    manager.user_loader(_load_user)
    manager.init_app(app)


def _load_user(alternative_id: str) -> User | None:
    """The account a session or remember cookie names, if its session token still stands
    (see :attr:`User.session_token`); a cookie from before a sign-out or reset loads none."""
    user_id, _, token = alternative_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = get_session().get(User, int(user_id))
    if user is None or not hmac.compare_digest(user.session_token.encode(), token.encode()):
        return None
    return user


def current_practitioner() -> Practitioner | None:
    """The listing the signed-in user manages, if any."""
    if not current_user.is_authenticated:
        return None
    lookup = current_app.config["REFERRAL_PRACTITIONER_FOR_USER"]
    if lookup is not None:
        return lookup(current_user)
    user = current_user._get_current_object()
    # a built-in account's get_id() carries its session token too; a host user's is its id
    user_id = user.id if isinstance(user, User) else user.get_id()
    if user_id is None or not str(user_id).isdigit():
        return None
    return (
        get_session()
        .scalars(select(Practitioner).where(Practitioner.user_id == int(user_id)))
        .first()
    )


def is_admin() -> bool:
    return bool(current_user.is_authenticated and getattr(current_user, "is_admin", False))


def practitioner_required(view: F) -> F:
    """The view gets ``practitioner=`` the signed-in user's listing; 403 without one.

    Its pages are :func:`referral.headers.private`: never stored, no referrer onwards."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        practitioner = current_practitioner()
        if practitioner is None:
            abort(403)
        return view(*args, practitioner=practitioner, **kwargs)

    return private(wrapper)  # type: ignore[return-value]


def admin_required(view: F) -> F:
    """Admins only (403 for anyone else); the pages are private like a practitioner's."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        if not is_admin():
            abort(403)
        return view(*args, **kwargs)

    return private(wrapper)  # type: ignore[return-value]

"""The audit log for admins: newest first, a page at a time, narrowed by action, actor,
object and dates (see :mod:`referral.audit`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, render_template, request

from referral import audit
from referral.auth import admin_required
from referral.db import get_session
from referral.paging import page_number

PAGE_SIZE = 50


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/admin/audit", "admin_audit", admin_required(audit_log))


def _day(text: str | None) -> tuple[date | None, str | None]:
    if not text:
        return None, None
    try:
        return date.fromisoformat(text), None
    except ValueError:
        return None, f"{text!r} is not a date: use the form 2026-12-31."


def audit_log() -> Any:
    args = request.args
    since, since_error = _day(args.get("since"))
    until, until_error = _day(args.get("until"))
    filters = audit.Filters(
        action=args.get("action", "")[:40],
        actor=args.get("actor", "").strip()[:254],
        object_type=args.get("object_type", "")[:40],
        object_id=args.get("object_id", "").strip()[:64],
        since=since,
        until=until,
    )
    errors = [e for e in (since_error, until_error) if e]
    session = get_session()
    return render_template(
        "referral/admin/audit.html",
        events=audit.events(session, filters, page_number(args.get("page")), PAGE_SIZE),
        filters=filters,
        actions=audit.known_actions(session),
        errors=errors,
    ), (400 if errors else 200)

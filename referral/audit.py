"""The audit log: who changed what in the directory, and when.

Moderation decisions, problem-report handling, imports and exports are recorded from the
signals in :mod:`referral.signals` (connected here, once, for every app), so a domain
function says what happened once and the log follows. A row names the actor (an account's
email, ``cli`` for a command), the action, the object (type and id) and, for edits, each
changed field as ``[before, after]``. Nothing about a patient or their health is written:
a referral would appear by id only.

Signals are sent after the change's commit, so each row is written in a commit of its
own right after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Flask, has_request_context
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from referral import signals
from referral.db import get_session
from referral.models import AuditEvent
from referral.paging import Page, contains, paginate

CLI = "cli"
ANONYMOUS = "anonymous"


def current_actor() -> tuple[str, int | None]:
    """Who is acting: the signed-in account (email, id), ``anonymous`` for a visitor,
    ``cli`` outside a request (a ``flask referral`` command)."""
    if not has_request_context():
        return CLI, None
    if current_user.is_authenticated:
        user_id = getattr(current_user, "id", None)
        email = getattr(current_user, "email", None)
        return str(email or f"user {current_user.get_id()}"), user_id
    return ANONYMOUS, None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The values of ``fields`` on ``obj``, as JSON can hold them (take one before a change
    and one after, and :func:`diff` them)."""
    return {name: _plain(getattr(obj, name)) for name in fields}


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for each field whose value changed."""
    return {k: [before.get(k), after.get(k)] for k in after if before.get(k) != after.get(k)}


def record(
    session: Session,
    action: str,
    object_type: str,
    object_id: Any = None,
    *,
    actor: str | None = None,
    changes: Mapping[str, Any] | None = None,
    note: str | None = None,
    commit: bool = True,
) -> AuditEvent:
    """Write one audit row and commit it (``commit=False``: in the caller's transaction).
    ``actor`` defaults to :func:`current_actor`."""
    who, who_id = current_actor()
    event = AuditEvent(
        actor=(actor or who)[:254],
        actor_id=who_id if actor in (None, who) else None,
        action=action[:40],
        object_type=object_type[:40],
        object_id=None if object_id is None else str(object_id)[:64],
        changes=dict(changes or {}),
        note=note[:2000] if note else None,
    )
    session.add(event)
    if commit:
        session.commit()
    return event


@dataclass
class Filters:
    """What the admin's audit page narrows to; empty fields do not narrow."""

    action: str = ""
    actor: str = ""
    object_type: str = ""
    object_id: str = ""
    since: date | None = None
    until: date | None = None


def events(session: Session, filters: Filters, page: int = 1, per_page: int = 50) -> Page:
    """Audit rows matching ``filters``, newest first. ``actor`` matches part of the actor
    (case-insensitive); ``since`` and ``until`` are whole days, both included (UTC)."""
    query = select(AuditEvent)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.actor:
        query = query.where(
            func.lower(AuditEvent.actor).like(contains(filters.actor.lower()), escape="\\")
        )
    if filters.object_type:
        query = query.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        query = query.where(AuditEvent.object_id == filters.object_id)
    if filters.since:
        query = query.where(AuditEvent.created_at >= datetime.combine(filters.since, time()))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time())
        query = query.where(AuditEvent.created_at < end)
    query = query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    return paginate(session, query, page, per_page)


def known_actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


# -- the signals' receivers ---------------------------------------------------------------


def _on_listing_moderated(
    sender: Flask, *, practitioner: Any, action: str, actor: str, changes: Mapping, **_: Any
) -> None:
    record(get_session(), action, "listing", practitioner.id, actor=actor, changes=changes)


def _on_imported(
    sender: Flask, *, actor: str, source: str, summary: str, counts: Mapping, **_: Any
) -> None:
    record(
        get_session(),
        "import",
        "directory",
        None,
        actor=actor,
        changes={},
        note=f"{source}: {summary}",
    )


def _on_exported(sender: Flask, *, actor: str, format: str, destination: str, **_: Any) -> None:
    record(
        get_session(), "export", "directory", None, actor=actor, note=f"{format} to {destination}"
    )


def _on_reported(sender: Flask, *, report: Any, **_: Any) -> None:
    # the reporter is a visitor: their email, if given, stays on the report, not in the log
    record(
        get_session(),
        "report",
        "listing",
        report.practitioner_id,
        actor=ANONYMOUS,
        note=f"report {report.id}: {report.kind}",
    )


def _on_problem_handled(
    sender: Flask, *, report: Any, action: str, actor: str, changes: Mapping, **_: Any
) -> None:
    record(get_session(), action, "report", report.id, actor=actor, changes=changes)


signals.listing_moderated.connect(_on_listing_moderated, weak=False)
signals.directory_imported.connect(_on_imported, weak=False)
signals.directory_exported.connect(_on_exported, weak=False)
signals.problem_reported.connect(_on_reported, weak=False)
signals.problem_handled.connect(_on_problem_handled, weak=False)

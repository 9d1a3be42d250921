"""The operator's view of referrals: how many get through each step, and how long
patients wait for an answer. Counts only: nothing here reads a patient's details.

A referral counts in the window it was *sent* in (``created_at`` within the last ``days``):

- **sent**: every referral;
- **viewed**: the practitioner opened or answered it (a ``viewed``, ``accepted``,
  ``declined``, ``completed`` or ``referred_on`` event: accepting straight from the email's
  link skips "viewed", but the referral was read);
- **accepted**: it was accepted at some point (an ``accepted`` event), whatever came after;
- **completed**, **declined**, **expired**: its status now (``expired`` is 0 where the
  lifecycle has no such status);
- **median first response**: from sending to the practitioner's first answer (accept,
  decline or refer on), over the referrals answered.

By modality, a referral counts under each modality of its practitioner; by region, under
the state of the practitioner's first location. Everything is aggregated in SQL (the same
statements on SQLite and PostgreSQL; the median with window functions); ``bench/funnel.py``
measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Float

from referral.models import (
    Location,
    Modality,
    ReferralEvent,
    ReferralRequest,
    practitioner_modality,
    utcnow,
)

STAGES = ("sent", "viewed", "accepted", "completed", "declined", "expired")
WINDOWS = (30, 90)
GROUPINGS = ("all", "modality", "region")
VIEWED_ACTIONS = ("viewed", "accepted", "declined", "completed", "referred_on")
ANSWER_ACTIONS = ("accepted", "declined", "referred_on")
UNKNOWN = "Not given"


@dataclass(frozen=True)
class FunnelRow:
    """One group's funnel: a count per stage and the median seconds to a first answer."""

    group: str
    sent: int
    viewed: int
    accepted: int
    completed: int
    declined: int
    expired: int
    median_response_s: float | None

    def count(self, stage: str) -> int:
        return int(getattr(self, stage))

    def share(self, stage: str) -> float:
        """The stage's count as a share of those sent (0 when none were)."""
        return self.count(stage) / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class Report:
    """The funnel for one window, overall and by each grouping."""

    days: int
    total: FunnelRow
    by_modality: list[FunnelRow]
    by_region: list[FunnelRow]


def report(session: Session, days: int, *, now: datetime | None = None) -> Report:
    """The funnel of referrals sent in the last ``days`` days."""
    [total] = funnel(session, days, "all", now=now) or [_empty("All")]
    return Report(
        days=days,
        total=total,
        by_modality=funnel(session, days, "modality", now=now),
        by_region=funnel(session, days, "region", now=now),
    )


def funnel(
    session: Session, days: int, by: str = "all", *, now: datetime | None = None
) -> list[FunnelRow]:
    """One row per group (``by``: ``all``, ``modality`` or ``region``), largest first;
    groups with nothing sent are left out."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}, not {by!r}")
    since = (now or utcnow()) - timedelta(days=days)
    per_referral = _per_referral(since).subquery("per_referral")
    group = _group_column(by, per_referral)
    counts = _grouped(
        select(
            group.label("grp"),
            func.count().label("sent"),
            func.coalesce(func.sum(per_referral.c.viewed), 0).label("viewed"),
            func.coalesce(func.sum(per_referral.c.accepted), 0).label("accepted"),
            *(
                func.coalesce(func.sum(case((per_referral.c.status == s, 1), else_=0)), 0).label(s)
                for s in ("completed", "declined", "expired")
            ),
        ),
        by,
        per_referral,
    ).group_by(group)
    medians = _medians(session, by, per_referral)
    rows = [
        FunnelRow(
            group=row.grp if row.grp is not None else UNKNOWN,
            sent=int(row.sent),
            viewed=int(row.viewed),
            accepted=int(row.accepted),
            completed=int(row.completed),
            declined=int(row.declined),
            expired=int(row.expired),
            median_response_s=medians.get(row.grp),
        )
        for row in session.execute(counts)
    ]
    return sorted(rows, key=lambda r: (-r.sent, r.group))


def _per_referral(since: datetime) -> Select[Any]:
    """One row per referral sent since ``since``: its practitioner, status, whether it was
    viewed and accepted, and the seconds to its first answer (``NULL`` if none)."""
    event = ReferralEvent
    flags = (
        select(
            event.referral_id.label("referral_id"),
            func.max(case((event.action.in_(VIEWED_ACTIONS), 1), else_=0)).label("viewed"),
            func.max(case((event.action == "accepted", 1), else_=0)).label("accepted"),
            func.min(case((event.action.in_(ANSWER_ACTIONS), event.created_at))).label(
                "answered_at"
            ),
        )
        .join(ReferralRequest, ReferralRequest.id == event.referral_id)
        .where(ReferralRequest.created_at >= since)
        .group_by(event.referral_id)
        .subquery("flags")
    )
    return (
        select(
            ReferralRequest.id.label("id"),
            ReferralRequest.practitioner_id.label("practitioner_id"),
            ReferralRequest.status.label("status"),
            func.coalesce(flags.c.viewed, 0).label("viewed"),
            func.coalesce(flags.c.accepted, 0).label("accepted"),
            _seconds_between(ReferralRequest.created_at, flags.c.answered_at).label("response_s"),
        )
        .outerjoin(flags, flags.c.referral_id == ReferralRequest.id)
        .where(ReferralRequest.created_at >= since)
    )


def _seconds_between(start: Any, end: Any) -> ColumnElement[Any]:
    """``end - start`` in seconds, in SQL both databases run (``NULL`` when ``end`` is)."""
    return _Seconds(start, end)


class _Seconds(FunctionElement):
    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(_Seconds)
def _seconds_sqlite(element: _Seconds, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(_Seconds, "postgresql")
def _seconds_postgresql(element: _Seconds, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


def _first_location() -> Any:
    return (
        select(
            Location.practitioner_id.label("practitioner_id"),
            func.min(Location.id).label("location_id"),
        )
        .group_by(Location.practitioner_id)
        .subquery("first_location")
    )


def _group_column(by: str, per_referral: Any) -> ColumnElement[Any]:
    if by == "modality":
        return Modality.name
    if by == "region":
        return Location.state
    return literal("All")


def _grouped(query: Select[Any], by: str, per_referral: Any) -> Select[Any]:
    """``query`` over the referrals, joined to what ``by`` groups them by."""
    query = query.select_from(per_referral)
    if by == "modality":
        link = practitioner_modality
        query = query.outerjoin(link, link.c.practitioner_id == per_referral.c.practitioner_id)
        query = query.outerjoin(Modality, Modality.id == link.c.modality_id)
    elif by == "region":
        first = _first_location()
        query = query.outerjoin(first, first.c.practitioner_id == per_referral.c.practitioner_id)
        query = query.outerjoin(Location, Location.id == first.c.location_id)
    return query


def _medians(session: Session, by: str, per_referral: Any) -> dict[Any, float]:
    """Group -> median seconds to a first answer: the middle one or two of each group's
    ordered durations (row number against the group's count), averaged."""
    group = _group_column(by, per_referral)
    ranked = (
        _grouped(
            select(
                group.label("grp"),
                per_referral.c.response_s.label("s"),
                func.row_number()
                .over(partition_by=group, order_by=per_referral.c.response_s)
                .label("rn"),
                func.count().over(partition_by=group).label("n"),
            ),
            by,
            per_referral,
        )
        .where(per_referral.c.response_s.is_not(None))
        .subquery("ranked")
    )
    middle = (
        select(ranked.c.grp, func.avg(ranked.c.s))
        .where(
            # rn in {ceil(n/2), floor(n/2)+1}: one row for an odd n, two for an even one
            and_(2 * ranked.c.rn >= ranked.c.n, 2 * ranked.c.rn <= ranked.c.n + 2)
        )
        .group_by(ranked.c.grp)
    )
    return {grp: float(value) for grp, value in session.execute(middle)}


def _empty(group: str) -> FunnelRow:
    return FunnelRow(group, 0, 0, 0, 0, 0, 0, None)


def duration_words(seconds: float | None) -> str:
    """A wait as an operator reads it: ``45 min``, ``5.2 h``, ``3.1 days``; ``—`` for none."""
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{max(seconds / 60, 1):.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def chart_bars(row: FunnelRow, stages: Sequence[str] = STAGES) -> list[dict[str, Any]]:
    """What the SVG chart draws for ``row``: each stage's count and its share of sent."""
    return [
        {"stage": stage, "count": row.count(stage), "share": row.share(stage)} for stage in stages
    ]

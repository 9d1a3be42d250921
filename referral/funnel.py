"""The operator's view of referrals: how many get through each step, and how long
patients wait for an answer. Counts only: nothing here reads a patient's details.

A referral counts in the window it was *sent* in (``created_at`` within the last ``days``):

- **sent**: every referral;
- **viewed**: the practitioner opened or answered it (``viewed_at``: accepting straight
  from the email's link skips "viewed", but the referral was read);
- **accepted**: it was accepted at some point (``accepted_at``), whatever came after;
- **completed**, **declined**, **expired**: its status now (``expired`` is 0 where the
  lifecycle has no such status);
- **median first response**: from sending to the practitioner's first answer (accept,
  decline or refer on: ``answered_at``), over the referrals answered.

The milestones are columns of the referral (``referrals.MILESTONES``, stamped by
``referrals.transition``), so the funnel reads one table and never the event trail.

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
    literal_column,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Float

from referral.models import (
    Location,
    Modality,
    ReferralRequest,
    practitioner_modality,
    utcnow,
)

STAGES = ("sent", "viewed", "accepted", "completed", "declined", "expired")
WINDOWS = (30, 90)
GROUPINGS = ("all", "modality", "region")
UNKNOWN = "Not given"
ALL = "All"


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


def reports(
    session: Session, windows: Sequence[int] = WINDOWS, *, now: datetime | None = None
) -> list[Report]:
    """The funnel for each window (days back from ``now``), overall and by each grouping.

    Two statements whatever the windows: one for the counts, one for the medians, each
    reading the widest window's referrals once (a materialized CTE) and grouping them
    every way with ``UNION ALL``; the narrower windows are conditional sums within it.
    """
    now = now or utcnow()
    sinces = {days: now - timedelta(days=days) for days in windows}
    per = _per_referral(min(sinces.values())).cte("per_referral").prefix_with("MATERIALIZED")
    counts: dict[tuple[int, str], list[tuple[Any, dict[str, int]]]] = {
        (days, by): [] for days in sinces for by in GROUPINGS
    }
    for row in session.execute(_counts(per, sinces)).mappings():
        for days in sinces:
            stage_counts = {stage: int(row[f"{stage}_{days}"] or 0) for stage in STAGES}
            if stage_counts["sent"]:
                counts[(days, row["kind"])].append((row["grp"], stage_counts))
    medians = {
        (int(days), kind, grp): float(value)
        for days, kind, grp, value in session.execute(_medians(per, sinces))
    }

    def rows(days: int, by: str) -> list[FunnelRow]:
        found = [
            FunnelRow(
                group=UNKNOWN if grp is None else str(grp),
                median_response_s=medians.get((days, by, grp)),
                **stage_counts,
            )
            for grp, stage_counts in counts[(days, by)]
        ]
        return sorted(found, key=lambda r: (-r.sent, r.group))

    return [
        Report(
            days=days,
            total=(rows(days, "all") or [_empty(ALL)])[0],
            by_modality=rows(days, "modality"),
            by_region=rows(days, "region"),
        )
        for days in sinces
    ]


def report(session: Session, days: int, *, now: datetime | None = None) -> Report:
    """The funnel of referrals sent in the last ``days`` days."""
    return reports(session, (days,), now=now)[0]


def funnel(
    session: Session, days: int, by: str = "all", *, now: datetime | None = None
) -> list[FunnelRow]:
    """One row per group (``by``: ``all``, ``modality`` or ``region``), largest first;
    groups with nothing sent are left out."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}, not {by!r}")
    found = report(session, days, now=now)
    if by == "all":
        return [found.total] if found.total.sent else []
    return found.by_modality if by == "modality" else found.by_region


def _counts(per: Any, sinces: dict[int, datetime]) -> Any:
    """Each grouping's counts per stage and window, one ``UNION ALL`` branch a grouping."""
    branches = []
    for by in GROUPINGS:
        group = _group_column(by)
        columns = [literal_column(f"'{by}'").label("kind"), group.label("grp")]
        for days, since in sinces.items():
            inside = per.c.created_at >= since
            stages = {
                "sent": literal(1),
                "viewed": per.c.viewed,
                "accepted": per.c.accepted,
                **{s: case((per.c.status == s, 1), else_=0) for s in STAGES[3:]},
            }
            columns += [
                func.sum(case((inside, value), else_=0)).label(f"{stage}_{days}")
                for stage, value in stages.items()
            ]
        branch = _grouped(select(*columns), by, per)
        branches.append(branch.group_by(group) if by != "all" else branch)
    return union_all(*branches)


def _per_referral(since: datetime) -> Select[Any]:
    """One row per referral sent since ``since`` (the ``created_at`` index): practitioner,
    status, sent time, whether it was viewed and accepted, and when it was first answered
    (``NULL`` if not), from the milestones ``referrals.transition`` stamps."""
    request = ReferralRequest
    return select(
        request.id.label("id"),
        request.practitioner_id.label("practitioner_id"),
        request.status.label("status"),
        request.created_at.label("created_at"),
        case((request.viewed_at.is_not(None), 1), else_=0).label("viewed"),
        case((request.accepted_at.is_not(None), 1), else_=0).label("accepted"),
        request.answered_at.label("answered_at"),
    ).where(request.created_at >= since)


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


def _group_column(by: str) -> ColumnElement[Any]:
    if by == "modality":
        return Modality.name
    if by == "region":
        return Location.state
    return literal_column(f"'{ALL}'")


def _grouped(query: Select[Any], by: str, per: Any) -> Select[Any]:
    """``query`` over the referrals, joined to what ``by`` groups them by."""
    query = query.select_from(per)
    if by == "modality":
        link = practitioner_modality
        query = query.outerjoin(link, link.c.practitioner_id == per.c.practitioner_id)
        query = query.outerjoin(Modality, Modality.id == link.c.modality_id)
    elif by == "region":
        first = _first_location()
        query = query.outerjoin(first, first.c.practitioner_id == per.c.practitioner_id)
        query = query.outerjoin(Location, Location.id == first.c.location_id)
    return query


def _medians(per: Any, sinces: dict[int, datetime]) -> Any:
    """``(days, kind, group, median seconds to a first answer)``: the middle one or two of
    each group's ordered durations (row number against the group's count), averaged."""
    # the seconds once per answered referral (parsing times is the costly part on SQLite)
    answered = (
        select(
            per.c.practitioner_id,
            per.c.created_at,
            _seconds_between(per.c.created_at, per.c.answered_at).label("response_s"),
        )
        .where(per.c.answered_at.is_not(None))
        .cte("answered")
        .prefix_with("MATERIALIZED")
    )
    keyed = (
        union_all(
            *(
                _grouped(
                    select(
                        literal_column(f"'{by}'").label("kind"),
                        _group_column(by).label("grp"),
                        answered.c.created_at,
                        answered.c.response_s,
                    ),
                    by,
                    answered,
                )
                for by in GROUPINGS
            )
        )
        .cte("keyed")
        .prefix_with("MATERIALIZED")
    )
    ranked = union_all(
        *(
            select(
                literal_column(str(int(days))).label("days"),
                keyed.c.kind,
                keyed.c.grp,
                keyed.c.response_s.label("s"),
                func.row_number()
                .over(partition_by=[keyed.c.kind, keyed.c.grp], order_by=keyed.c.response_s)
                .label("rn"),
                func.count().over(partition_by=[keyed.c.kind, keyed.c.grp]).label("n"),
            ).where(keyed.c.created_at >= since)
            for days, since in sinces.items()
        )
    ).subquery("ranked")
    return (
        select(ranked.c.days, ranked.c.kind, ranked.c.grp, func.avg(ranked.c.s))
        # rn in {ceil(n/2), floor(n/2)+1}: one row for an odd n, two for an even one
        .where(and_(2 * ranked.c.rn >= ranked.c.n, 2 * ranked.c.rn <= ranked.c.n + 2))
        .group_by(ranked.c.days, ranked.c.kind, ranked.c.grp)
    )


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

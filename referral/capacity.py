"""Whether a practitioner takes new patients now: the listing's capacity and its weekly cap.

A listing says one of :data:`STATUSES` (HSDS 3.0 and Da Vinci Plan-Net describe the same:
whether a service takes new clients, and how long the wait is), with the usual wait of a
waitlist and the date the practitioner last confirmed it. A practitioner may also set how
many new referrals they take a week: once that many arrived this week (weeks start on
Monday at midnight in ``REFERRAL_TIMEZONE``), the listing shows "waitlist" by itself until
the week turns.

``Practitioner.accepting_new_patients`` stays the search's "accepting now" column, so the
search needs no rule of its own: :func:`refresh` keeps it in step, and is called when the
practitioner saves their listing, when a referral is sent, and by ``flask referral sweep``
(which notices the week turning). Everything shown (cards, the listing, the API) reads
:func:`of` a record, which needs only the columns, never the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import event, func, or_, select
from sqlalchemy.orm import Session

from referral import booking, wording
from referral.errors import InvalidInput
from referral.models import Practitioner, ReferralRequest, utcnow

#: status -> how a patient reads it
STATUSES: dict[str, str] = {
    "accepting": "Accepting new patients",
    "waitlist": "Waitlist for new patients",
    "existing_only": "Existing patients only",
    "closed": "Not taking new patients",
}
#: the statuses a referral may be sent to (the others show no form)
TAKES_REFERRALS = frozenset({"accepting", "waitlist"})
MAX_WAITLIST_WEEKS = 104
MAX_WEEKLY_CAP = 500


@dataclass(frozen=True)
class Capacity:
    """What a listing says of new patients, as shown now.

    ``status`` is the effective one: ``waitlist`` with ``full=True`` when the weekly cap
    was reached (``waitlist_weeks`` is then ``None``: it reopens when the week turns).
    """

    status: str
    waitlist_weeks: int | None = None
    updated: date | None = None
    full: bool = False

    @property
    def takes_referrals(self) -> bool:
        return self.status in TAKES_REFERRALS

    @property
    def accepting(self) -> bool:
        return self.status == "accepting"

    @property
    def label(self) -> str:
        return STATUSES.get(self.status, STATUSES["accepting"])

    @property
    def wait_words(self) -> str | None:
        """What a waitlist means for the patient ("Usual wait: about 3 weeks")."""
        if self.status != "waitlist":
            return None
        if self.full:
            reopens = wording.localtime(next_week_start(utcnow()), with_time=False)
            return (
                "This week's places for new patients are taken. You can still send a "
                f"request: it waits for next week's places, from {reopens}."
            )
        if self.waitlist_weeks:
            weeks = self.waitlist_weeks
            return f"Usual wait: about {weeks} week{'' if weeks == 1 else 's'}."
        return "New patients go on a waitlist."

    def document(self) -> dict[str, Any]:
        """The API's ``capacity`` object."""
        return {
            "status": self.status,
            "waitlist_weeks": self.waitlist_weeks,
            "updated": self.updated.isoformat() if self.updated else None,
        }


def of(record: Any) -> Capacity:
    """The capacity a practitioner or a search card record shows: the stored status, and
    ``waitlist`` (full) when it says accepting but the accepting-now column is off."""
    status = getattr(record, "capacity_status", None)
    accepting_now = bool(getattr(record, "accepting_new_patients", True))
    if status not in STATUSES:
        status = "accepting" if accepting_now else "existing_only"
    confirmed = getattr(record, "capacity_confirmed_at", None)
    if isinstance(confirmed, str):  # a search card read by the raw SQLite driver
        confirmed = datetime.fromisoformat(confirmed)
    updated = local_date(confirmed) if isinstance(confirmed, datetime) else None
    if status == "accepting" and not accepting_now:
        return Capacity("waitlist", None, updated, full=True)
    weeks = getattr(record, "waitlist_weeks", None) if status == "waitlist" else None
    return Capacity(status, weeks, updated)


def local_date(moment: datetime) -> date:
    """The date a stored (naive UTC) time falls on in ``REFERRAL_TIMEZONE``."""
    zone = wording.zone(current_app.config["REFERRAL_TIMEZONE"])
    return moment.replace(tzinfo=UTC).astimezone(zone).date()


def check_takes_referrals(practitioner: Practitioner) -> None:
    """:class:`InvalidInput` (409) when the listing takes no new referrals at all."""
    capacity = of(practitioner)
    if not capacity.takes_referrals:
        raise InvalidInput(
            "not_taking_referrals",
            f"{practitioner.name} is not taking new patients at the moment, so this request "
            "was not sent and nothing was saved. " + instead_words(practitioner),
            status=409,
        )


def instead_words(practitioner: Any) -> str:
    """What a patient can do when the listing takes no new referrals."""
    if of(practitioner).status == "existing_only":
        return (
            "If you are already their patient, phone or email them directly; otherwise "
            "search for another practitioner near you."
        )
    return "Please search for another practitioner near you."


# --- weeks -------------------------------------------------------------------------------


def week_start(now: datetime) -> datetime:
    """The start of ``now``'s week (Monday 00:00 in ``REFERRAL_TIMEZONE``), as naive UTC."""
    zone = wording.zone(current_app.config["REFERRAL_TIMEZONE"])
    local = now.replace(tzinfo=UTC).astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday())
    start = datetime.combine(monday, time(0), tzinfo=zone)
    return start.astimezone(UTC).replace(tzinfo=None)


def next_week_start(now: datetime) -> datetime:
    """When the week of ``now`` turns, as naive UTC (a day or so of DST is handled by
    going through local dates)."""
    zone = wording.zone(current_app.config["REFERRAL_TIMEZONE"])
    local = now.replace(tzinfo=UTC).astimezone(zone)
    monday = local.date() - timedelta(days=local.weekday()) + timedelta(days=7)
    start = datetime.combine(monday, time(0), tzinfo=zone)
    return start.astimezone(UTC).replace(tzinfo=None)


def received_this_week(session: Session, practitioner_ids: list[int], now: datetime) -> dict:
    """practitioner id -> referrals they received since this week started (any status:
    a request the patient cancelled still took the practitioner's time to read)."""
    if not practitioner_ids:
        return {}
    start = week_start(now)
    rows = session.execute(
        select(ReferralRequest.practitioner_id, func.count())
        .where(
            ReferralRequest.practitioner_id.in_(practitioner_ids),
            ReferralRequest.created_at >= start,
            ReferralRequest.created_at <= now,
        )
        .group_by(ReferralRequest.practitioner_id)
    )
    return dict(rows.all())


def accepting_now(practitioner: Practitioner, received: int) -> bool:
    """The rule: accepting, and under the weekly cap (when there is one)."""
    if practitioner.capacity_status != "accepting":
        return False
    cap = practitioner.weekly_referral_cap
    return cap is None or received < cap


def refresh(session: Session, practitioner: Practitioner, now: datetime | None = None) -> bool:
    """Bring ``accepting_new_patients`` in step; returns whether it changed. The caller
    commits (this is inside the transaction of the change that caused it)."""
    now = now or utcnow()
    received = 0
    if practitioner.weekly_referral_cap is not None and practitioner.id is not None:
        received = received_this_week(session, [practitioner.id], now).get(practitioner.id, 0)
    wanted = accepting_now(practitioner, received)
    if practitioner.accepting_new_patients == wanted:
        return False
    practitioner.accepting_new_patients = wanted
    return True


def refresh_all(session: Session, now: datetime | None = None) -> int:
    """:func:`refresh` every listing with a weekly cap or out of step, in one commit;
    returns how many changed (``flask referral sweep`` runs it: the week turning)."""
    now = now or utcnow()
    candidates = list(
        session.scalars(
            select(Practitioner)
            .where(
                or_(
                    Practitioner.weekly_referral_cap.is_not(None),
                    (Practitioner.capacity_status == "accepting")
                    != Practitioner.accepting_new_patients,
                )
            )
            .order_by(Practitioner.id)
        )
    )
    counts = received_this_week(
        session, [p.id for p in candidates if p.weekly_referral_cap is not None], now
    )
    changed = 0
    for practitioner in candidates:
        wanted = accepting_now(practitioner, counts.get(practitioner.id, 0))
        if practitioner.accepting_new_patients != wanted:
            practitioner.accepting_new_patients = wanted
            changed += 1
    session.commit()
    return changed


# --- the practitioner's settings ---------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    status: str
    waitlist_weeks: int | None
    weekly_referral_cap: int | None
    booking_url: str | None


def check_settings(data: Mapping[str, Any]) -> Settings:
    """The capacity fields of the listing editor, checked; :class:`InvalidInput` with a
    code per field. Without ``capacity_status`` (an older caller), the accepting
    checkbox decides: ticked is accepting, unticked existing patients only."""
    status = data.get("capacity_status")
    if status in (None, ""):
        status = "accepting" if data.get("accepting_new_patients", True) else "existing_only"
    if status not in STATUSES:
        raise InvalidInput("invalid_capacity", "Choose whether you take new patients.")
    weeks = _whole(data.get("waitlist_weeks"), "invalid_waitlist_weeks", 1, MAX_WAITLIST_WEEKS)
    if status == "waitlist" and weeks is None:
        raise InvalidInput(
            "missing_waitlist_weeks",
            f"Say roughly how many weeks new patients wait (1 to {MAX_WAITLIST_WEEKS}).",
        )
    cap = _whole(data.get("weekly_referral_cap"), "invalid_weekly_cap", 1, MAX_WEEKLY_CAP)
    return Settings(
        status,
        weeks if status == "waitlist" else None,
        cap,
        booking.check_booking_url(data.get("booking_url")),
    )


def _whole(value: Any, code: str, low: int, high: int) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        messages = {
            "invalid_waitlist_weeks": (
                f"The usual wait is a whole number of weeks, {low} to {high}."
            ),
            "invalid_weekly_cap": (
                f"New referrals a week is a whole number, {low} to {high}; leave it empty "
                "for no limit."
            ),
        }
        raise InvalidInput(code, messages[code])
    return number


def apply_settings(
    session: Session, practitioner: Practitioner, settings: Settings, now: datetime | None = None
) -> None:
    """Store checked settings (saving them confirms them: today becomes ``updated``) and
    bring the accepting-now column in step. The caller commits."""
    now = now or utcnow()
    practitioner.capacity_status = settings.status
    practitioner.waitlist_weeks = settings.waitlist_weeks
    practitioner.weekly_referral_cap = settings.weekly_referral_cap
    practitioner.booking_url = settings.booking_url
    practitioner.capacity_confirmed_at = now
    refresh(session, practitioner, now)


@event.listens_for(Session, "before_flush")
def _new_listings_in_step(session: Session, _context: Any, _instances: Any) -> None:
    """A listing created without a capacity (the importer, the demo, a host's own code)
    takes it from the accepting checkbox (unticked is "existing patients only"); one
    created with a capacity gets the accepting-now column to match."""
    for obj in session.new:
        if not isinstance(obj, Practitioner):
            continue
        if obj.capacity_status is None:
            accepting = obj.accepting_new_patients in (None, True)
            obj.capacity_status = "accepting" if accepting else "existing_only"
        obj.accepting_new_patients = obj.capacity_status == "accepting"

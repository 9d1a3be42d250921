"""Nobody is left waiting: reminders, expiry and the weekly caps, run by ``flask referral
sweep`` (from cron, or ``--loop`` beside the outbox worker).

- A referral still unopened (``sent``) ``REFERRAL_REMIND_AFTER_HOURS`` after it was sent
  reminds its practitioner once (``reminded_at``).
- A referral not answered (``sent`` or ``viewed``) ``REFERRAL_EXPIRE_AFTER_DAYS`` after it
  was sent becomes ``expired``; the patient is told and offered the nearest practitioners
  accepting new patients (:func:`referral.status.alternatives`), each a one-step re-send.
- Every listing with a weekly cap has its accepting-now column brought in step (the week
  turning reopens it).

Every function takes ``now`` (tests drive it; no clock is read for the rules) and claims
each referral with a conditional ``UPDATE`` before queueing anything, so two sweeps at once,
or one run twice, never send a message twice. Each step is in the referral's trail and all
mail goes through the outbox, committed with the change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from referral import capacity, notifications, status
from referral.models import ReferralRequest
from referral.referrals import SYSTEM_ACTOR, record_event
from referral.signals import referral_status_changed

log = logging.getLogger(__name__)

#: statuses that still wait for the practitioner's answer
UNANSWERED = ("sent", "viewed")


@dataclass
class SweepReport:
    reminded: int = 0
    expired: int = 0
    listings_changed: int = 0

    def __str__(self) -> str:
        return (
            f"reminded {self.reminded}, expired {self.expired}, "
            f"listings whose accepting-now changed {self.listings_changed}"
        )


def sweep(session: Session, config: Mapping[str, Any], now: datetime) -> SweepReport:
    """One pass: expire first (a request due both ways is closed, not reminded), then
    remind, then the weekly caps."""
    report = SweepReport()
    report.expired = expire_unanswered(session, config, now)
    report.reminded = remind_unopened(session, config, now)
    report.listings_changed = capacity.refresh_all(session, now)
    return report


def remind_unopened(session: Session, config: Mapping[str, Any], now: datetime) -> int:
    """Remind the practitioner of each request unopened for ``REFERRAL_REMIND_AFTER_HOURS``
    (once); returns how many were reminded."""
    cutoff = now - timedelta(hours=float(config["REFERRAL_REMIND_AFTER_HOURS"]))
    due = list(
        session.scalars(
            select(ReferralRequest.id)
            .where(
                ReferralRequest.status == "sent",
                ReferralRequest.reminded_at.is_(None),
                ReferralRequest.created_at <= cutoff,
            )
            .order_by(ReferralRequest.created_at)
        )
    )
    done = 0
    for referral_id in due:
        claimed = session.execute(
            update(ReferralRequest)
            .where(
                ReferralRequest.id == referral_id,
                ReferralRequest.status == "sent",
                ReferralRequest.reminded_at.is_(None),
            )
            # a reminder is no change to the request: its updated_at (purge's clock) stays
            .values(reminded_at=now, updated_at=ReferralRequest.updated_at)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:  # another sweep got there first, or it was opened meanwhile
            session.rollback()
            continue
        referral = _load(session, referral_id)
        record_event(session, referral, SYSTEM_ACTOR, "reminded")
        notifications.reminder(session, referral)
        session.commit()
        done += 1
    return done


def expire_unanswered(session: Session, config: Mapping[str, Any], now: datetime) -> int:
    """Expire each request unanswered for ``REFERRAL_EXPIRE_AFTER_DAYS``, telling the
    patient and offering alternatives; returns how many expired."""
    cutoff = now - timedelta(days=float(config["REFERRAL_EXPIRE_AFTER_DAYS"]))
    due = session.execute(
        select(ReferralRequest.id, ReferralRequest.status)
        .where(ReferralRequest.status.in_(UNANSWERED), ReferralRequest.created_at <= cutoff)
        .order_by(ReferralRequest.created_at)
    ).all()
    expired: list[tuple[ReferralRequest, str]] = []
    for referral_id, old in due:
        claimed = session.execute(
            update(ReferralRequest)
            .where(ReferralRequest.id == referral_id, ReferralRequest.status == old)
            .values(status="expired", updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:  # answered, cancelled or expired by another sweep meanwhile
            session.rollback()
            continue
        referral = _load(session, referral_id)
        record_event(session, referral, SYSTEM_ACTOR, "expired")
        notifications.status_changed(session, referral, old, "expired")
        offered = status.alternatives(session, referral, config)
        record_event(
            session,
            referral,
            SYSTEM_ACTOR,
            "alternatives_offered",
            detail=" ".join(f"practitioner:{a.practitioner_id}" for a in offered) or None,
        )
        notifications.referral_expired(session, referral, offered)
        session.commit()
        expired.append((referral, old))
    for referral, old in expired:
        referral_status_changed.send(
            current_app._get_current_object(),
            referral=referral,
            old_status=old,
            new_status="expired",
            actor=SYSTEM_ACTOR,
        )
    return len(expired)


def _load(session: Session, referral_id: str) -> ReferralRequest:
    """The claimed row as it is now (the ``UPDATE`` went around the identity map)."""
    return session.scalars(
        select(ReferralRequest)
        .where(ReferralRequest.id == referral_id)
        .execution_options(populate_existing=True)
    ).one()


def run_loop(
    run: Callable[[], SweepReport],
    *,
    interval: float,
    passes: int | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Call ``run`` every ``interval`` seconds (``passes`` times, or until stopped); a
    failing pass (the database restarting) is reported and the loop goes on."""
    done = 0
    while passes is None or done < passes:
        try:
            report = run()
        except Exception as exc:
            log.exception("sweep pass failed")
            echo(f"pass failed: {type(exc).__name__}: {exc}")
        else:
            if report.reminded or report.expired or report.listings_changed:
                echo(str(report))
        done += 1
        if passes is None or done < passes:
            time.sleep(interval)
    return done

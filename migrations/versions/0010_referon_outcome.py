"""Refer-on links, outcomes and the funnel's milestones

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:00:00

``referral_request.referred_from_id``: the referral a practitioner referred this one on
from (``referral.referon``); ``referrer_note``: their note to the new practitioner;
``outcome`` and ``outcome_note``: what came of a referral, set on completing or referring
on, which its referrer reads on their sent referrals page; ``viewed_at``, ``accepted_at``
and ``answered_at``: when the practitioner first opened, accepted and answered it (the
operator's funnel, ``referral.funnel``), filled in from the event trail for older rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


#: column -> the trail's actions that mark it (as ``referral.referrals.MILESTONES``)
MILESTONES = {
    "viewed_at": ("viewed", "accepted", "declined", "completed", "referred_on"),
    "accepted_at": ("accepted",),
    "answered_at": ("accepted", "declined", "referred_on"),
}


def upgrade() -> None:
    with op.batch_alter_table("referral_request") as batch:
        batch.add_column(sa.Column("referred_from_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("referrer_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(20), nullable=True))
        batch.add_column(sa.Column("outcome_note", sa.Text(), nullable=True))
        batch.create_foreign_key(
            "fk_referral_request_referred_from_id_referral_request",
            "referral_request",
            ["referred_from_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_referral_request_referred_from_id", ["referred_from_id"])
        batch.add_column(sa.Column("viewed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("accepted_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("answered_at", sa.DateTime(), nullable=True))
    for column, actions in MILESTONES.items():
        names = ", ".join(f"'{a}'" for a in actions)
        op.execute(
            f"UPDATE referral_request SET {column} = (SELECT MIN(e.created_at) "
            "FROM referral_event e WHERE e.referral_id = referral_request.id "
            f"AND e.action IN ({names}))"
        )


def downgrade() -> None:
    with op.batch_alter_table("referral_request") as batch:
        batch.drop_column("answered_at")
        batch.drop_column("accepted_at")
        batch.drop_column("viewed_at")
        batch.drop_index("ix_referral_request_referred_from_id")
        batch.drop_constraint(
            "fk_referral_request_referred_from_id_referral_request", type_="foreignkey"
        )
        batch.drop_column("outcome_note")
        batch.drop_column("outcome")
        batch.drop_column("referrer_note")
        batch.drop_column("referred_from_id")

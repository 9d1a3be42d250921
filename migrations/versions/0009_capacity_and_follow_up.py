"""Capacity, booking links and following up unanswered referrals

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 00:50:00

``referral_practitioner`` gains what a listing says of new patients
(``capacity_status``: accepting, waitlist, existing_only, closed; ``waitlist_weeks``;
``capacity_confirmed_at``), an optional ``weekly_referral_cap`` and a ``booking_url``.
Listings not accepting new patients before become "existing patients only".
``referral_request`` gains ``reminded_at`` (the practitioner was reminded once) and
``searched_modality`` (what the patient searched by, for alternatives on expiry).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral_practitioner") as batch:
        batch.add_column(
            sa.Column("capacity_status", sa.String(20), nullable=False, server_default="accepting")
        )
        batch.add_column(sa.Column("waitlist_weeks", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("capacity_confirmed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("weekly_referral_cap", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("booking_url", sa.String(500), nullable=True))
    op.execute(
        "UPDATE referral_practitioner SET capacity_status = 'existing_only'"
        " WHERE NOT accepting_new_patients"
    )
    with op.batch_alter_table("referral_request") as batch:
        batch.add_column(sa.Column("reminded_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("searched_modality", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral_request") as batch:
        batch.drop_column("searched_modality")
        batch.drop_column("reminded_at")
    # recreate="never": SQLite drops the columns in place (3.35+) instead of copying the
    # table, which the search-term triggers of 0008 (on this table) would not survive
    with op.batch_alter_table("referral_practitioner", recreate="never") as batch:
        for name in (
            "booking_url",
            "weekly_referral_cap",
            "capacity_confirmed_at",
            "waitlist_weeks",
            "capacity_status",
        ):
            batch.drop_column(name)

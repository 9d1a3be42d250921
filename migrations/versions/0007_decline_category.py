"""What a patient is told of a decline

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:30:00

``referral_request.decline_category``: the reason category a practitioner picks when
declining (``referral.referrals.DECLINE_CATEGORIES``); the patient's email says it, while
the practitioner's own note stays private.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral_request") as batch:
        batch.add_column(sa.Column("decline_category", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral_request") as batch:
        batch.drop_column("decline_category")

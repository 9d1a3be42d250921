"""Per-account session tokens; outbox claims, permanent failures and stable Message-IDs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:30:00

``referral_user.session_token`` is part of every session and remember-me cookie, so
replacing it signs an account out everywhere; existing accounts get a random one (their
current sessions end once, at the upgrade). The outbox gains ``claimed_at`` (a worker holds
the message), ``failed_at`` (refused for good, or out of attempts) and ``message_id`` (one
``Message-ID`` across retries).
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral_user") as batch:
        batch.add_column(sa.Column("session_token", sa.String(64), nullable=True))
    users = sa.table("referral_user", sa.column("id", sa.Integer), sa.column("session_token"))
    conn = op.get_bind()
    for (user_id,) in conn.execute(sa.select(users.c.id)).all():
        conn.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(session_token=secrets.token_urlsafe(24))
        )
    with op.batch_alter_table("referral_user") as batch:
        batch.alter_column("session_token", existing_type=sa.String(64), nullable=False)
    with op.batch_alter_table("referral_outbox") as batch:
        batch.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("failed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("message_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral_outbox") as batch:
        batch.drop_column("message_id")
        batch.drop_column("failed_at")
        batch.drop_column("claimed_at")
    with op.batch_alter_table("referral_user") as batch:
        batch.drop_column("session_token")

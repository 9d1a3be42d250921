"""Websites that embed the finder

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 00:45:00

``referral_embed_origin``: the origins an operator allowed on the admin page to show the
finder in a frame, used with ``REFERRAL_EMBED_ORIGINS`` (see ``referral.embed_origins``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_embed_origin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(300), nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("added_by", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_embed_origin")),
        sa.UniqueConstraint("origin", name=op.f("uq_referral_embed_origin_origin")),
    )


def downgrade() -> None:
    op.drop_table("referral_embed_origin")

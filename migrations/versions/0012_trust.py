"""An audit log, and visitors' reports of wrong details

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 01:00:00

``referral_audit_event``: who (an account's email, or ``cli``) did what (moderation,
report handling, import, export) to which object, when, with the fields it changed.
``referral_problem_report``: a visitor's "these details are wrong", queued for an admin.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_audit_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(254), nullable=False),
        sa.Column("actor_id", sa.Integer, nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=True),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_referral_audit_event"),
    )
    op.create_index("ix_referral_audit_event_created_at", "referral_audit_event", ["created_at"])
    op.create_index("ix_referral_audit_event_actor", "referral_audit_event", ["actor"])
    op.create_index("ix_referral_audit_event_action", "referral_audit_event", ["action"])
    op.create_index(
        "ix_referral_audit_event_object", "referral_audit_event", ["object_type", "object_id"]
    )
    op.create_table(
        "referral_problem_report",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "practitioner_id",
            sa.Integer,
            sa.ForeignKey("referral_practitioner.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("reporter_email", sa.String(254), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("handled_at", sa.DateTime, nullable=True),
        sa.Column("handled_by", sa.String(254), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_referral_problem_report"),
    )
    op.create_index(
        "ix_referral_problem_report_practitioner_id",
        "referral_problem_report",
        ["practitioner_id"],
    )
    op.create_index("ix_referral_problem_report_status", "referral_problem_report", ["status"])


def downgrade() -> None:
    op.drop_table("referral_problem_report")
    op.drop_table("referral_audit_event")

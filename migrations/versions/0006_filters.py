"""Filters fast at directory scale: languages as ISO 639 codes, indexes for rare filters

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:30:00

``referral_practitioner_language`` holds each practitioner's languages as codes (from the
names in ``referral_practitioner.languages``, by ``langcodes``), indexed by code; the
condition and fund links gain indexes led by the condition and the fund, and locations
one on their home-visit radius (its largest value bounds a home-visit search). With them the
search starts from a rare filter's few practitioners instead of walking the map.

(Written beside 0005, the gazetteer, on another branch: ``down_revision`` becomes "0005"
when the two are merged.)
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from referral.languages import codes_of

    op.create_table(
        "referral_practitioner_language",
        sa.Column(
            "practitioner_id",
            sa.Integer(),
            sa.ForeignKey("referral_practitioner.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("code", sa.String(16), primary_key=True),
    )
    op.create_index(
        "ix_referral_practitioner_language_code",
        "referral_practitioner_language",
        ["code", "practitioner_id"],
    )
    op.create_index(
        "ix_referral_practitioner_condition_condition",
        "referral_practitioner_condition",
        ["condition_id", "practitioner_id"],
    )
    op.create_index(
        "ix_referral_practitioner_fund_fund",
        "referral_practitioner_fund",
        ["fund_id", "practitioner_id"],
    )
    op.create_index(
        "ix_referral_location_visit_radius", "referral_location", ["home_visit_radius_km"]
    )
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, languages FROM referral_practitioner")).all()
    links = []
    for practitioner_id, languages in rows:
        if isinstance(languages, str):
            languages = json.loads(languages)
        links += [{"p": practitioner_id, "c": code} for code in codes_of(languages or [])]
    if links:
        conn.execute(
            sa.text(
                "INSERT INTO referral_practitioner_language (practitioner_id, code) VALUES (:p, :c)"
            ),
            links,
        )


def downgrade() -> None:
    op.drop_index("ix_referral_location_visit_radius", "referral_location")
    op.drop_index("ix_referral_practitioner_fund_fund", "referral_practitioner_fund")
    op.drop_index("ix_referral_practitioner_condition_condition", "referral_practitioner_condition")
    op.drop_table("referral_practitioner_language")

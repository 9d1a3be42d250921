"""The gazetteer: postcode rows carry GeoNames' accuracy; the geocode cache is trimmed by age

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:30:00

``referral_postcode.accuracy`` lets a point GeoNames marks as estimated lose to a better one.
``referral_geocode_cache.created_at`` gains an index: ``flask referral purge`` and the cache
bound delete the oldest rows first. Existing rows keep ``accuracy`` NULL ("unknown"); run
``flask referral load-postcodes`` to load the shipped gazetteer.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral_postcode") as batch:
        batch.add_column(sa.Column("accuracy", sa.Integer(), nullable=True))
    op.create_index(
        "ix_referral_geocode_cache_created_at", "referral_geocode_cache", ["created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_referral_geocode_cache_created_at", "referral_geocode_cache")
    with op.batch_alter_table("referral_postcode") as batch:
        batch.drop_column("accuracy")

"""review queue: index review_items.claimed_by (the held-item lookup of Next item)

Revision ID: 0005_review_claimed_by
Revises: 0004_evidence_records
Create Date: 2026-11-22 19:40:00
"""

from alembic import op
import sqlalchemy as sa
import crawler.db.types


revision = '0005_review_claimed_by'
down_revision = '0004_evidence_records'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_review_items_claimed_by'), 'review_items', ['claimed_by'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_review_items_claimed_by'), table_name='review_items')

"""media-level decisions: hash_lists.action (review|auto), review_items.decided_via
(analyst, list:NAME, media:ITEM_ID) and review_items.review_kind (page|confirm-match)

Revision ID: 0013_media_decisions
Revises: 0012_wellness_settings
Create Date: 2026-12-06 14:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0013_media_decisions'
down_revision = '0012_wellness_settings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hash_lists') as batch_op:
        batch_op.add_column(
            sa.Column('action', sa.String(length=8), server_default='review', nullable=False)
        )
        batch_op.create_check_constraint('action', "action IN ('review', 'auto')")
    with op.batch_alter_table('review_items') as batch_op:
        batch_op.add_column(sa.Column('decided_via', sa.String(length=160), nullable=True))
        batch_op.add_column(
            sa.Column('review_kind', sa.String(length=16), server_default='page', nullable=False)
        )
        batch_op.create_index('ix_review_items_decided_via', ['decided_via'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review_items') as batch_op:
        batch_op.drop_index('ix_review_items_decided_via')
        batch_op.drop_column('review_kind')
        batch_op.drop_column('decided_via')
    with op.batch_alter_table('hash_lists') as batch_op:
        batch_op.drop_constraint('ck_hash_lists_action', type_='check')
        batch_op.drop_column('action')

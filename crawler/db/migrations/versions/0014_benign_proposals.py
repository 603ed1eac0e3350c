"""benign_proposals: an analyst's benign-listing awaiting a second person's agreement
(TAKEDOWN_BENIGN_FOUR_EYES)

Revision ID: 0014_benign_proposals
Revises: 0013_media_decisions
Create Date: 2026-12-06 15:30:00
"""

from alembic import op
import sqlalchemy as sa
import crawler.db.types


revision = '0014_benign_proposals'
down_revision = '0013_media_decisions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'benign_proposals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('media_id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=True),
        sa.Column('list_name', sa.String(length=128), nullable=False),
        sa.Column('proposed_by', sa.Integer(), nullable=False),
        sa.Column('created_at', crawler.db.types.UTCDateTime(), nullable=False),
        sa.Column('agreed_by', sa.Integer(), nullable=True),
        sa.Column('agreed_at', crawler.db.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['media_id'], ['media.id'],
            name=op.f('fk_benign_proposals_media_id_media'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['item_id'], ['review_items.id'],
            name=op.f('fk_benign_proposals_item_id_review_items'), ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['proposed_by'], ['users.id'], name=op.f('fk_benign_proposals_proposed_by_users'),
        ),
        sa.ForeignKeyConstraint(
            ['agreed_by'], ['users.id'], name=op.f('fk_benign_proposals_agreed_by_users'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_benign_proposals')),
    )
    op.create_index(
        'ix_benign_proposals_media', 'benign_proposals', ['media_id', 'agreed_at'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_benign_proposals_media', table_name='benign_proposals')
    op.drop_table('benign_proposals')

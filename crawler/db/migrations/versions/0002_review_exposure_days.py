"""review app: per-analyst daily exposure counters

Revision ID: 0002_review_exposure
Revises: 0001
Create Date: 2026-11-22 19:00:00
"""

from alembic import op
import sqlalchemy as sa
import crawler.db.types


revision = '0002_review_exposure'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exposure_days',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('reveals', sa.Integer(), nullable=False),
    sa.Column('views', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('open_item_id', sa.Integer(), nullable=True),
    sa.Column('open_since', crawler.db.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_exposure_days_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'day', name=op.f('pk_exposure_days'))
    )


def downgrade() -> None:
    op.drop_table('exposure_days')

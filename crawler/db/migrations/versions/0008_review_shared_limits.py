"""review app: login_failures and rate_buckets, so several app processes share the
login throttle and the preview rate limit

Revision ID: 0008_review_shared_limits
Revises: 0007_pages_tls_verified
Create Date: 2026-11-22 21:40:00
"""

from alembic import op
import sqlalchemy as sa
import crawler.db.types


revision = '0008_review_shared_limits'
down_revision = '0007_pages_tls_verified'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'login_failures',
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_at', crawler.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'key', name=op.f('pk_login_failures')),
    )
    op.create_index(
        op.f('ix_login_failures_last_at'), 'login_failures', ['last_at'], unique=False
    )
    op.create_table(
        'rate_buckets',
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('tokens', sa.Float(), nullable=False),
        sa.Column('updated_at', crawler.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_buckets')),
    )


def downgrade() -> None:
    op.drop_table('rate_buckets')
    op.drop_index(op.f('ix_login_failures_last_at'), table_name='login_failures')
    op.drop_table('login_failures')

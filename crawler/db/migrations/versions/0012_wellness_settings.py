"""review app: wellness_settings, per analyst and a team default (user_id NULL)

Revision ID: 0012_wellness_settings
Revises: 0011_notice_routing_disputes
Create Date: 2026-12-06 15:00:00
"""

from alembic import op
import sqlalchemy as sa
import crawler.db.types


revision = '0012_wellness_settings'
down_revision = '0011_notice_routing_disputes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'wellness_settings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('blur_px', sa.Integer(), nullable=False),
        sa.Column('greyscale', sa.Boolean(), nullable=False),
        sa.Column('reveal_confirm', sa.Boolean(), nullable=False),
        sa.Column('keyframes_only', sa.Boolean(), nullable=False),
        sa.Column('break_minutes', sa.Integer(), nullable=False),
        sa.Column('break_reveals', sa.Integer(), nullable=False),
        sa.Column('theme', sa.String(length=8), nullable=False),
        sa.Column('updated_at', crawler.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'],
            name=op.f('fk_wellness_settings_user_id_users'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_wellness_settings')),
        sa.UniqueConstraint('user_id', name=op.f('uq_wellness_settings_user_id')),
    )


def downgrade() -> None:
    op.drop_table('wellness_settings')

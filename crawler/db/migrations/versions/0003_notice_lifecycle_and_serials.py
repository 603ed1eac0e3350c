"""notices: per-year serial counter, open-notice uniqueness, CDN flag, frozen notice text

Revision ID: 0003_notice_lifecycle
Revises: 0002_review_exposure
Create Date: 2026-11-23 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003_notice_lifecycle'
down_revision = '0002_review_exposure'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notice_serials',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_notice_serials'))
    )
    with op.batch_alter_table('notices') as batch:
        batch.add_column(sa.Column('cdn_fronted', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('escalation_contact', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('operator_name', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('operator_contact', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('legal_basis', sa.Text(), nullable=True))
        batch.add_column(sa.Column('appeal', sa.Text(), nullable=True))
    with op.batch_alter_table('notice_urls') as batch:
        batch.add_column(sa.Column('open_item_id', sa.Integer(), nullable=True))
        batch.create_unique_constraint(op.f('uq_notice_urls_open_item_id'), ['open_item_id'])


def downgrade() -> None:
    with op.batch_alter_table('notice_urls') as batch:
        batch.drop_constraint(op.f('uq_notice_urls_open_item_id'), type_='unique')
        batch.drop_column('open_item_id')
    with op.batch_alter_table('notices') as batch:
        for name in ('appeal', 'legal_basis', 'operator_contact', 'operator_name',
                     'escalation_contact', 'cdn_fronted'):
            batch.drop_column(name)
    op.drop_table('notice_serials')

"""notices: routing (route, recipient, hotline name, hold/release times, status `held`),
trusted-flagger text and per-URL legal basis frozen at build, withdrawn URLs, urgent
referrals (kind), and provider disputes with their re-assessment

Revision ID: 0011_notice_routing_disputes
Revises: 0010_exchanges
Create Date: 2026-12-06 14:40:00
"""

from alembic import op
import sqlalchemy as sa
import crawler.db.types


revision = '0011_notice_routing_disputes'
down_revision = '0010_exchanges'
branch_labels = None
depends_on = None

OLD = "status IN ('draft', 'sent', 'removed', 'escalated', 'closed')"
NEW = "status IN ('draft', 'sent', 'removed', 'escalated', 'closed', 'held')"


def upgrade() -> None:
    with op.batch_alter_table('notices') as batch:
        batch.add_column(sa.Column('route', sa.String(length=16), nullable=False, server_default='host'))
        batch.add_column(sa.Column('recipient', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('hotline_name', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('held_at', crawler.db.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('released_at', crawler.db.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('trusted_flagger', sa.Text(), nullable=True))
        batch.add_column(sa.Column('trusted_flagger_authority', sa.Text(), nullable=True))
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='takedown'))
        batch.drop_constraint(op.f('ck_notices_status'), type_='check')
        batch.create_check_constraint(op.f('ck_notices_status'), sa.text(NEW))
    op.execute("UPDATE notices SET recipient = abuse_contact WHERE recipient IS NULL")
    with op.batch_alter_table('notice_urls') as batch:
        batch.add_column(sa.Column('legal_basis', sa.Text(), nullable=True))
        batch.add_column(sa.Column('withdrawn_at', crawler.db.types.UTCDateTime(), nullable=True))
    op.create_table(
        'notice_disputes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('notice_id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('opened_at', crawler.db.types.UTCDateTime(), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=True),
        sa.Column('resolved_at', crawler.db.types.UTCDateTime(), nullable=True),
        sa.Column('resolved_by', sa.Integer(), nullable=True),
        sa.Column('resolution_notes', sa.Text(), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('upheld', 'withdrawn')",
            name=op.f('ck_notice_disputes_outcome'),
        ),
        sa.ForeignKeyConstraint(['item_id'], ['review_items.id'], name=op.f('fk_notice_disputes_item_id_review_items')),
        sa.ForeignKeyConstraint(['notice_id'], ['notices.id'], name=op.f('fk_notice_disputes_notice_id_notices'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['resolved_by'], ['users.id'], name=op.f('fk_notice_disputes_resolved_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_disputes')),
    )
    op.create_index(op.f('ix_notice_disputes_item_id'), 'notice_disputes', ['item_id'], unique=False)
    op.create_index(op.f('ix_notice_disputes_notice_id'), 'notice_disputes', ['notice_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_notice_disputes_notice_id'), table_name='notice_disputes')
    op.drop_index(op.f('ix_notice_disputes_item_id'), table_name='notice_disputes')
    op.drop_table('notice_disputes')
    with op.batch_alter_table('notice_urls') as batch:
        batch.drop_column('withdrawn_at')
        batch.drop_column('legal_basis')
    op.execute("DELETE FROM notices WHERE status = 'held'")
    with op.batch_alter_table('notices') as batch:
        batch.drop_constraint(op.f('ck_notices_status'), type_='check')
        batch.create_check_constraint(op.f('ck_notices_status'), sa.text(OLD))
        for name in ('kind', 'trusted_flagger_authority', 'trusted_flagger', 'released_at', 'held_at',
                     'hotline_name', 'recipient', 'route'):
            batch.drop_column(name)

"""exchanges: hash lists fed by exchanges (python-threatexchange), the record keys each
put in its list, false-positive opinions to send back; schedules.exchange

Revision ID: 0010_exchanges
Revises: 0009_video_vpdq
Create Date: 2026-12-06 14:45:00
"""

from alembic import op
import sqlalchemy as sa
import crawler.db.types


revision = '0010_exchanges'
down_revision = '0009_video_vpdq'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'exchanges',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('api', sa.String(length=32), nullable=False),
        sa.Column('list_id', sa.Integer(), nullable=False),
        sa.Column('config', sa.JSON(), nullable=False),
        sa.Column('checkpoint', sa.JSON(), nullable=True),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('full_fetch', sa.Boolean(), nullable=False),
        sa.Column('created_at', crawler.db.types.UTCDateTime(), nullable=False),
        sa.Column('last_fetch_at', crawler.db.types.UTCDateTime(), nullable=True),
        sa.Column('last_status', sa.String(length=16), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('lock_owner', sa.String(length=128), nullable=True),
        sa.Column('lock_until', crawler.db.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['list_id'], ['hash_lists.id'], name=op.f('fk_exchanges_list_id_hash_lists')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_exchanges')),
        sa.UniqueConstraint('list_id', name=op.f('uq_exchanges_list_id')),
        sa.UniqueConstraint('name', name=op.f('uq_exchanges_name')),
    )
    op.create_table(
        'exchange_records',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('exchange_id', sa.Integer(), nullable=False),
        sa.Column('record_key', sa.String(length=256), nullable=False),
        sa.Column('hash_type', sa.String(length=8), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['exchange_id'], ['exchanges.id'],
            name=op.f('fk_exchange_records_exchange_id_exchanges'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_records')),
        sa.UniqueConstraint(
            'exchange_id', 'record_key', 'hash_type', 'hash', name='uq_exchange_records_key'
        ),
    )
    op.create_index(
        'ix_exchange_records_signal', 'exchange_records', ['exchange_id', 'hash_type', 'hash']
    )
    op.create_index(
        'ix_exchange_records_generation', 'exchange_records', ['exchange_id', 'generation']
    )
    op.create_table(
        'exchange_opinions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('exchange_id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=True),
        sa.Column('hash_type', sa.String(length=8), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('opinion', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', crawler.db.types.UTCDateTime(), nullable=False),
        sa.Column('sent_at', crawler.db.types.UTCDateTime(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ['exchange_id'], ['exchanges.id'],
            name=op.f('fk_exchange_opinions_exchange_id_exchanges'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['item_id'], ['review_items.id'],
            name=op.f('fk_exchange_opinions_item_id_review_items'), ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_opinions')),
        sa.UniqueConstraint(
            'exchange_id', 'hash_type', 'hash', name='uq_exchange_opinions_signal'
        ),
    )
    op.create_index('ix_exchange_opinions_status', 'exchange_opinions', ['status'])
    with op.batch_alter_table('schedules') as batch:
        batch.add_column(sa.Column('exchange', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('schedules') as batch:
        batch.drop_column('exchange')
    op.drop_index('ix_exchange_opinions_status', table_name='exchange_opinions')
    op.drop_table('exchange_opinions')
    op.drop_index('ix_exchange_records_generation', table_name='exchange_records')
    op.drop_index('ix_exchange_records_signal', table_name='exchange_records')
    op.drop_table('exchange_records')
    op.drop_table('exchanges')

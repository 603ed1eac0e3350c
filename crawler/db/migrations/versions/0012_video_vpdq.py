"""vPDQ: video frame hashes on media (vpdq, duration_s), vpdq hash-list entries (the
serialisation in hash_entries.vpdq, its SHA-256 in hash), the list's vpdq_percent, and
frame matches' timestamp and match_percent

Revision ID: 0012_video_vpdq
Revises: 0008_review_shared_limits
Create Date: 2026-12-06 14:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0012_video_vpdq'
down_revision = '0008_review_shared_limits'
branch_labels = None
depends_on = None

_OLD_TYPES = "hash_type IN ('md5', 'sha1', 'sha256', 'pdq')"
_NEW_TYPES = "hash_type IN ('md5', 'sha1', 'sha256', 'pdq', 'vpdq')"


def upgrade() -> None:
    op.add_column('media', sa.Column('vpdq', sa.Text(), nullable=True))
    op.add_column('media', sa.Column('duration_s', sa.Float(), nullable=True))
    op.add_column('hash_lists', sa.Column('vpdq_percent', sa.Integer(), server_default='80', nullable=False))
    op.add_column('matches', sa.Column('timestamp', sa.Float(), nullable=True))
    op.add_column('matches', sa.Column('match_percent', sa.Float(), nullable=True))
    with op.batch_alter_table('hash_entries') as batch_op:
        batch_op.add_column(sa.Column('vpdq', sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f('ck_hash_entries_hash_type'), type_='check')
        batch_op.create_check_constraint(op.f('ck_hash_entries_hash_type'), _NEW_TYPES)


def downgrade() -> None:
    op.execute("DELETE FROM hash_entries WHERE hash_type = 'vpdq'")
    with op.batch_alter_table('hash_entries') as batch_op:
        batch_op.drop_constraint(op.f('ck_hash_entries_hash_type'), type_='check')
        batch_op.create_check_constraint(op.f('ck_hash_entries_hash_type'), _OLD_TYPES)
        batch_op.drop_column('vpdq')
    with op.batch_alter_table('matches') as batch_op:
        batch_op.drop_column('match_percent')
        batch_op.drop_column('timestamp')
    with op.batch_alter_table('hash_lists') as batch_op:
        batch_op.drop_column('vpdq_percent')
    with op.batch_alter_table('media') as batch_op:
        batch_op.drop_column('duration_s')
        batch_op.drop_column('vpdq')

"""vPDQ: video frame hashes on media (vpdq, duration_s), vpdq hash-list entries (the
serialisation in hash_entries.vpdq, its SHA-256 in hash), the list's vpdq_percent, and
frame matches' timestamp and match_percent; archive_members (what is inside an archive)

Revision ID: 0009_video_vpdq
Revises: 0008_review_shared_limits
Create Date: 2026-12-06 14:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0009_video_vpdq'
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
    op.create_table('archive_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('archive_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('media_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['archive_id'], ['media.id'], name=op.f('fk_archive_members_archive_id_media'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], name=op.f('fk_archive_members_media_id_media')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_archive_members')),
    sa.UniqueConstraint('archive_id', 'path', name='uq_archive_members_archive_path')
    )
    with op.batch_alter_table('archive_members') as batch_op:
        batch_op.create_index(batch_op.f('ix_archive_members_media_id'), ['media_id'], unique=False)
    with op.batch_alter_table('hash_entries') as batch_op:
        batch_op.add_column(sa.Column('vpdq', sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f('ck_hash_entries_hash_type'), type_='check')
        batch_op.create_check_constraint(op.f('ck_hash_entries_hash_type'), _NEW_TYPES)


def downgrade() -> None:
    op.drop_table('archive_members')
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

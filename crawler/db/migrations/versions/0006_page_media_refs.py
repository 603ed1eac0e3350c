"""storage: page_media_refs, the media URLs each page lists in a run (repeated media);
observations indexed by (media_url, run_id)

Revision ID: 0006_page_media_refs
Revises: 0005_review_claimed_by
Create Date: 2026-11-22 19:40:00
"""

from alembic import op
import sqlalchemy as sa
import crawler.db.types


revision = '0006_page_media_refs'
down_revision = '0005_review_claimed_by'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('page_media_refs',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('media_url', sa.Text(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['page_id'], ['pages.id'], name=op.f('fk_page_media_refs_page_id_pages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['crawl_runs.id'], name=op.f('fk_page_media_refs_run_id_crawl_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'media_url', 'page_id', name=op.f('pk_page_media_refs'))
    )
    with op.batch_alter_table('page_media_refs') as batch:
        batch.create_index(batch.f('ix_page_media_refs_page_id'), ['page_id'], unique=False)
    op.create_index('ix_observations_media_url_run', 'observations', ['media_url', 'run_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_observations_media_url_run', table_name='observations')
    op.drop_table('page_media_refs')

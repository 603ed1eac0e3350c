"""evidence: per-fetch provenance records of pages (WARC kept beside, no media bytes)

Revision ID: 0004_evidence_records
Revises: 0003_notice_lifecycle
Create Date: 2026-11-24 10:00:00
"""

from alembic import op
import sqlalchemy as sa
import crawler.db.types


revision = '0004_evidence_records'
down_revision = '0003_notice_lifecycle'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evidence_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('page_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('requested_url', sa.Text(), nullable=False),
    sa.Column('final_url', sa.Text(), nullable=False),
    sa.Column('redirect_chain', sa.JSON(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('tls_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('tls_issuer', sa.Text(), nullable=True),
    sa.Column('fetched_at', crawler.db.types.UTCDateTime(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=True),
    sa.Column('policy_sha256', sa.String(length=64), nullable=True),
    sa.Column('software_version', sa.String(length=64), nullable=True),
    sa.Column('data_media', sa.JSON(), nullable=False),
    sa.Column('warc_path', sa.Text(), nullable=True),
    sa.Column('created_at', crawler.db.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['page_id'], ['pages.id'], name=op.f('fk_evidence_records_page_id_pages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['crawl_runs.id'], name=op.f('fk_evidence_records_run_id_crawl_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_records'))
    )
    with op.batch_alter_table('evidence_records') as batch:
        batch.create_index(batch.f('ix_evidence_records_created_at'), ['created_at'], unique=False)
        batch.create_index(batch.f('ix_evidence_records_page_id'), ['page_id'], unique=False)


def downgrade() -> None:
    op.drop_table('evidence_records')

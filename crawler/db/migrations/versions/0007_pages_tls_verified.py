"""pages: tls_verified (H-07), null for plain HTTP, false when the certificate did not
verify against the system trust store for the host, true when it did

Revision ID: 0007_pages_tls_verified
Revises: 0006_page_media_refs
Create Date: 2026-11-22 19:50:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007_pages_tls_verified'
down_revision = '0006_page_media_refs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('pages', sa.Column('tls_verified', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pages') as batch_op:
        batch_op.drop_column('tls_verified')

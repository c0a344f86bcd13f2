"""Leases: which server process runs the analysis worker when several share the database.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("leases", sa.Column("name", sa.String(length=64), nullable=False),
                    sa.Column("holder", sa.String(length=200), nullable=False),
                    sa.Column("expires_at", sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")))


def downgrade() -> None:
    op.drop_table("leases")

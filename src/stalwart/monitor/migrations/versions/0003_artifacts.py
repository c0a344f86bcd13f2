"""Model files and per-window details: the model a service may hold (skops, ONNX or TorchScript)
for OOD, label-free accuracy and robustness probes, and a JSON column for what a window's analysis
keeps beside its metrics (the probe's sample predictions, the online-FDR state).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("n_bytes", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_model_artifacts_model_id_models"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_artifacts")),
        sa.UniqueConstraint("model_id", name=op.f("uq_model_artifacts_model_id")))
    op.add_column("windows", sa.Column("details", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite cannot drop a column in place: batch mode copies the table (constraints are named)
    with op.batch_alter_table("windows") as batch:
        batch.drop_column("details")
    op.drop_table("model_artifacts")

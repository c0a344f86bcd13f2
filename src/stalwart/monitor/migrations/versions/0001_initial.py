"""The first schema: projects, API keys, models with their reference set, batches, labels,
analysed windows, alert rules and alert events.

Revision ID: 0001
Revises: (none)

A frozen copy of the schema at this revision: later revisions change tables with ``op`` calls and
never import :data:`stalwart.monitor.store.metadata`, which moves on.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _owner(table: str, column: str, parent: str) -> tuple[sa.Column, sa.ForeignKeyConstraint]:
    return (sa.Column(column, sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint([column], [f"{parent}.id"], name=op.f(f"fk_{table}_{column}_{parent}"),
                                    ondelete="CASCADE"))


def _keys(table: str, *unique: str) -> list:
    keys = [sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))]
    if unique:
        keys.append(sa.UniqueConstraint(*unique, name=op.f(f"uq_{table}_{'_'.join(unique)}")))
    return keys


def _text(name: str, length: int | None = None, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length) if length else sa.Text(), nullable=nullable)


def _int(name: str, default: str | None = None) -> sa.Column:
    return sa.Column(name, sa.Integer(), server_default=default, nullable=False)


def _float(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Float(), nullable=nullable)


def upgrade() -> None:
    op.create_table("projects", _id(), _text("name", 200), _float("created_at"), *_keys("projects", "name"))
    op.create_table("api_keys", _id(), *_owner("api_keys", "project_id", "projects"), _text("key_id", 16),
                    _text("key_hash", 64), _text("scope", 16), _float("created_at"),
                    sa.Column("revoked", sa.Boolean(), server_default=sa.false(), nullable=False),
                    *_keys("api_keys"))
    op.create_index(op.f("ix_api_keys_key_id"), "api_keys", ["key_id"], unique=False)
    op.create_table("models", _id(), *_owner("models", "project_id", "projects"), _text("name", 200),
                    _text("task", 32), _text("classes", nullable=True), _text("columns"), _text("config"),
                    _int("labels_seen", "0"), _float("created_at"), *_keys("models", "project_id", "name"))
    op.create_table("alert_rules", _id(), *_owner("alert_rules", "model_id", "models"), _text("name", 200),
                    _text("condition", 500), _int("for_windows"), _text("webhook_url", 2000, nullable=True),
                    _text("state", 16), _int("breaches"), _int("clears"), _int("last_window"),
                    _float("created_at"), *_keys("alert_rules", "model_id", "name"))
    op.create_table("batches", _id(), *_owner("batches", "model_id", "models"), _text("batch_key", 200),
                    _int("n_rows"), _text("digest", 64), _float("first_ts"), _float("last_ts"),
                    sa.Column("data", sa.LargeBinary(), nullable=False), _float("received_at"),
                    *_keys("batches", "model_id", "batch_key"))
    op.create_index(op.f("ix_batches_model_id_id"), "batches", ["model_id", "id"], unique=False)
    op.create_table("labels", _id(), *_owner("labels", "model_id", "models"), _text("row_id", 200),
                    _text("label"), _float("received_at"), *_keys("labels", "model_id", "row_id"))
    op.create_table("reference_sets", _id(), *_owner("reference_sets", "model_id", "models"), _int("n_rows"),
                    sa.Column("data", sa.LargeBinary(), nullable=False), _float("created_at"),
                    *_keys("reference_sets", "model_id"))
    op.create_table("windows", _id(), *_owner("windows", "model_id", "models"), _int("seq"), _int("first_batch"),
                    _int("last_batch"), _int("n_rows"), _float("start_ts"), _float("end_ts"),
                    _int("n_labelled", "0"), _text("metrics"), _text("drift"), _float("analysed_at"),
                    *_keys("windows", "model_id", "seq"))
    rule_fk = sa.ForeignKeyConstraint(["rule_id"], ["alert_rules.id"], name=op.f("fk_alerts_rule_id_alert_rules"),
                                      ondelete="CASCADE")
    op.create_table("alerts", _id(), sa.Column("rule_id", sa.Integer(), nullable=False), rule_fk,
                    *_owner("alerts", "model_id", "models"), _int("window_seq"), _text("from_state", 16),
                    _text("to_state", 16), _float("value", nullable=True), _text("message"), _float("created_at"),
                    _text("idempotency_key", 64), _text("delivery", 16), _int("attempts", "0"),
                    _float("delivered_at", nullable=True), *_keys("alerts", "idempotency_key"))
    op.create_index(op.f("ix_alerts_model_id_id"), "alerts", ["model_id", "id"], unique=False)


def downgrade() -> None:
    for table in ("alerts", "windows", "reference_sets", "labels", "batches", "alert_rules", "models",
                  "api_keys", "projects"):
        op.drop_table(table)

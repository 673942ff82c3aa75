"""dynamic universes: rules, pins and a schedule on a universe; rebalance runs; rule versions; run ids on events

A dynamic universe (DESIGN §12, issue 14) keeps its checked rule tree, its pinned-in and pinned-out symbols, its
rebalance schedule and when it is next due on the universe row. Each applied rebalance is a ``rebalance_runs`` row
(unique per universe and schedule slot, which is what keeps two schedulers from running one universe twice in a
period), the membership events it wrote carry its id, and every change of definition is a ``universe_rules_versions``
row. The two new tables are owner-scoped: row-level security as in 0002.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_OWNER_TABLES = ("rebalance_runs", "universe_rules_versions")
CURRENT_OWNER = "NULLIF(current_setting('app.owner_id', true), '')::uuid"


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN, never a batch rebuild: on SQLite a rebuild drops the old universes table,
    # and with foreign keys on, that deletes every member and event (ON DELETE CASCADE). The CHECK on the schedule
    # is added on PostgreSQL only (SQLite cannot add one to a table in place); the service checks it everywhere.
    op.add_column("universes", sa.Column("rules", sa.JSON(), nullable=True))
    op.add_column("universes", sa.Column("rules_version", sa.Integer(), server_default="0", nullable=False))
    op.add_column("universes", sa.Column("include_symbols", sa.JSON(), nullable=True))
    op.add_column("universes", sa.Column("exclude_symbols", sa.JSON(), nullable=True))
    op.add_column("universes", sa.Column("rebalance", sa.String(length=16), nullable=True))
    op.add_column("universes", sa.Column("next_rebalance_at", storage.db.UTCDateTime(), nullable=True))
    op.create_index(op.f("ix_universes_next_rebalance_at"), "universes", ["next_rebalance_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(
            op.f("ck_universes_rebalance"), "universes", "rebalance IN ('daily', 'weekly', 'monthly', 'quarterly')"
        )
    op.add_column("universe_asset_events", sa.Column("run_id", sa.Uuid(), nullable=True))

    op.create_table(
        "rebalance_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("universe_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=True),
        sa.Column("rules_version", sa.Integer(), nullable=False),
        sa.Column("data_as_of", sa.Date(), nullable=True),
        sa.Column("started_at", storage.db.UTCDateTime(), nullable=False),
        sa.Column("size_before", sa.Integer(), nullable=False),
        sa.Column("size_after", sa.Integer(), nullable=False),
        sa.Column("additions", sa.Integer(), nullable=False),
        sa.Column("removals", sa.Integer(), nullable=False),
        sa.Column("turnover", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "trigger IN ('create', 'manual', 'scheduled', 'listings_sync')", name=op.f("ck_rebalance_runs_trigger")
        ),
        sa.ForeignKeyConstraint(
            ["universe_id"],
            ["universes.id"],
            name=op.f("fk_rebalance_runs_universe_id_universes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rebalance_runs")),
        sa.UniqueConstraint("universe_id", "period", name=op.f("uq_rebalance_runs_universe_id_period")),
    )
    op.create_index(op.f("ix_rebalance_runs_owner_id"), "rebalance_runs", ["owner_id"], unique=False)
    op.create_index(
        "ix_rebalance_runs_universe_id_started_at", "rebalance_runs", ["universe_id", "started_at"], unique=False
    )

    op.create_table(
        "universe_rules_versions",
        sa.Column("universe_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=True),
        sa.Column("include_symbols", sa.JSON(), nullable=True),
        sa.Column("exclude_symbols", sa.JSON(), nullable=True),
        sa.Column("rebalance", sa.String(length=16), nullable=True),
        sa.Column("changed_at", storage.db.UTCDateTime(), nullable=False),
        sa.Column("change", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["universe_id"],
            ["universes.id"],
            name=op.f("fk_universe_rules_versions_universe_id_universes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("universe_id", "version", name=op.f("pk_universe_rules_versions")),
    )
    op.create_index(op.f("ix_universe_rules_versions_owner_id"), "universe_rules_versions", ["owner_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        for table in NEW_OWNER_TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY {table}_owner_isolation ON {table} "
                f"USING (owner_id = {CURRENT_OWNER}) WITH CHECK (owner_id = {CURRENT_OWNER})"
            )


def downgrade() -> None:
    op.drop_table("universe_rules_versions")
    op.drop_table("rebalance_runs")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as 0009 does: no batch rebuild of tables with dependants.
    op.drop_column("universe_asset_events", "run_id")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_universes_rebalance"), "universes", type_="check")
    op.drop_index(op.f("ix_universes_next_rebalance_at"), table_name="universes")
    for column in ("next_rebalance_at", "rebalance", "exclude_symbols", "include_symbols", "rules_version", "rules"):
        op.drop_column("universes", column)

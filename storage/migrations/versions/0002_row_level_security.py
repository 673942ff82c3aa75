"""Row-level security on every owner-scoped table (PostgreSQL only).

Each policy shows and accepts only rows whose owner_id equals the transaction's ``app.owner_id`` setting (set by
storage.db.unit_of_work). With no setting, a role subject to the policies sees no rows at all. The role that owns
the tables (migrations, workers, scheduler) is not subject to them; the server connects as another role.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER_TABLES = ("universes", "universe_assets", "universe_asset_events", "validation_jobs", "validation_job_items")
CURRENT_OWNER = "NULLIF(current_setting('app.owner_id', true), '')::uuid"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no row-level security; the service layer's owner filters are the wall there
    for table in OWNER_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_owner_isolation ON {table} "
            f"USING (owner_id = {CURRENT_OWNER}) WITH CHECK (owner_id = {CURRENT_OWNER})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in OWNER_TABLES:
        op.execute(f"DROP POLICY IF EXISTS {table}_owner_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

"""drop the listing_status index: on SQLite it made lookups by ticker read every listed asset

Nearly every asset is listed. Without statistics, SQLite's planner takes an equality on an indexed column to be
selective, so `symbol IN (...) AND listing_status = ?` (every symbol lookup, with the status as a bound parameter)
walked ix_assets_listing_status through all listed assets instead of the ticker index: 16 ms instead of 0.1 ms per
lookup on 100,000 assets, and the same for every search route (bench scenario 5). Nothing needs the index: the
queries by status are batch jobs that read most rows anyway, and PostgreSQL's planner, which has statistics, did
not use it for the common case either.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_assets_listing_status", table_name="assets")


def downgrade() -> None:
    op.create_index("ix_assets_listing_status", "assets", ["listing_status"], unique=False)

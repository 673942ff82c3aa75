"""history pages: index membership events by (universe_id, effective_at, id)

``get_universe_history`` (issue 14) reads a universe's events newest first, ordered by (effective_at, id) and
paginated by that pair. ``ix_universe_asset_events_universe_id_effective_at`` ends at effective_at, so events that
share an effective time (every member of a creation, an import or a rebalance) had to be sorted by id after the
index read; with id in the index a page is a range of index entries read backwards and stops after the page. It
replaces the old index, which it starts with (point-in-time reads and turnover windows use it the same way).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "ix_universe_asset_events_universe_id_effective_at"
NEW = "ix_universe_asset_events_universe_id_effective_at_id"


def upgrade() -> None:
    op.create_index(NEW, "universe_asset_events", ["universe_id", "effective_at", "id"], unique=False)
    op.drop_index(OLD, table_name="universe_asset_events")


def downgrade() -> None:
    op.create_index(OLD, "universe_asset_events", ["universe_id", "effective_at"], unique=False)
    op.drop_index(NEW, table_name="universe_asset_events")

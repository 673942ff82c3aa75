"""membership integrity: a member's position is unique within its universe

Concurrent adds used to read the next position as max + 1 without a lock, so two adds could give members the same
position, and keyset pages (ordered by position) skipped the rows that shared a page's last value. The writers are
now serialised per universe (services/universes.py); this index makes a duplicate impossible. Universes that already
hold duplicates are renumbered first, keeping their order (position, then when added, then asset id).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    members = sa.table(
        "universe_assets",
        sa.column("universe_id", sa.Uuid()),
        sa.column("asset_id", sa.Uuid()),
        sa.column("position", sa.Integer()),
        sa.column("added_at", sa.DateTime()),
    )
    crowded = connection.execute(
        sa.select(members.c.universe_id)
        .group_by(members.c.universe_id, members.c.position)
        .having(sa.func.count() > 1)
        .distinct()
    ).scalars()
    for universe_id in list(crowded):
        rows = connection.execute(
            sa.select(members.c.asset_id)
            .where(members.c.universe_id == universe_id)
            .order_by(members.c.position, members.c.added_at, members.c.asset_id)
        ).scalars()
        for position, asset_id in enumerate(list(rows)):
            connection.execute(
                members.update()
                .where(members.c.universe_id == universe_id, members.c.asset_id == asset_id)
                .values(position=position)
            )
    op.drop_index("ix_universe_assets_universe_id_position", table_name="universe_assets")
    op.create_index(
        "uq_universe_assets_universe_id_position", "universe_assets", ["universe_id", "position"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_universe_assets_universe_id_position", table_name="universe_assets")
    op.create_index("ix_universe_assets_universe_id_position", "universe_assets", ["universe_id", "position"])

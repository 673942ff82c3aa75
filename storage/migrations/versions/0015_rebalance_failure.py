"""dynamic universes: the last scheduled rebalance that failed, on the universe

A scheduled (or after-sync) rebalance that cannot be applied — its rules select more than a universe may hold, its
stored rules no longer check — used to be a log line only; the universe then stayed as it was until its next period
with nothing telling its owner why. ``universes.rebalance_failure`` keeps the last such failure (JSON: at, trigger,
period, code, message) until a rebalance succeeds or the definition changes; get_universe shows it.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN, never a batch rebuild (migration 0012 says why).
    op.add_column("universes", sa.Column("rebalance_failure", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("universes", "rebalance_failure")  # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as 0012 does

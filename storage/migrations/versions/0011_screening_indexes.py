"""screening indexes: the common filter columns, each followed by the market-cap order a screen's page is read in

``screen_assets`` and ``search_assets`` with filters (issue 13, bench scenario 8) sort by market cap, largest first,
unknown caps last, then by ticker. With an index per filter column in that order, the first page of a sector (9,000
of 100,000 assets) is the first 50 entries of the sector's range instead of a sort of all 9,000; a broad rule
(``any`` of several) walks the plain market-cap index and stops after one page. The same indexes serve equality,
``IN`` and the OR of conditions on industry, country and IPO year, which had no index (a full scan each).

``ix_assets_sector`` is replaced by ``ix_assets_sector_market_cap``, which starts with the same column. SQLite
writes the order without NULLS LAST (storage/db.py): descending, it puts NULLs last anyway.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _cap_order() -> list[sa.ColumnElement]:
    return [sa.column("market_cap").desc().nulls_last(), sa.column("symbol")]


INDEXES: dict[str, list] = {
    "ix_assets_market_cap": [],
    "ix_assets_sector_market_cap": ["sector"],
    "ix_assets_country_market_cap": ["country"],
    "ix_assets_industry_market_cap": ["industry"],
    "ix_assets_ipo_year_market_cap": [sa.column("ipo_year").desc().nulls_last()],
}


def upgrade() -> None:
    for name, lead in INDEXES.items():
        op.create_index(name, "assets", [*lead, *_cap_order()], unique=False)
    op.drop_index("ix_assets_sector", table_name="assets")


def downgrade() -> None:
    op.create_index("ix_assets_sector", "assets", ["sector"], unique=False)
    for name in INDEXES:
        op.drop_index(name, table_name="assets")

"""name words carry the market cap: a filtered search reads a word's assets largest first and stops after a page

``search_assets`` with filters (issue 13, bench scenario 8) ranks name matches by market cap, largest first. It read
every asset carrying the query's word (one asset in 60 for an industry word: 1,700 rows looked up, checked and
sorted per search) to rank them. With the cap copied into ``asset_name_words`` and an index on (word, market cap
largest first, symbol, asset id), a word's assets come in ranking order from the index, and the search stops once a
page has passed the filters. ``sector`` and ``starts_name`` (the word a name starts with: the "name starts with the
query" rank) are in the index too, so that the walk tests them without reading the asset.

Existing rows are filled here: the cap from their asset, ``starts_name`` from the asset's name, by the same function
that writes them from now on (storage/repositories/asset_search.py).

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.repositories.asset_search import name_word_rows

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_asset_name_words_word_market_cap"


def upgrade() -> None:
    # Plain ADD COLUMN on both stores (no batch: SQLite adds a column without rebuilding the table).
    op.add_column("asset_name_words", sa.Column("market_cap", sa.Float(), nullable=True))
    op.add_column("asset_name_words", sa.Column("starts_name", sa.Boolean(), server_default=sa.false(), nullable=False))

    bind = op.get_bind()
    assets = sa.table("assets", sa.column("id", sa.Uuid()), sa.column("name", sa.String()), sa.column("market_cap"))
    words = sa.table(
        "asset_name_words",
        sa.column("word", sa.String()),
        sa.column("asset_id", sa.Uuid()),
        sa.column("market_cap", sa.Float()),
        sa.column("starts_name", sa.Boolean()),
    )
    cap = sa.select(assets.c.market_cap).where(assets.c.id == words.c.asset_id).scalar_subquery()
    bind.execute(words.update().values(market_cap=cap))
    # Only the assets the index holds (the listings load leaves delisted ones out), by the words it holds for them.
    indexed = sa.select(assets.c.id, assets.c.name).where(
        assets.c.id.in_(sa.select(words.c.asset_id).distinct()), assets.c.name.is_not(None)
    )
    first = (
        words.update()
        .where(words.c.word == sa.bindparam("w"), words.c.asset_id == sa.bindparam("a"))
        .values(starts_name=True)
    )
    batch: list[dict] = []
    for asset_id, name in bind.execute(indexed).all():
        batch.extend(
            {"w": r["word"], "a": asset_id} for r in name_word_rows(asset_id, name, None, "") if r["starts_name"]
        )
        if len(batch) >= 5_000:
            bind.execute(first, batch)
            batch = []
    if batch:
        bind.execute(first, batch)

    op.create_index(
        INDEX,
        "asset_name_words",
        ["word", sa.column("market_cap").desc().nulls_last(), "symbol", "asset_id", "sector", "starts_name"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="asset_name_words")
    with op.batch_alter_table("asset_name_words", schema=None) as batch_op:
        batch_op.drop_column("starts_name")
        batch_op.drop_column("market_cap")

"""search index: asset name words, and the ranking order of symbols

``asset_name_words`` holds each word of every asset name (storage/repositories/assets.py keeps it current), so that
search finds name matches through an index instead of scanning every asset with LIKE; ``ix_assets_symbol_order``
lets a search for a common word walk assets in ranking order and stop after one page; ``ix_assets_symbol_pattern``
replaces ``ix_assets_symbol`` (on PostgreSQL with a byte-wise operator class, so ticker-prefix ranges can use it).
Existing names are indexed here.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.repositories.asset_search import name_word_rows

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORD = sa.String(length=300).with_variant(sa.String(length=300, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "asset_name_words",
        sa.Column("word", WORD, nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("sector", sa.String(length=64), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_asset_name_words_asset_id_assets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("word", "asset_id", name=op.f("pk_asset_name_words")),
    )
    with op.batch_alter_table("asset_name_words", schema=None) as batch_op:
        batch_op.create_index("ix_asset_name_words_asset_id", ["asset_id"], unique=False)
        batch_op.create_index("ix_asset_name_words_word_sector", ["word", "sector", "symbol", "asset_id"], unique=False)
    with op.batch_alter_table("assets", schema=None) as batch_op:
        # An expression index (autogenerate cannot compare those, so it is written by hand, like ix_assets_name_lower).
        batch_op.create_index("ix_assets_symbol_order", [sa.text("length(symbol)"), "symbol"], unique=False)
        # Replaces ix_assets_symbol: on PostgreSQL a byte-wise operator class, so that ticker-prefix ranges (~>=~,
        # ~<~) use it whatever the database's collation; equality lookups use it as before.
        batch_op.create_index(
            "ix_assets_symbol_pattern", ["symbol"], unique=False, postgresql_ops={"symbol": "varchar_pattern_ops"}
        )
        batch_op.drop_index("ix_assets_symbol")

    bind = op.get_bind()
    assets = sa.table(
        "assets",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("sector", sa.String()),
        sa.column("symbol", sa.String()),
    )
    words = sa.table(
        "asset_name_words",
        sa.column("word", WORD),
        sa.column("asset_id", sa.Uuid()),
        sa.column("sector", sa.String()),
        sa.column("symbol", sa.String()),
    )
    batch: list[dict] = []
    query = sa.select(assets.c.id, assets.c.name, assets.c.sector, assets.c.symbol).where(assets.c.name.is_not(None))
    for asset_id, name, sector, symbol in bind.execute(query).all():
        # The four columns the table has at this revision (migration 0014 adds market_cap and starts_name).
        batch.extend(
            {k: row[k] for k in ("word", "asset_id", "sector", "symbol")}
            for row in name_word_rows(asset_id, name, sector, symbol)
        )
        if len(batch) >= 5_000:
            bind.execute(words.insert(), batch)
            batch = []
    if batch:
        bind.execute(words.insert(), batch)


def downgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.create_index("ix_assets_symbol", ["symbol"], unique=False)
        batch_op.drop_index("ix_assets_symbol_pattern")
        batch_op.drop_index("ix_assets_symbol_order")
    with op.batch_alter_table("asset_name_words", schema=None) as batch_op:
        batch_op.drop_index("ix_asset_name_words_word_sector")
        batch_op.drop_index("ix_asset_name_words_asset_id")
    op.drop_table("asset_name_words")

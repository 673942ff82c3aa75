"""security master: listing columns on assets, ticker history details, index membership, listing syncs

docs/SECURITY_MASTER.md.

* ``assets``: ``listed_on``, ``delisted_on``, ``ipo_year``, ``source_sector`` and ``source_industry`` (the source's
  own words beside the GICS ``sector``/``industry``), ``market_cap_as_of`` and ``master_key`` (the snapshot's id of
  the security, unique, so that a reload matches each security to the asset it already has). ``cik``, ``exchange``,
  ``asset_type``, ``market_cap``, ``listing_status``, ``isin`` and ``figi`` exist since 0001. Indexes on ``cik`` and
  ``listing_status``.
* ``asset_symbols``: ``source`` (what dated the span), ``exact`` and ``changed_after`` (for spans bounded by two
  snapshots), and an index on ``(symbol, valid_from)`` for lookups of a ticker at a date.
* ``asset_indices``: index membership (S&P 500, NASDAQ 100 ...).
* ``listing_syncs``: one row per source per sync, and per load of the shipped snapshot.

The new columns are added with plain ALTER TABLE (no batch rebuild: rebuilding ``assets`` on SQLite would drop
the table, and its foreign keys would cascade).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _asset_columns() -> list[sa.Column]:
    # Fresh Column objects per run: a Column joins the table it is added to, and tests migrate many stores.
    return [
        sa.Column("listed_on", sa.Date(), nullable=True),
        sa.Column("delisted_on", sa.Date(), nullable=True),
        sa.Column("ipo_year", sa.Integer(), nullable=True),
        sa.Column("source_sector", sa.String(length=64), nullable=True),
        sa.Column("source_industry", sa.String(length=128), nullable=True),
        sa.Column("market_cap_as_of", sa.Date(), nullable=True),
        sa.Column("master_key", sa.String(length=80), nullable=True),
    ]


def upgrade() -> None:
    for column in _asset_columns():
        op.add_column("assets", column)
    op.create_index("ix_assets_cik", "assets", ["cik"], unique=False)
    op.create_index("ix_assets_listing_status", "assets", ["listing_status"], unique=False)
    op.create_index("uq_assets_master_key", "assets", ["master_key"], unique=True)

    op.add_column("asset_symbols", sa.Column("source", sa.String(length=32), nullable=True))
    op.add_column("asset_symbols", sa.Column("exact", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column("asset_symbols", sa.Column("changed_after", sa.Date(), nullable=True))
    op.create_index("ix_asset_symbols_symbol_valid_from", "asset_symbols", ["symbol", "valid_from"], unique=False)

    op.create_table(
        "asset_indices",
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("index_name", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_asset_indices_asset_id_assets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("asset_id", "index_name", name=op.f("pk_asset_indices")),
    )
    op.create_index("ix_asset_indices_index_name", "asset_indices", ["index_name"], unique=False)

    op.create_table(
        "listing_syncs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("delisted", sa.Integer(), nullable=False),
        sa.Column("renamed", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.CheckConstraint("status IN ('ok', 'failed', 'refused')", name=op.f("ck_listing_syncs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_syncs")),
    )
    op.create_index("ix_listing_syncs_source_fetched_at", "listing_syncs", ["source", "fetched_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_listing_syncs_source_fetched_at", table_name="listing_syncs")
    op.drop_table("listing_syncs")
    op.drop_index("ix_asset_indices_index_name", table_name="asset_indices")
    op.drop_table("asset_indices")
    op.drop_index("ix_asset_symbols_symbol_valid_from", table_name="asset_symbols")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as 0005 does: no batch rebuild of tables with dependants.
    for name in ("changed_after", "exact", "source"):
        op.drop_column("asset_symbols", name)
    op.drop_index("uq_assets_master_key", table_name="assets")
    op.drop_index("ix_assets_listing_status", table_name="assets")
    op.drop_index("ix_assets_cik", table_name="assets")
    for column in reversed(_asset_columns()):
        op.drop_column("assets", column.name)

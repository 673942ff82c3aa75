"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 08:18:14.364246
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("exchange", sa.String(length=64), nullable=True),
        sa.Column("asset_type", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=True),
        sa.Column("sector", sa.String(length=64), nullable=True),
        sa.Column("industry", sa.String(length=128), nullable=True),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.Column("market_cap", sa.Float(), nullable=True),
        sa.Column("pe_ratio", sa.Float(), nullable=True),
        sa.Column("dividend_yield", sa.Float(), nullable=True),
        sa.Column("is_validated", sa.Boolean(), nullable=False),
        sa.Column("validation_status", sa.String(length=16), nullable=False),
        sa.Column("validation_source", sa.String(length=32), nullable=True),
        sa.Column("validation_reason", sa.String(length=300), nullable=True),
        sa.Column("last_validated_at", storage.db.UTCDateTime(), nullable=True),
        sa.Column("listing_status", sa.String(length=16), nullable=False),
        sa.Column("isin", sa.String(length=12), nullable=True),
        sa.Column("figi", sa.String(length=12), nullable=True),
        sa.Column("cik", sa.String(length=10), nullable=True),
        sa.Column("asset_metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("listing_status IN ('listed', 'delisted')", name=op.f("ck_assets_listing_status")),
        sa.CheckConstraint(
            "validation_status IN ('valid', 'invalid', 'pending', 'unknown')", name=op.f("ck_assets_validation_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
    )
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.create_index("ix_assets_is_validated", ["is_validated"], unique=False)
        batch_op.create_index("ix_assets_sector", ["sector"], unique=False)
        batch_op.create_index("ix_assets_symbol", ["symbol"], unique=False)
        batch_op.create_index("ix_assets_validation_status", ["validation_status"], unique=False)
        # Case-insensitive name search (autogenerate cannot compare expression indexes, so it is written here).
        batch_op.create_index("ix_assets_name_lower", [sa.text("lower(name)")], unique=False)
        batch_op.create_index(
            "uq_assets_symbol_listed",
            ["symbol"],
            unique=True,
            sqlite_where=sa.text("listing_status = 'listed'"),
            postgresql_where=sa.text("listing_status = 'listed'"),
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", storage.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("created_at", storage.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", storage.db.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", storage.db.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", storage.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "asset_symbols",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_asset_symbols_asset_id_assets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_symbols")),
    )
    with op.batch_alter_table("asset_symbols", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_symbols_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index("ix_asset_symbols_symbol", ["symbol"], unique=False)

    op.create_table(
        "universes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", storage.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", storage.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('static', 'dynamic')", name=op.f("ck_universes_kind")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_universes_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_universes")),
        sa.UniqueConstraint("owner_id", "name_key", name=op.f("uq_universes_owner_id_name_key")),
    )
    with op.batch_alter_table("universes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_universes_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "universe_asset_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("universe_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("effective_at", storage.db.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", storage.db.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.CheckConstraint("action IN ('added', 'removed')", name=op.f("ck_universe_asset_events_action")),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_universe_asset_events_asset_id_assets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["universe_id"],
            ["universes.id"],
            name=op.f("fk_universe_asset_events_universe_id_universes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_universe_asset_events")),
    )
    with op.batch_alter_table("universe_asset_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_universe_asset_events_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(
            "ix_universe_asset_events_universe_id_effective_at", ["universe_id", "effective_at"], unique=False
        )

    op.create_table(
        "universe_assets",
        sa.Column("universe_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("added_at", storage.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_universe_assets_asset_id_assets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["universe_id"], ["universes.id"], name=op.f("fk_universe_assets_universe_id_universes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("universe_id", "asset_id", name=op.f("pk_universe_assets")),
    )
    with op.batch_alter_table("universe_assets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_universe_assets_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index("ix_universe_assets_universe_id_position", ["universe_id", "position"], unique=False)

    op.create_table(
        "validation_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("universe_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("force_refresh", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("valid_count", sa.Integer(), nullable=False),
        sa.Column("invalid_count", sa.Integer(), nullable=False),
        sa.Column("pending_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=True),
        sa.Column("created_at", storage.db.UTCDateTime(), nullable=False),
        sa.Column("started_at", storage.db.UTCDateTime(), nullable=True),
        sa.Column("finished_at", storage.db.UTCDateTime(), nullable=True),
        sa.Column("updated_at", storage.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", storage.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_validation_jobs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_validation_jobs_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["universe_id"],
            ["universes.id"],
            name=op.f("fk_validation_jobs_universe_id_universes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_jobs")),
    )
    with op.batch_alter_table("validation_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_validation_jobs_owner_id_created_at", ["owner_id", "created_at"], unique=False)

    op.create_table(
        "validation_job_items",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("finished_at", storage.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'valid', 'invalid', 'pending', 'error', 'cancelled')",
            name=op.f("ck_validation_job_items_status"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["validation_jobs.id"],
            name=op.f("fk_validation_job_items_job_id_validation_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "symbol", name=op.f("pk_validation_job_items")),
    )
    with op.batch_alter_table("validation_job_items", schema=None) as batch_op:
        batch_op.create_index("ix_validation_job_items_job_id_position", ["job_id", "position"], unique=False)
        batch_op.create_index(batch_op.f("ix_validation_job_items_owner_id"), ["owner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("validation_job_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_validation_job_items_owner_id"))
        batch_op.drop_index("ix_validation_job_items_job_id_position")

    op.drop_table("validation_job_items")
    with op.batch_alter_table("validation_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_validation_jobs_owner_id_created_at")

    op.drop_table("validation_jobs")
    with op.batch_alter_table("universe_assets", schema=None) as batch_op:
        batch_op.drop_index("ix_universe_assets_universe_id_position")
        batch_op.drop_index(batch_op.f("ix_universe_assets_owner_id"))

    op.drop_table("universe_assets")
    with op.batch_alter_table("universe_asset_events", schema=None) as batch_op:
        batch_op.drop_index("ix_universe_asset_events_universe_id_effective_at")
        batch_op.drop_index(batch_op.f("ix_universe_asset_events_owner_id"))

    op.drop_table("universe_asset_events")
    with op.batch_alter_table("universes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_universes_owner_id"))

    op.drop_table("universes")
    with op.batch_alter_table("asset_symbols", schema=None) as batch_op:
        batch_op.drop_index("ix_asset_symbols_symbol")
        batch_op.drop_index(batch_op.f("ix_asset_symbols_asset_id"))

    op.drop_table("asset_symbols")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
    op.drop_table("users")
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index("ix_assets_name_lower")
        batch_op.drop_index(
            "uq_assets_symbol_listed",
            sqlite_where=sa.text("listing_status = 'listed'"),
            postgresql_where=sa.text("listing_status = 'listed'"),
        )
        batch_op.drop_index("ix_assets_validation_status")
        batch_op.drop_index("ix_assets_symbol")
        batch_op.drop_index("ix_assets_sector")
        batch_op.drop_index("ix_assets_is_validated")

    op.drop_table("assets")

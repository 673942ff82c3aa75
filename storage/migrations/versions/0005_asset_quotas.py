"""asset quotas and visibility, the cursor key, confusable-proof universe name keys

* ``assets.created_by``: the owner whose unvalidated add created an asset, null once a provider or the catalog
  confirms it; other owners' searches skip such assets. Existing unconfirmed assets are given to the owner who added
  them first (its earliest ``added`` event); unconfirmed assets no universe ever held stay visible.
* ``owner_quotas``: one row per owner — the lock a universe create takes, and the count of new unconfirmed assets
  in the current hour (services/quotas.py). Row-level security on PostgreSQL, like the other owner tables.
* ``server_secrets``: deployment-wide secrets every replica reads from the store; the key that signs pagination
  cursors is created here (``cursor_secret`` overrides it).
* ``universes.name_key`` is recomputed with the new folding (services/names.py: invisible characters dropped, NFKC,
  letters drawn like ASCII ones mapped to them). Names that now clash are resolved deterministically: per owner,
  the oldest universe (created_at, then id) keeps its name, each later one gets the first free " (2)", " (3)" ...
  suffix, in the same order.

Owner-scoped rows are read owner by owner with ``app.owner_id`` set, so the steps work whether or not row-level
security applies to the migrating role.

Revision ID: 0005
Revises: 0003
"""

import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from services.names import fold
from storage.db import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_OWNER = "NULLIF(current_setting('app.owner_id', true), '')::uuid"
NAME_MAX = 200

users = sa.table("users", sa.column("id", sa.Uuid()))
assets = sa.table(
    "assets",
    sa.column("id", sa.Uuid()),
    sa.column("validation_status", sa.String()),
    sa.column("created_by", sa.Uuid()),
)
events = sa.table(
    "universe_asset_events",
    sa.column("owner_id", sa.Uuid()),
    sa.column("asset_id", sa.Uuid()),
    sa.column("action", sa.String()),
    sa.column("recorded_at", UTCDateTime()),
    sa.column("id", sa.Integer()),
)
universes = sa.table(
    "universes",
    sa.column("id", sa.Uuid()),
    sa.column("owner_id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("name_key", sa.String()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)


def upgrade() -> None:
    op.add_column("assets", sa.Column("created_by", sa.Uuid(), nullable=True))
    op.create_table(
        "owner_quotas",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("new_assets_window_start", UTCDateTime(), nullable=True),
        sa.Column("new_assets_used", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_owner_quotas_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("owner_id", name=op.f("pk_owner_quotas")),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE owner_quotas ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY owner_quotas_owner_isolation ON owner_quotas "
            f"USING (owner_id = {CURRENT_OWNER}) WITH CHECK (owner_id = {CURRENT_OWNER})"
        )
    secrets_table = sa.table(
        "server_secrets",
        sa.column("name", sa.String()),
        sa.column("value", sa.String()),
        sa.column("created_at", UTCDateTime()),
    )
    bind.execute(
        secrets_table.insert().values(name="cursor", value=secrets.token_urlsafe(48), created_at=datetime.now(UTC))
    )
    _attribute_unconfirmed_assets(bind)
    _rekey_universes(bind, fold)


def downgrade() -> None:
    _rekey_universes(op.get_bind(), lambda name: " ".join(name.split()).casefold())  # the 0001 key
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS owner_quotas_owner_isolation ON owner_quotas")
    op.drop_table("server_secrets")
    op.drop_table("owner_quotas")
    # A plain ALTER TABLE (SQLite 3.35+): a batch rebuild would drop the table, and its foreign keys would cascade.
    op.drop_column("assets", "created_by")


def _owners(bind: sa.Connection) -> list[uuid.UUID]:
    return list(bind.execute(sa.select(users.c.id).order_by(users.c.id)).scalars())


def _act_as(bind: sa.Connection, owner: uuid.UUID | None) -> None:
    """Scope row-level security to ``owner`` for the rest of the migration's transaction (PostgreSQL)."""
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT set_config('app.owner_id', :owner, true)"), {"owner": str(owner or "")})


def _attribute_unconfirmed_assets(bind: sa.Connection) -> None:
    first: dict[uuid.UUID, tuple[datetime, int, uuid.UUID]] = {}  # asset -> (when, event id, owner) of its first add
    for owner in _owners(bind):
        _act_as(bind, owner)
        query = (
            sa.select(events.c.asset_id, sa.func.min(events.c.recorded_at), sa.func.min(events.c.id))
            .join(assets, assets.c.id == events.c.asset_id)
            .where(
                events.c.owner_id == owner,
                events.c.action == "added",
                assets.c.validation_status.in_(("unknown", "pending")),
            )
            .group_by(events.c.asset_id)
        )
        for asset_id, when, event_id in bind.execute(query):
            if asset_id not in first or (when, event_id) < first[asset_id][:2]:
                first[asset_id] = (when, event_id, owner)
    _act_as(bind, None)
    rows = [{"asset": asset_id, "owner": owner} for asset_id, (_, _, owner) in sorted(first.items())]
    statement = assets.update().where(assets.c.id == sa.bindparam("asset")).values(created_by=sa.bindparam("owner"))
    for start in range(0, len(rows), 1_000):
        bind.execute(statement, rows[start : start + 1_000])


def _suffixed(name: str, n: int) -> str:
    suffix = f" ({n})"
    return name[: NAME_MAX - len(suffix)].rstrip() + suffix


def _rekey_universes(bind: sa.Connection, key_of: Callable[[str], str]) -> None:
    """Set every universe's name_key to ``key_of(name)``, renaming later universes whose key is taken."""
    now = datetime.now(UTC)
    for owner in _owners(bind):
        _act_as(bind, owner)
        rows = bind.execute(
            sa.select(universes.c.id, universes.c.name, universes.c.name_key)
            .where(universes.c.owner_id == owner)
            .order_by(universes.c.created_at, universes.c.id)
        ).all()
        keepers: dict[str, uuid.UUID] = {}
        for universe_id, name, _ in rows:  # the oldest universe of each key keeps its name
            keepers.setdefault(key_of(name), universe_id)
        taken = set(keepers)
        changes: dict[uuid.UUID, dict[str, object]] = {}
        for universe_id, name, old_key in rows:
            new_name, new_key = name, key_of(name)
            if keepers[new_key] != universe_id:
                n = 2
                while (new_key := key_of(new_name := _suffixed(name, n))) in taken:
                    n += 1
                taken.add(new_key)
            if new_name != name:
                changes[universe_id] = {"name_key": new_key, "name": new_name, "updated_at": now}
            elif new_key != old_key:
                changes[universe_id] = {"name_key": new_key}
        # Two passes, so that no intermediate state repeats a key under the unique constraint.
        for universe_id in changes:
            bind.execute(universes.update().where(universes.c.id == universe_id).values(name_key=f"~{universe_id}"))
        for universe_id, values in changes.items():
            bind.execute(universes.update().where(universes.c.id == universe_id).values(**values))
    _act_as(bind, None)

"""Row-level security is a real second wall: the server's role sees nothing without the owner setting."""

from __future__ import annotations

import asyncpg
import pytest

from tests.tenancy.conftest import connect, envelope

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.mark.parametrize("deployment", ["postgres"], indirect=True)
async def test_direct_sql_as_the_app_role_sees_only_the_owner_it_names(deployment, tmp_path):
    alice = await deployment.token("alice")
    bob = await deployment.token("bob")
    with deployment.server(tmp_path / "run") as url:
        async with connect(url, alice) as client:
            uid = envelope(await client.call_tool("create_universe", {"name": "A", "symbols": ["AAPL"]}))["data"][
                "universe"
            ]["id"]
        async with connect(url, bob) as client:
            envelope(await client.call_tool("create_universe", {"name": "B", "symbols": ["MSFT", "NVDA"]}))

    conn = await asyncpg.connect(deployment.app_dsn)
    try:
        for table in ("universes", "universe_assets", "universe_asset_events"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table  # no owner set: no rows
        alice_id = await conn.fetchval("SELECT id FROM users WHERE name = 'alice'")
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.owner_id', $1, true)", str(alice_id))
            assert [str(r["id"]) for r in await conn.fetch("SELECT id FROM universes")] == [uid]
            assert await conn.fetchval("SELECT count(*) FROM universe_assets") == 1
            # Writing a row for another owner is refused by the policy's WITH CHECK.
            bob_id = await conn.fetchval("SELECT id FROM users WHERE name = 'bob'")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(
                    "INSERT INTO universes (id, owner_id, name, name_key, kind, created_at, updated_at) "
                    "VALUES (gen_random_uuid(), $1, 'x', 'x', 'static', now(), now())",
                    bob_id,
                )
        # The app role cannot switch the wall off.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE universes DISABLE ROW LEVEL SECURITY")
    finally:
        await conn.close()

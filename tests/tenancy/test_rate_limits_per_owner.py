"""Per-owner rate limits through the real entry point: two replicas sharing Redis, two owners with their own tokens.

One owner spending the whole read budget (across both replicas) is refused on both, and the other owner, on the
same replicas at the same moment, keeps the whole of his own budget.
"""

from __future__ import annotations

import pytest

from tests.tenancy.conftest import connect, envelope

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.mark.parametrize("deployment", ["sqlite"], indirect=True)
async def test_one_owner_exhausted_on_two_replicas_leaves_the_other_untouched(deployment, tmp_path, redis_url):
    alice, bob = await deployment.token("alice"), await deployment.token("bob")
    shared = {"UNIVERSE_MCP_REDIS_URL": redis_url, "UNIVERSE_MCP_RATE_LIMIT_READ": "4/minute"}
    with deployment.server(tmp_path / "a", **shared) as url_a, deployment.server(tmp_path / "b", **shared) as url_b:
        async with (
            connect(url_a, alice) as alice_a,
            connect(url_b, alice) as alice_b,
            connect(url_a, bob) as bob_a,
            connect(url_b, bob) as bob_b,
        ):

            async def read(client) -> dict:
                return envelope(await client.call_tool("list_universes", {}))

            # Alice spends her 4 reads across both replicas; her 5th is refused on either.
            assert [(await read(c))["success"] for c in (alice_a, alice_b, alice_a, alice_b)] == [True] * 4
            for client in (alice_a, alice_b):
                refused = await read(client)
                assert refused["error"]["code"] == "rate_limited", refused
                assert refused["error"]["details"]["tool_class"] == "read"
            # Bob, on the same two replicas, has all four of his own.
            assert [(await read(c))["success"] for c in (bob_b, bob_a, bob_b, bob_a)] == [True] * 4
            assert (await read(bob_b))["error"]["code"] == "rate_limited"

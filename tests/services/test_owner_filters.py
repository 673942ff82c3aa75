"""Owner filters, in process, on SQLite: the services' own ``owner_id`` filters are the only wall there.

Two local users on one store (two in-memory servers, ``local_user`` alice and bob). Bob is handed the ids of
alice's universe and job and tries every tool that takes them: each answer is ``not_found`` (an id of someone else
is indistinguishable from an id that does not exist), nothing of alice's leaks into his lists, completions or
resources, and alice's data is exactly as it was. On PostgreSQL, row-level security is a second wall behind these
filters (tests/tenancy runs the same attack over HTTP on both stores); here a dropped filter shows at once.
"""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import ResourceTemplateReference

from server.app import build_server
from tests.conftest import Call

pytestmark = pytest.mark.anyio

FAST_JOBS = {"job_batch_size": 10, "job_retry_base_s": 0.05, "job_max_retries": 0, "job_auto_delay_s": 600}


async def test_another_owner_cannot_see_or_touch_anything(make_settings):
    alice_settings = make_settings(local_user="alice", **FAST_JOBS)
    bob_settings = make_settings(local_user="bob", **FAST_JOBS)
    async with Client(build_server(alice_settings)) as alice_client:
        alice = Call(alice_client)
        uid = (await alice.ok("create_universe", name="Alice core", description="mine", symbols=["AAPL", "MSFT"]))[
            "universe"
        ]["id"]
        job_id = (await alice.ok("start_bulk_validation", symbols=["AAPL", "MSFT"], wait=True))["job_id"]
        before = await alice.ok("get_universe", universe_id=uid)
        history_before = await alice.ok("get_universe_turnover", universe_id=uid)
        events_before = await alice.ok("get_universe_history", universe_id=uid)

    attempts: list[tuple[str, dict]] = [
        ("get_universe", {"universe_id": uid}),
        ("get_universe", {"universe_id": uid, "as_of": "2999-01-01T00:00:00Z"}),
        ("update_universe", {"universe_id": uid, "name": "Stolen"}),
        ("update_universe", {"universe_id": uid, "description": "stolen"}),
        ("add_assets_to_universe", {"universe_id": uid, "symbols": ["NVDA"], "validate": False}),
        ("remove_assets_from_universe", {"universe_id": uid, "symbols": ["AAPL"]}),
        ("get_universe_turnover", {"universe_id": uid}),
        ("get_universe_history", {"universe_id": uid}),
        ("export_universe_csv", {"universe_id": uid}),
        ("import_universe_csv", {"universe_id": uid, "csv_text": "symbol\nNVDA\n"}),
        ("import_universe_csv", {"universe_id": uid, "csv_text": "symbol,date\nNVDA,2020-01-02\n"}),
        ("import_universe_csv", {"universe_id": uid, "csv_text": "symbol\nNVDA\n", "mode": "replace"}),
        ("start_bulk_validation", {"universe_id": uid}),
        ("get_job_status", {"job_id": job_id}),
        ("get_job_status", {"job_id": job_id, "include_items": True}),
        ("cancel_job", {"job_id": job_id}),
        ("delete_universe", {"universe_id": uid}),
    ]
    async with Client(build_server(bob_settings)) as bob_client:
        bob = Call(bob_client)
        assert (await bob.ok("list_universes"))["universes"] == []
        assert (await bob.ok("list_universes", name_contains="Alice"))["universes"] == []
        for tool, args in attempts:
            envelope = await bob.error(tool, "not_found", **args)
            assert "Alice" not in json.dumps(envelope) and "mine" not in json.dumps(envelope), tool
        for uri in (f"universe://{uid}", f"universe://{uid}/assets.csv", f"jobs://{job_id}"):
            with pytest.raises(MCPError) as refused:
                await bob_client.read_resource(uri)
            assert "Alice" not in str(refused.value)
        for typed in (uid[:6], "Alice", "a"):
            completion = await bob_client.complete(
                ResourceTemplateReference(type="ref/resource", uri="universe://{universe_id}"),
                {"name": "universe_id", "value": typed},
            )
            assert uid not in completion.completion.values
        # Names are unique per owner: bob may use alice's name, and his universe is his own.
        mine = (await bob.ok("create_universe", name="Alice core"))["universe"]
        assert mine["id"] != uid
        assert [u["id"] for u in (await bob.ok("list_universes"))["universes"]] == [mine["id"]]

    async with Client(build_server(alice_settings)) as alice_client:
        alice = Call(alice_client)
        assert await alice.ok("get_universe", universe_id=uid) == before
        assert (await alice.ok("get_universe_turnover", universe_id=uid)) | {"until": None} == history_before | {
            "until": None
        }
        assert await alice.ok("get_universe_history", universe_id=uid) == events_before
        assert (await alice.ok("get_job_status", job_id=job_id))["status"] == "completed"
        assert [u["id"] for u in (await alice.ok("list_universes"))["universes"]] == [uid]
        await alice.error("create_universe", "already_exists", name="alice CORE")  # her own name is still hers

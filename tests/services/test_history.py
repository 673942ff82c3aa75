"""get_universe_history: every membership change once, newest first, page by page, inside (since, until], with the
rebalance runs of each page's stretch of time; and get_universe_turnover's rebalance rows.

The history built here (tN: a time taken between calls):

    create with A B C D   t1   remove A B   t2   add E F   t3   remove C   t4   add A   t5

gives 10 events: +A +B +C +D (the creation), -A -B, +E +F, -C, +A. Rebalance runs are written through the ORM at
chosen times (the rebalance tool is not what is tested here).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.settings import Settings
from server.lifespan import open_app_state
from storage.models import RebalanceRun, Universe
from tests.support.stores import pg_store, store  # noqa: F401

pytestmark = pytest.mark.anyio


class Built:
    def __init__(self, uid: str, t: dict[str, datetime]) -> None:
        self.uid, self.t = uid, t


@pytest.fixture
async def built(call) -> Built:
    t: dict[str, datetime] = {}
    uid = (await call.ok("create_universe", name="Paged history", symbols=["A", "B", "C", "D"], validate=False))[
        "universe"
    ]["id"]
    t["t1"] = datetime.now(UTC)
    await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["A", "B"])
    t["t2"] = datetime.now(UTC)
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["E", "F"], validate=False)
    t["t3"] = datetime.now(UTC)
    await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["C"])
    t["t4"] = datetime.now(UTC)
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["A"], validate=False)
    t["t5"] = datetime.now(UTC)
    return Built(uid, t)


async def all_pages(call, uid: str, **arguments: Any) -> tuple[list[dict], list[dict], list[dict]]:
    """(events, runs, pages) read page by page, following each page's next action."""
    events: list[dict] = []
    runs: list[dict] = []
    pages: list[dict] = []
    args: dict[str, Any] = {"universe_id": uid, **arguments}
    while True:
        envelope = await call("get_universe_history", **args)
        assert envelope["success"], envelope["error"]
        page = envelope["data"]
        pages.append(page)
        events += page["events"]
        runs += page["rebalances"]
        if not page["next_cursor"]:
            assert envelope["next_actions"] == []
            return events, runs, pages
        [action] = envelope["next_actions"]
        assert action["tool"] == "get_universe_history"
        assert action["arguments"]["cursor"] == page["next_cursor"]
        args = action["arguments"]


def signature(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["action"], e["symbol"]) for e in events]


def in_order(events: list[dict]) -> list[tuple[str, str]]:
    """Newest first; changes written together (one call) share a time and are compared as a set."""
    groups: list[tuple[str, frozenset]] = []
    by_time: dict[str, set] = {}
    for e in events:
        by_time.setdefault(e["effective_at"], set()).add((e["action"], e["symbol"]))
    for at in sorted(by_time, reverse=True):
        groups.append((at, frozenset(by_time[at])))
    return [g for _, g in groups]  # type: ignore[misc]


EXPECTED = [
    frozenset({("added", "A")}),
    frozenset({("removed", "C")}),
    frozenset({("added", "E"), ("added", "F")}),
    frozenset({("removed", "A"), ("removed", "B")}),
    frozenset({("added", s) for s in "ABCD"}),
]


@pytest.mark.parametrize("limit", [1, 3, 4, 10, 50])
async def test_paging_gives_every_change_once_newest_first(call, built, limit):
    events, _, pages = await all_pages(call, built.uid, limit=limit)
    assert len(events) == 10 and len(pages) == -(-10 // limit)  # a full last page has no empty page after it
    assert in_order(events) == EXPECTED
    times = [datetime.fromisoformat(e["effective_at"]) for e in events]
    assert times == sorted(times, reverse=True)
    assert all(len(p["events"]) <= limit for p in pages) and all(len(p["events"]) == limit for p in pages[:-1])
    whole = await call.ok("get_universe_history", universe_id=built.uid, limit=100)
    assert whole["events"] == events and whole["next_cursor"] is None  # the pages joined are the one long page
    assert {e["reason"] for e in events if e["action"] == "removed"} == {"removed by hand"}
    assert all("recorded_at" not in e and "run_id" not in e for e in events)  # left out: same time, no run


async def test_every_change_carries_the_reason_of_its_call(call, built):
    events, _, _ = await all_pages(call, built.uid)
    reasons = {(e["action"], e.get("reason")) for e in events}
    assert reasons == {
        ("added", "created with the universe"),
        ("removed", "removed by hand"),
        ("added", "added by hand"),
    }


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("t1", "t3", EXPECTED[2:4]),  # (t1, t3]: -A -B, +E +F
        ("t2", None, EXPECTED[:3]),  # after t2
        (None, "t1", EXPECTED[4:]),  # up to t1: the creation
        ("t4", "t5", EXPECTED[:1]),
    ],
)
async def test_since_and_until_bound_the_pages(call, built, since, until, expected):
    arguments = {"limit": 1}
    if since:
        arguments["since"] = built.t[since].isoformat()
    if until:
        arguments["until"] = built.t[until].isoformat()
    events, _, pages = await all_pages(call, built.uid, **arguments)
    assert in_order(events) == expected
    assert len(pages) == len(events)  # one change per page; no empty last page


async def test_a_window_without_changes_is_an_empty_page(call, built):
    page = await call.ok(
        "get_universe_history", universe_id=built.uid, since=built.t["t5"].isoformat(), until=datetime.now(UTC)
    )
    assert page["events"] == [] and page["next_cursor"] is None and page["rebalances"] == []


async def test_a_cursor_belongs_to_its_universe(call, built):
    other = (await call.ok("create_universe", name="Other", symbols=["A", "B"], validate=False))["universe"]["id"]
    cursor = (await call.ok("get_universe_history", universe_id=built.uid, limit=2))["next_cursor"]
    envelope = await call.error("get_universe_history", "invalid_argument", universe_id=other, cursor=cursor)
    assert envelope["error"]["message"] == "The cursor is not one this list returned."
    changed = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    await call.error("get_universe_history", "invalid_argument", universe_id=built.uid, cursor=changed)


async def _add_runs(settings: Settings, uid: str, times: dict[str, datetime]) -> dict[str, str]:
    """Rebalance runs started at the given times (as the rebalance would write them); returns name -> run id."""
    ids: dict[str, str] = {}
    async with open_app_state(settings) as state:
        async with state.unit_of_work() as session:
            universe = await session.get(Universe, uuid.UUID(uid))
            assert universe is not None
            universe.rules_version = 1  # as a dynamic universe's: only those have runs
            for i, (name, at) in enumerate(sorted(times.items(), key=lambda kv: kv[1])):
                run = RebalanceRun(
                    id=uuid.uuid4(),
                    universe_id=universe.id,
                    owner_id=universe.owner_id,
                    trigger="scheduled",
                    period=f"2026-W{i + 1:02d}",
                    rules_version=1,
                    data_as_of=at.date(),
                    started_at=at,
                    size_before=4,
                    size_after=4,
                    additions=i,
                    removals=i,
                    turnover=round(i / 4, 6),
                )
                session.add(run)
                ids[name] = str(run.id)
    return ids


async def test_rebalance_runs_appear_once_on_the_page_of_their_time(call, built, settings):
    t = built.t
    runs = await _add_runs(
        settings,
        built.uid,
        {
            "before creation": t["t1"] - timedelta(days=3),
            "between t2 and t3": t["t2"] + (t["t3"] - t["t2"]) / 2,
            "after the last change": t["t5"],  # after the last change, before now
        },
    )
    _, listed, pages = await all_pages(call, built.uid, limit=2)
    assert [r["id"] for r in listed] == [
        runs["after the last change"],
        runs["between t2 and t3"],
        runs["before creation"],
    ]
    # The newest run, which changed nothing, is on the first page; the one before the creation on the last.
    assert [r["id"] for r in pages[0]["rebalances"]] == [runs["after the last change"]]
    assert [r["id"] for r in pages[-1]["rebalances"]] == [runs["before creation"]]
    middle = next(p for p in pages if p["rebalances"] and p["rebalances"][0]["id"] == runs["between t2 and t3"])
    newest = datetime.fromisoformat(middle["events"][0]["effective_at"]) if middle["events"] else None
    assert newest is None or newest <= t["t3"]
    run = listed[1]
    assert run == {
        "id": runs["between t2 and t3"],
        "trigger": "scheduled",
        "period": "2026-W02",
        "rules_version": 1,
        "data_as_of": (t["t2"] + (t["t3"] - t["t2"]) / 2).date().isoformat(),
        "started_at": run["started_at"],
        "size_before": 4,
        "size_after": 4,
        "additions": 1,
        "removals": 1,
        "turnover": 0.25,
    }
    # A window leaves out the runs outside it; until is inclusive, since exclusive.
    _, inside, _ = await all_pages(call, built.uid, since=t["t1"].isoformat(), until=t["t4"].isoformat())
    assert [r["id"] for r in inside] == [runs["between t2 and t3"]]
    _, ending, _ = await all_pages(call, built.uid, since=t["t5"].isoformat())
    assert ending == []
    _, ending, _ = await all_pages(call, built.uid, since=t["t4"].isoformat(), until=t["t5"].isoformat())
    assert [r["id"] for r in ending] == [runs["after the last change"]]

    report = await call.ok("get_universe_turnover", universe_id=built.uid, since=t["t1"].isoformat())
    assert [r["id"] for r in report["rebalances"]] == [runs["after the last change"], runs["between t2 and t3"]]
    assert report["rebalances_truncated"] is False


async def test_pages_through_changes_sharing_one_time_on_either_store(store):  # noqa: F811
    """Seven members created at one time, then two removed at another: pages of 3 cut through the run of equal
    times by id, on SQLite and on PostgreSQL (row-level security on, as deployed)."""
    from tests.conftest import Call
    from tests.support.stores import serve

    symbols = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA"]
    async with serve(store(local_user=store.user("historian"))) as client:
        call = Call(client)
        uid = (await call.ok("create_universe", name="Seven", symbols=symbols, validate=False))["universe"]["id"]
        await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["AAPL", "TSLA"])
        events, _, pages = await all_pages(call, uid, limit=3)
        assert [len(p["events"]) for p in pages] == [3, 3, 3]
        assert sorted(signature(events[:2])) == [("removed", "AAPL"), ("removed", "TSLA")]
        assert sorted(signature(events[2:])) == sorted(("added", s) for s in symbols)
        report = await call.ok("get_universe_turnover", universe_id=uid)
        assert (report["additions"], report["removals"], report["size_start"], report["size_end"]) == (0, 2, 7, 5)
        assert report["one_way_turnover"] == 0.0 and report["turnover"] == round(2 / 12, 6)


async def test_pages_of_long_reasons_stay_under_16_kb_and_lose_nothing(call, settings):
    """100 changes each with a 300-character reason and a run id: a page of 100 would be ~40 KB, so the page ends
    when its events reach the byte bound, and the next page continues right after the last one listed."""
    import json

    from sqlalchemy import update

    from storage.models import UniverseAssetEvent

    symbols = [f"ZL{i:03d}" for i in range(100)]
    uid = (await call.ok("create_universe", name="Verbose", symbols=symbols, validate=False))["universe"]["id"]
    async with open_app_state(settings) as state:
        async with state.unit_of_work() as session:
            await session.execute(
                update(UniverseAssetEvent)
                .where(UniverseAssetEvent.universe_id == uuid.UUID(uid))
                .values(reason="r" * 300, run_id=uuid.uuid4())
            )
    envelope = await call("get_universe_history", universe_id=uid, limit=100)
    size = len(json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode())
    assert size <= 16 * 1024 and 1 <= len(envelope["data"]["events"]) < 100, size
    events, _, _ = await all_pages(call, uid, limit=100)
    assert sorted(e["symbol"] for e in events) == symbols

"""Turnover and point-in-time membership after removals and re-adds, against values worked out by hand.

The history (each step a tool call; tN is a time taken between calls):

    create with A B C D      t1   remove A B   t2   add E   t3   re-add A   t4   remove A C   t5   re-add B   t6

    members at  t1: A B C D (4)   t2: C D (2)   t3: C D E (3)   t4: C D E A (4)   t5: D E (2)   t6: D E B (3)

Every expected number below is computed from that table, not from the tool's answer. Docs: ARCHITECTURE.md,
"Turnover and point-in-time membership": average = (start + end) / 2, turnover = (additions + removals) /
(2 x average), one_way_turnover = min(additions, removals) / average, addition_rate = additions / average,
removal_rate = removals / average. With no since the window starts at the creation: A B C D are the first members,
not additions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import services.universes as universes_module

pytestmark = pytest.mark.anyio


class History:
    def __init__(self, call, uid: str, marks: dict[str, datetime]) -> None:
        self.call, self.uid, self.t = call, uid, marks

    async def members_at(self, at: datetime) -> list[str]:
        data = await self.call.ok("get_universe", universe_id=self.uid, as_of=at.isoformat())
        symbols = [a["symbol"] for a in data["assets"]]
        assert data["universe"]["asset_count"] == len(symbols)
        return symbols

    async def turnover(self, since: str | None = None, until: str | None = None) -> dict:
        args = {"universe_id": self.uid}
        if since:
            args["since"] = self.t[since].isoformat()
        if until:
            args["until"] = self.t[until].isoformat()
        return await self.call.ok("get_universe_turnover", **args)


@pytest.fixture
async def history(call) -> History:
    marks: dict[str, datetime] = {}
    uid = (await call.ok("create_universe", name="History", symbols=["A", "B", "C", "D"], validate=False))["universe"][
        "id"
    ]
    marks["t1"] = datetime.now(UTC)
    await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["A", "B"])
    marks["t2"] = datetime.now(UTC)
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["E"], validate=False)
    marks["t3"] = datetime.now(UTC)
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["A"], validate=False)
    marks["t4"] = datetime.now(UTC)
    await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["A", "C"])
    marks["t5"] = datetime.now(UTC)
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["B"], validate=False)
    marks["t6"] = datetime.now(UTC)
    return History(call, uid, marks)


async def test_as_of_follows_removals_and_re_adds(history):
    t = history.t
    assert await history.members_at(t["t1"] - timedelta(days=1)) == []
    assert await history.members_at(t["t1"]) == ["A", "B", "C", "D"]
    assert await history.members_at(t["t2"]) == ["C", "D"]
    assert await history.members_at(t["t3"]) == ["C", "D", "E"]
    # In order of (latest) joining: A came back after E.
    assert await history.members_at(t["t4"]) == ["C", "D", "E", "A"]
    assert await history.members_at(t["t5"]) == ["D", "E"]
    assert await history.members_at(t["t6"]) == ["D", "E", "B"]
    now = await history.call.ok("get_universe", universe_id=history.uid)
    assert [a["symbol"] for a in now["assets"]] == ["D", "E", "B"]


async def test_as_of_counts_an_event_at_exactly_that_time(history):
    t = history.t
    data = await history.call.ok("get_universe", universe_id=history.uid, as_of=t["t4"].isoformat())
    readded_at = datetime.fromisoformat(next(a["added_at"] for a in data["assets"] if a["symbol"] == "A"))
    assert t["t3"] < readded_at < t["t4"]
    assert await history.members_at(readded_at) == ["C", "D", "E", "A"]  # at <= as_of: included
    assert await history.members_at(readded_at - timedelta(microseconds=1)) == ["C", "D", "E"]
    # Today's members carry the time they (last) joined, the same the history shows.
    then = await history.call.ok("get_universe", universe_id=history.uid, as_of=t["t6"].isoformat())
    now = await history.call.ok("get_universe", universe_id=history.uid)
    assert [(a["symbol"], a["added_at"]) for a in now["assets"]] == [
        (a["symbol"], a["added_at"]) for a in then["assets"]
    ]
    assert t["t5"] < datetime.fromisoformat(now["assets"][-1]["added_at"]) < t["t6"]  # B, re-added last


async def test_as_of_pages_keep_the_point_in_time_order(history):
    t = history.t
    first = await history.call.ok("get_universe", universe_id=history.uid, as_of=t["t4"].isoformat(), limit=3)
    assert [a["symbol"] for a in first["assets"]] == ["C", "D", "E"] and first["universe"]["asset_count"] == 4
    second = await history.call.ok(
        "get_universe", universe_id=history.uid, as_of=t["t4"].isoformat(), limit=3, cursor=first["next_cursor"]
    )
    assert [a["symbol"] for a in second["assets"]] == ["A"] and second["next_cursor"] is None
    assert second["counts_by_status"] == {"valid": 4}  # A, C, D and E are in the offline catalog


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        # (t1, t6]: +E +A +B, -A -B -A -C; 4 members -> 3.
        ("t1", "t6", dict(additions=3, removals=4, size_start=4, size_end=3, average_size=3.5,
                          turnover=1.0, one_way_turnover=0.857143, addition_rate=0.857143, removal_rate=1.142857)),
        # (t2, t4]: +E +A, nothing removed; 2 -> 4.
        ("t2", "t4", dict(additions=2, removals=0, size_start=2, size_end=4, average_size=3.0,
                          turnover=0.333333, one_way_turnover=0.0, addition_rate=0.666667, removal_rate=0.0)),
        # (t3, t5]: +A, -A -C; 3 -> 2.
        ("t3", "t5", dict(additions=1, removals=2, size_start=3, size_end=2, average_size=2.5,
                          turnover=0.6, one_way_turnover=0.4, addition_rate=0.4, removal_rate=0.8)),
        # From the creation (A B C D, the first members) to t4: -A -B +E +A; 4 -> 4.
        (None, "t4", dict(additions=2, removals=2, size_start=4, size_end=4, average_size=4.0,
                          turnover=0.5, one_way_turnover=0.5, addition_rate=0.5, removal_rate=0.5)),
        # From the creation to now: the same changes as (t1, t6].
        (None, None, dict(additions=3, removals=4, size_start=4, size_end=3, average_size=3.5,
                          turnover=1.0, one_way_turnover=0.857143, addition_rate=0.857143, removal_rate=1.142857)),
    ],
)  # fmt: skip
async def test_turnover_after_removals_and_re_adds(history, since, until, expected):
    report = await history.turnover(since, until)
    assert {k: report[k] for k in expected} == expected
    assert report["universe_id"] == history.uid
    created_at = (await history.call.ok("get_universe", universe_id=history.uid))["universe"]["created_at"]
    # The window is echoed: since as asked, or the creation when not given.
    assert report["since"] == (history.t[since].isoformat().replace("+00:00", "Z") if since else created_at)
    echoed_until = datetime.fromisoformat(report["until"])
    assert echoed_until == history.t[until] if until else echoed_until > history.t["t6"]  # no until: now
    assert report["additions"] - report["removals"] == report["size_end"] - report["size_start"]


def names(changes: list[dict]) -> list[str]:
    return [c["symbol"] for c in changes]


@pytest.mark.parametrize(
    ("since", "until", "added", "removed"),
    [
        # Newest first; a removal of two names at once lists them in either order.
        ("t1", "t6", ["B", "A", "E"], [{"A", "C"}, {"A", "B"}]),
        ("t2", "t4", ["A", "E"], []),
        ("t3", "t5", ["A"], [{"A", "C"}]),
        (None, "t2", [], [{"A", "B"}]),  # the first members are not additions
    ],
)
async def test_turnover_names_what_came_and_went(history, since, until, added, removed):
    report = await history.turnover(since, until)
    assert names(report["added"]) == added
    grouped: list[set[str]] = []
    last = None
    for change in report["removed"]:
        if change["effective_at"] != last:
            grouped.append(set())
            last = change["effective_at"]
        grouped[-1].add(change["symbol"])
    assert grouped == removed
    assert report["names_truncated"] is False and report["rebalances"] == []
    times = [c["effective_at"] for c in report["added"] + report["removed"]]
    start = history.t[since] if since else datetime.fromisoformat(report["since"])
    assert all(start < datetime.fromisoformat(t) <= history.t[until] for t in times)


async def test_an_unchanged_universe_turns_over_nothing(call):
    """Created with members and never changed: 0, not the 100 % it reported when its first members counted as
    additions."""
    uid = (await call.ok("create_universe", name="Still", symbols=["AAPL", "MSFT", "NVDA"], validate=False))[
        "universe"
    ]["id"]
    report = await call.ok("get_universe_turnover", universe_id=uid)
    assert {k: report[k] for k in ("additions", "removals", "size_start", "size_end", "average_size")} == {
        "additions": 0,
        "removals": 0,
        "size_start": 3,
        "size_end": 3,
        "average_size": 3.0,
    }
    assert (report["turnover"], report["one_way_turnover"], report["addition_rate"], report["removal_rate"]) == (
        0.0,
        0.0,
        0.0,
        0.0,
    )
    assert report["added"] == [] and report["removed"] == []


async def test_turnover_names_are_bounded_and_point_at_the_history(call):
    """60 additions: the newest 50 are named, names_truncated says so and the next action pages the history."""
    uid = (await call.ok("create_universe", name="Growing", symbols=["AAPL"], validate=False))["universe"]["id"]
    symbols = [f"ZQ{i:02d}" for i in range(60)]
    for chunk in (symbols[:30], symbols[30:]):
        await call.ok("add_assets_to_universe", universe_id=uid, symbols=chunk, validate=False)
    envelope = await call("get_universe_turnover", universe_id=uid)
    report = envelope["data"]
    assert (report["additions"], report["size_start"], report["size_end"]) == (60, 1, 61)
    # min(60, 0) / 31 = 0 one-way; (60 + 0) / (2 x 31) two-way.
    assert (report["one_way_turnover"], report["turnover"]) == (0.0, round(60 / 62, 6))
    assert len(report["added"]) == 50 and report["names_truncated"] is True
    assert set(names(report["added"])) == set(symbols[30:]) | set(symbols[10:30])  # the newest 50
    assert set(names(report["added"][:30])) == set(symbols[30:])  # the later call's first
    [action] = envelope["next_actions"]
    assert action["tool"] == "get_universe_history"
    assert action["arguments"] == {"universe_id": uid, "since": report["since"].replace("Z", "+00:00"),
                                   "until": report["until"].replace("Z", "+00:00")}  # fmt: skip


async def test_the_window_excludes_its_start_and_includes_its_end(history):
    t = history.t
    data = await history.call.ok("get_universe", universe_id=history.uid, as_of=t["t4"].isoformat())
    readded_at = datetime.fromisoformat(next(a["added_at"] for a in data["assets"] if a["symbol"] == "A"))
    history.t["readd"] = readded_at
    ending = await history.turnover("t3", "readd")  # (t3, re-add]: the re-add counts
    assert (ending["additions"], ending["size_start"], ending["size_end"]) == (1, 3, 4)
    starting = await history.turnover("readd", "t4")  # (re-add, t4]: it does not
    assert (starting["additions"], starting["removals"], starting["size_start"], starting["size_end"]) == (0, 0, 4, 4)
    assert starting["turnover"] == 0.0


async def test_an_empty_window_on_an_empty_universe_has_no_rates(call):
    uid = (await call.ok("create_universe", name="Never filled"))["universe"]["id"]
    report = await call.ok("get_universe_turnover", universe_id=uid)
    assert (report["additions"], report["removals"], report["average_size"]) == (0, 0, 0.0)
    assert report["turnover"] is None and report["addition_rate"] is None and report["removal_rate"] is None


def symbols_of(detail: dict) -> list[str]:
    return [a["symbol"] for a in detail["assets"]]


async def test_events_replay_in_commit_order_when_a_replicas_clock_ran_ahead(call, monkeypatch):
    """A replica whose clock runs an hour ahead stamps its add an hour ahead; a later add or removal from a replica
    with the right time must still come after it in the history, or as_of would replay them in the wrong order."""
    uid = (await call.ok("create_universe", name="Skewed", symbols=["AAPL", "MSFT"], validate=False))["universe"]["id"]
    ahead = datetime.now(UTC) + timedelta(hours=1)
    monkeypatch.setattr(universes_module, "utcnow", lambda: ahead)
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["NVDA"], validate=False)  # stamped `ahead`
    await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["MSFT"])  # stamped `ahead` too
    monkeypatch.undo()  # back to the right time, which is before `ahead`

    await call.ok("remove_assets_from_universe", universe_id=uid, symbols=["NVDA"])
    await call.ok("add_assets_to_universe", universe_id=uid, symbols=["MSFT"], validate=False)
    later = (ahead + timedelta(minutes=1)).isoformat()
    now = await call.ok("get_universe", universe_id=uid)
    assert symbols_of(now) == ["AAPL", "MSFT"]
    # The history as of after every event agrees with the members: NVDA's removal came after its add, and MSFT's
    # re-add after its removal, although the right clock read earlier than both.
    then = await call.ok("get_universe", universe_id=uid, as_of=later)
    assert symbols_of(then) == ["AAPL", "MSFT"]
    readded = {a["symbol"]: datetime.fromisoformat(a["added_at"]) for a in then["assets"]}
    assert readded["MSFT"] >= ahead
    window = await call.ok("get_universe_turnover", universe_id=uid, until=later)
    # After the creation (AAPL, MSFT): +NVDA -MSFT -NVDA +MSFT.
    assert (window["additions"], window["removals"], window["size_start"], window["size_end"]) == (2, 2, 2, 2)


async def test_a_since_in_the_future_is_refused(call):
    uid = (await call.ok("create_universe", name="Ahead", symbols=["AAPL"], validate=False))["universe"]["id"]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    envelope = await call.error("get_universe_turnover", "invalid_argument", universe_id=uid, since=later)
    assert envelope["error"]["message"].startswith(f"since ({later}) must be earlier than until (")
    before = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    envelope = await call.error("get_universe_turnover", "invalid_argument", universe_id=uid, until=before)
    assert envelope["error"]["message"].startswith(f"until ({before}) is not after the start of the universe's")

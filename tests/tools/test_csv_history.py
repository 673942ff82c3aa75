"""import_universe_csv with a date column: past membership changes recorded at their dates (issue 14, item 4).

The file of the first tests, worked by hand:

    AAPL  added 2020-01-02     MSFT added 2020-01-02     NVDA added 2021-06-01
    MSFT  removed 2022-03-15   AMZN added 2023-01-03 14:30 UTC

    members as of 2019-12-31: none; 2020-01-02: AAPL MSFT; 2021-06-01: + NVDA; 2022-03-15: AAPL NVDA;
    2023-01-03 14:30: AAPL NVDA AMZN (and now).

Turnover from the start of that history (2020-01-02, whose changes are the first members): +NVDA +AMZN, -MSFT;
2 members -> 3, average 2.5, one-way min(2, 1) / 2.5 = 0.4, two-way (2 + 1) / (2 x 2.5) = 0.6.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.concurrency.invariants import check_invariants, history_events

pytestmark = pytest.mark.anyio

HISTORY = """symbol,date,action
AAPL,2020-01-02,added
MSFT,2020-01-02,added
NVDA,2021-06-01,added
MSFT,2022-03-15,removed
AMZN,2023-01-03T14:30:00Z,added
"""


async def members_at(call, uid: str, at: str) -> list[str]:
    data = await call.ok("get_universe", universe_id=uid, as_of=at)
    return sorted(a["symbol"] for a in data["assets"])


def by_symbol(data: dict) -> dict[str, dict]:
    return {r["symbol"]: r for r in data["rows"]}


async def imported(call, **arguments) -> tuple[dict, dict]:
    envelope = await call("import_universe_csv", **arguments)
    assert envelope["success"], envelope["error"]
    return envelope["data"], envelope


async def test_a_dated_file_brings_in_the_past_membership(call, client):
    data, envelope = await imported(call, csv_text=HISTORY, name="Imported history", validate=False)
    uid = data["universe"]["id"]
    assert data["backdated"] == 5
    assert data["counts"] == {"added": 0, "duplicate": 0, "invalid": 0, "backdated": 5}
    assert data["ignored_columns"] == []
    assert [(r["line"], r["symbol"], r["verdict"], r["action"]) for r in data["rows"]] == [
        (2, "AAPL", "backdated", "added"),
        (3, "MSFT", "backdated", "added"),
        (4, "NVDA", "backdated", "added"),
        (5, "MSFT", "backdated", "removed"),
        (6, "AMZN", "backdated", "added"),
    ]
    assert data["rows"][4]["effective_at"] == "2023-01-03T14:30:00Z"
    assert "5 change(s) recorded at their dates" in envelope["message"]
    assert envelope["next_actions"][0] == {
        "tool": "get_universe_history",
        "arguments": {"universe_id": uid},
        "reason": "see the 5 back-dated changes in the universe's history",
    }
    assert await members_at(call, uid, "2019-12-31T00:00:00Z") == []
    assert await members_at(call, uid, "2020-01-02T00:00:00Z") == ["AAPL", "MSFT"]
    assert await members_at(call, uid, "2021-05-31T23:59:59Z") == ["AAPL", "MSFT"]
    assert await members_at(call, uid, "2021-06-01T00:00:00Z") == ["AAPL", "MSFT", "NVDA"]
    assert await members_at(call, uid, "2022-03-15T00:00:00Z") == ["AAPL", "NVDA"]
    assert await members_at(call, uid, "2023-01-03T14:29:59Z") == ["AAPL", "NVDA"]
    assert await members_at(call, uid, "2023-01-03T14:30:00Z") == ["AAPL", "AMZN", "NVDA"]
    now = await call.ok("get_universe", universe_id=uid)
    assert [(a["symbol"], a["added_at"]) for a in now["assets"]] == [
        ("AAPL", "2020-01-02T00:00:00Z"),
        ("NVDA", "2021-06-01T00:00:00Z"),
        ("AMZN", "2023-01-03T14:30:00Z"),
    ]
    figures = await check_invariants(client, uid)  # the history replays to the members, alternating per security
    events = figures["events"]
    assert [(e["effective_at"][:10], e["action"], e["symbol"]) for e in events][:3] == [
        ("2023-01-03", "added", "AMZN"),
        ("2022-03-15", "removed", "MSFT"),
        ("2021-06-01", "added", "NVDA"),
    ]
    assert all(
        e["reason"] == "imported from CSV with its date" and e["recorded_at"] > e["effective_at"] for e in events
    )

    report = await call.ok("get_universe_turnover", universe_id=uid)
    assert report["since"] == "2020-01-02T00:00:00Z"
    assert {k: report[k] for k in ("additions", "removals", "size_start", "size_end", "average_size")} == {
        "additions": 2,
        "removals": 1,
        "size_start": 2,
        "size_end": 3,
        "average_size": 2.5,
    }
    assert (report["one_way_turnover"], report["turnover"]) == (0.4, 0.6)
    assert [c["symbol"] for c in report["added"]] == ["AMZN", "NVDA"]
    assert [(c["symbol"], c["effective_at"]) for c in report["removed"]] == [("MSFT", "2022-03-15T00:00:00Z")]


async def test_importing_the_same_dated_file_again_changes_nothing(call):
    data, _ = await imported(call, csv_text=HISTORY, name="Twice", validate=False)
    uid = data["universe"]["id"]
    before = await call.ok("get_universe_history", universe_id=uid)
    again, _ = await imported(call, csv_text=HISTORY, universe_id=uid, validate=False)
    assert again["backdated"] == 0 and again["counts"]["duplicate"] == 5
    assert {r["reason"] for r in again["rows"]} == {"already in the universe's history"}
    assert (await call.ok("get_universe_history", universe_id=uid))["events"] == before["events"]


async def test_dated_changes_must_alternate_with_the_recorded_ones(call, client):
    """AAPL is a member since the creation (now). Added again in 2020 with no removal between: invalid, nothing of
    it written; added in 2020 and removed in 2021: it fits before the creation's add, and AAPL stays a member."""
    uid = (await call.ok("create_universe", name="Recorded", symbols=["AAPL", "MSFT"], validate=False))["universe"][
        "id"
    ]
    created = (await call.ok("get_universe", universe_id=uid))["universe"]["created_at"]
    data, _ = await imported(
        call, csv_text="ticker,as_of\nAAPL,2020-01-01\nKO,2020-01-01\n", universe_id=uid, validate=False
    )
    aapl, ko = by_symbol(data)["AAPL"], by_symbol(data)["KO"]  # rows needing attention are listed first
    assert (aapl["verdict"], ko["verdict"], data["backdated"]) == ("invalid", "backdated", 1)
    assert aapl["reason"] == (
        f"AAPL would be added on {created.replace('Z', '+00:00')} (recorded) after being added on 2020-01-01 "
        "(in the file): changes must alternate added, removed, added ..."
    )
    assert await members_at(call, uid, "2020-06-01T00:00:00Z") == ["KO"]

    data, _ = await imported(
        call,
        csv_text="symbol;effective_date;action\nAAPL;2020-01-01;added\nAAPL;2021-01-01;removed\n",
        universe_id=uid,
        validate=False,
    )
    assert data["backdated"] == 2
    assert await members_at(call, uid, "2020-06-01T00:00:00Z") == ["AAPL", "KO"]
    assert await members_at(call, uid, "2021-06-01T00:00:00Z") == ["KO"]
    figures = await check_invariants(client, uid)
    assert sorted(figures["members"]) == ["AAPL", "KO", "MSFT"]

    # A removal dated after a member's recorded add takes it out; one before any add is refused.
    data, _ = await imported(call, csv_text="symbol,date,action\nKO,2024-05-01,removed\nMSFT,1999-01-01,removed\n",
                             universe_id=uid, validate=False)  # fmt: skip
    ko_out, msft_out = by_symbol(data)["KO"], by_symbol(data)["MSFT"]
    assert (ko_out["verdict"], msft_out["verdict"]) == ("backdated", "invalid")
    assert msft_out["reason"] == (
        "MSFT's first change would be a removal (1999-01-01, in the file): it was never added before"
    )
    assert await members_at(call, uid, "2024-06-01T00:00:00Z") == []
    figures = await check_invariants(client, uid)
    assert sorted(figures["members"]) == ["AAPL", "MSFT"]


async def test_undated_rows_add_now_beside_dated_ones(call, client):
    text = "symbol,date,action\nAAPL,2020-01-02,added\nAAPL,2021-01-04,removed\nAAPL,,\nMSFT,,\n"
    data, _ = await imported(call, csv_text=text, name="Mixed", validate=False)
    assert data["counts"] == {"added": 2, "duplicate": 0, "invalid": 0, "backdated": 2}
    uid = data["universe"]["id"]
    assert await members_at(call, uid, "2020-06-01T00:00:00Z") == ["AAPL"]
    assert await members_at(call, uid, "2021-06-01T00:00:00Z") == []
    figures = await check_invariants(client, uid)
    assert sorted(figures["members"]) == ["AAPL", "MSFT"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("MSFT,2999-01-01,added", "the date '2999-01-01' is in the future"),
        ("MSFT,01/02/2020,added", "the date '01/02/2020' is not a date (YYYY-MM-DD) or an ISO 8601 date-time"),
        ("MSFT,2020-02-30,added", "the date '2020-02-30' is not a date (YYYY-MM-DD) or an ISO 8601 date-time"),
        ("MSFT,1899-12-31,added", "the date '1899-12-31' is before 1900"),
        ("MSFT,1899-12-31T23:00:00-02:00,added", None),  # 1900-01-01 01:00 UTC: allowed
        ("MSFT,2020-01-02,sold", "the action 'sold' is not added or removed"),
        ("MSFT,,removed", "a removal needs its date (remove members now with remove_assets_from_universe)"),
    ],
)
async def test_bad_dates_and_actions_refuse_the_whole_file_naming_the_line(call, row, reason):
    uid = (await call.ok("create_universe", name="Guarded", symbols=["AAPL"], validate=False))["universe"]["id"]
    history = await call.ok("get_universe_history", universe_id=uid)
    text = f"symbol,date,action\nKO,2020-01-02,added\n{row}\n"
    if reason is None:
        assert (await imported(call, csv_text=text, universe_id=uid, validate=False))[0]["backdated"] == 2
        return
    envelope = await call.error("import_universe_csv", "invalid_argument", csv_text=text, universe_id=uid)
    error = envelope["error"]
    assert error["message"].startswith(f"Line 3: {reason}")
    assert error["message"].endswith("; nothing was imported.")
    assert error["details"]["rows"] == [{"line": 3, "input": row, "reason": error["details"]["rows"][0]["reason"]}]
    assert error["details"]["rows"][0]["reason"].startswith(reason)
    assert (await call.ok("get_universe_history", universe_id=uid)) == history  # nothing changed
    assert [a["symbol"] for a in (await call.ok("get_universe", universe_id=uid))["assets"]] == ["AAPL"]
    # By name: the universe is not even created.
    await call.error("import_universe_csv", "invalid_argument", csv_text=text, name="Never made")
    names = [u["name"] for u in (await call.ok("list_universes"))["universes"]]
    assert "Never made" not in names


async def test_every_bad_line_is_counted_and_the_first_fifty_listed(call):
    rows = "".join(f"T{i:03d},2999-0{1 + i % 9}-01,added\n" for i in range(60))
    envelope = await call.error("import_universe_csv", "invalid_argument", csv_text="symbol,date\n" + rows, name="F")
    error = envelope["error"]
    assert error["message"].startswith("Line 2: the date '2999-01-01' is in the future")
    assert "(and 59 more line(s))" in error["message"]
    assert error["details"]["problem_rows"] == 60 and len(error["details"]["rows"]) == 50


async def test_history_shows_when_a_back_dated_change_was_recorded(call):
    start = datetime.now(UTC)
    data, _ = await imported(call, csv_text="symbol,date\nKO,2020-01-02\n", name="Recorded later", validate=False)
    [event] = await history_events(call.client, data["universe"]["id"])
    assert event["effective_at"] == "2020-01-02T00:00:00Z"
    assert datetime.fromisoformat(event["recorded_at"]) >= start


async def test_two_changes_of_one_security_at_one_time_are_invalid(call):
    text = "symbol,date,action\nKO,2020-01-02,added\nKO,2020-01-02,removed\nPEP,2020-01-02,added\n"
    data, _ = await imported(call, csv_text=text, name="Same time", validate=False)
    rows = {(r["symbol"], r["action"]): r for r in data["rows"]}
    reason = "KO has two changes at 2020-01-02; one security changes once at a time"
    assert rows[("KO", "added")]["verdict"] == rows[("KO", "removed")]["verdict"] == "invalid"
    assert rows[("KO", "added")]["reason"] == rows[("KO", "removed")]["reason"] == reason
    assert (rows[("PEP", "added")]["verdict"], data["backdated"]) == ("backdated", 1)
    assert await members_at(call, data["universe"]["id"], "2020-01-02T00:00:00Z") == ["PEP"]


async def test_replace_keeps_what_the_file_leaves_in_and_removes_the_rest(call, client):
    """Members AAPL MSFT; a replace with KO added in 2020, MSFT added in 2019 and removed in 2021 (before its
    recorded add: it alternates), PEP undated: AAPL goes (not in the file), MSFT goes (its latest row removes it,
    and the file leaves it out), KO and PEP stay."""
    uid = (await call.ok("create_universe", name="Replaced", symbols=["AAPL", "MSFT"], validate=False))["universe"][
        "id"
    ]
    text = "symbol,date,action\nKO,2020-01-02,added\nMSFT,2019-01-02,added\nMSFT,2021-01-04,removed\nPEP,,\n"
    data, _ = await imported(call, csv_text=text, universe_id=uid, mode="replace", validate=False)
    assert sorted(data["removed"]) == ["AAPL", "MSFT"] and data["backdated"] == 3
    figures = await check_invariants(client, uid)
    assert sorted(figures["members"]) == ["KO", "PEP"]
    assert await members_at(call, uid, "2020-06-01T00:00:00Z") == ["KO", "MSFT"]

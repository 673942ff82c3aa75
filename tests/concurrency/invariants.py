"""The membership invariants (issue 10, item 2), checked through the tools a client has, over real HTTP.

After any interleaving of writers: every member appears exactly once on the pages, in the export and in the CSV
resource, and their number is the universe's asset_count; replaying the history (get_universe as_of now) gives
exactly the members; additions - removals since before creation == size (get_universe_turnover); the
history (get_universe_history), replayed per security oldest first, alternates added/removed starting with added
and ends with exactly the members.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp import Client
from mcp.types import TextResourceContents


def _data(result: Any) -> dict[str, Any]:
    envelope = result.structured_content
    assert envelope["success"], envelope.get("error")
    return envelope["data"]


async def paged_members(client: Client, universe_id: str, **extra: Any) -> list[str]:
    symbols: list[str] = []
    cursor = None
    while True:
        args = {"universe_id": universe_id, "limit": 37, **extra, **({"cursor": cursor} if cursor else {})}
        data = _data(await client.call_tool("get_universe", args))
        symbols += [a["symbol"] for a in data["assets"]]
        cursor = data.get("next_cursor")
        if not cursor:
            return symbols


async def check_invariants(client: Client, universe_id: str) -> dict[str, Any]:
    """Assert every invariant; returns the figures for the test's own expectations."""
    count = _data(await client.call_tool("get_universe", {"universe_id": universe_id, "include_assets": False}))[
        "universe"
    ]["asset_count"]
    pages = await paged_members(client, universe_id)
    assert len(pages) == len(set(pages)), "a member appears twice on the pages"
    assert len(pages) == count, f"pages hold {len(pages)} members, asset_count says {count}"

    exported = ""
    arguments: dict[str, Any] | None = {"universe_id": universe_id}
    while arguments:  # page by page, joined: the whole file
        page = _data(await client.call_tool("export_universe_csv", arguments))
        exported += page["csv_text"]
        arguments = {"universe_id": universe_id, "cursor": page["next_cursor"]} if page["next_cursor"] else None
    export_symbols = [row["symbol"] for row in csv.DictReader(io.StringIO(exported))]
    assert sorted(export_symbols) == sorted(pages), "the export differs from the pages"

    resource = await client.read_resource(f"universe://{universe_id}/assets.csv")
    contents = resource.contents[0]
    assert isinstance(contents, TextResourceContents)
    text = contents.text
    assert sorted(row["symbol"] for row in csv.DictReader(io.StringIO(text))) == sorted(pages)

    # Replaying the history now gives exactly the members.
    now = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    replayed = await paged_members(client, universe_id, as_of=now)
    assert sorted(replayed) == sorted(pages), "replaying the events does not give the members"

    # From before the universe existed, so that its first members count as additions too (size_start: members
    # before then, from a back-dated import of older history).
    turnover = _data(
        await client.call_tool(
            "get_universe_turnover", {"universe_id": universe_id, "since": "2000-01-01T00:00:00Z", "until": now}
        )
    )
    assert turnover["additions"] - turnover["removals"] == count - turnover["size_start"], turnover
    assert turnover["size_end"] == count, turnover
    events = await check_history(client, universe_id, pages)
    return {"count": count, "members": pages, "turnover": turnover, "events": events}


async def history_events(client: Client, universe_id: str, **extra: Any) -> list[dict[str, Any]]:
    """Every membership event, page by page through get_universe_history (newest first)."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        args = {"universe_id": universe_id, "limit": 41, **extra, **({"cursor": cursor} if cursor else {})}
        data = _data(await client.call_tool("get_universe_history", args))
        events += data["events"]
        cursor = data.get("next_cursor")
        if not cursor:
            return events


async def check_history(client: Client, universe_id: str, members: list[str]) -> list[dict[str, Any]]:
    """The history, replayed oldest first, alternates added/removed per security starting with added, and ends
    with exactly the members. Returns the events (newest first)."""
    events = await history_events(client, universe_id)
    times = [datetime.fromisoformat(e["effective_at"]) for e in events]
    assert times == sorted(times, reverse=True), "the history is not newest first"
    state: dict[str, str] = {}
    for event in reversed(events):
        previous = state.get(event["symbol"], "removed")
        assert event["action"] != previous, f"{event['symbol']}: {event['action']} twice in a row"
        state[event["symbol"]] = event["action"]
    replayed = sorted(s for s, action in state.items() if action == "added")
    assert replayed == sorted(members), "replaying the history does not give the members"
    return events


def code_of(result: Any) -> str:
    envelope = result.structured_content
    return "ok" if envelope["success"] else envelope["error"]["code"]

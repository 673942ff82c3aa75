"""The real `universe-mcp serve` over HTTP: /metrics scraped and parsed after a few calls, its access rule, and the
process's stderr in one format (JSON) with one line per call."""

from __future__ import annotations

import json

import httpx
import pytest
from mcp import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import serve_http

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def scrape(base: str, **headers: str) -> dict[str, object]:
    response = httpx.get(f"{base}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)} | {"_text": response.text}


def value(families: dict, family: str, sample: str, **labels: str) -> float:
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0.0


async def test_metrics_after_calls_and_one_json_log_line_per_call(data_dir):
    # stderr only in the log: every line of it is checked below.
    json_logs = {"UNIVERSE_MCP_LOG_LEVEL": "INFO", "UNIVERSE_MCP_LOG_FORMAT": "json"}
    with serve_http(data_dir, stdout_to_log=False, **json_logs) as server:
        base = server.url
        before = scrape(base)
        async with Client(f"{base}/mcp") as client:
            created = await client.call_tool("create_universe", {"name": "Tenant Secret Name", "symbols": ["AAPL"]})
            universe_id = created.structured_content["data"]["universe"]["id"]
            for _ in range(3):
                await client.call_tool("list_universes", {})
            await client.call_tool("get_universe", {"universe_id": "not-a-uuid"})
            await client.call_tool("validate_symbols", {"symbols": ["MSFT", "MSFT.XX"]})
            await client.read_resource(f"universe://{universe_id}")
        after = scrape(base)
        text = after["_text"]

        calls = "universe_mcp_tool_calls"
        assert value(after, calls, f"{calls}_total", tool="list_universes", outcome="ok") == 3
        assert value(before, calls, f"{calls}_total", tool="list_universes", outcome="ok") == 0
        assert value(after, calls, f"{calls}_total", tool="get_universe", outcome="invalid_argument") == 1
        # Histograms: buckets up to +Inf, a count and a sum per tool and outcome.
        hist = "universe_mcp_tool_call_duration_seconds"
        assert after[hist].type == "histogram"
        assert value(after, hist, f"{hist}_count", tool="list_universes", outcome="ok") == 3
        assert value(after, hist, f"{hist}_bucket", tool="list_universes", outcome="ok", le="+Inf") == 3
        assert value(after, hist, f"{hist}_sum", tool="list_universes", outcome="ok") > 0
        reads = "universe_mcp_resource_reads"
        assert value(after, reads, f"{reads}_total", resource="universe://{universe_id}", outcome="ok") == 1
        lookups = "universe_mcp_validation_cache_lookups"
        assert value(after, lookups, f"{lookups}_total", result="miss") >= 2
        provider = "universe_mcp_provider_calls"
        assert value(after, provider, f"{provider}_total", provider="catalog", outcome="ok") >= 1
        # State gauges, read at scrape time.
        assert (
            value(
                after, "universe_mcp_provider_state", "universe_mcp_provider_state", provider="yahoo", state="disabled"
            )
            == 1
        )
        assert value(after, "universe_mcp_jobs", "universe_mcp_jobs", status="running") == 0
        queue = "universe_mcp_queue_messages"
        assert value(after, queue, queue, queue="validation", state="ready") == 0
        assert value(after, "universe_mcp_component_up", "universe_mcp_component_up", component="store") == 1
        assert (
            value(
                after, "universe_mcp_listings_as_of_timestamp_seconds", "universe_mcp_listings_as_of_timestamp_seconds"
            )
            > 1.7e9
        )
        # No tenant data: not the universe's id or name, not a symbol anyone asked about.
        for secret in (universe_id, "Tenant Secret Name", "MSFT", "not-a-uuid"):
            assert secret not in text

    lines = server.log.read_text().splitlines()
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    banner_end = next(i for i, line in enumerate(lines) if line.startswith("{"))
    assert len(parsed) == len(lines) - banner_end, "after the banner, every stderr line is one JSON object"
    tool_lines = [line for line in parsed if line.get("event") == "tool_call"]
    assert [line["tool"] for line in tool_lines] == [
        "create_universe",
        "list_universes",
        "list_universes",
        "list_universes",
        "get_universe",
        "validate_symbols",
    ]
    assert all({"owner", "outcome", "elapsed_ms", "request_id"} <= set(line) for line in tool_lines)
    assert [line["resource"] for line in parsed if line.get("event") == "resource_read"] == ["universe://{universe_id}"]
    # Third-party noise stays out at INFO: no alembic migration steps, no SDK "Processing request" lines.
    assert not [line for line in parsed if line["logger"].startswith(("alembic", "mcp.", "httpx", "httpcore"))]


def test_metrics_need_the_metrics_token_once_callers_authenticate(data_dir):
    secret = "m" * 32
    with serve_http(data_dir, UNIVERSE_MCP_AUTH="token", UNIVERSE_MCP_METRICS_TOKEN=secret) as server:
        base = server.url
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 401
        assert httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        assert "universe_mcp_build_info" in scrape(base, Authorization=f"Bearer {secret}")["_text"]
        # An X-Request-Id from a proxy comes back, so a request can be found in the logs.
        ready = httpx.get(f"{base}/healthz", headers={"X-Request-Id": "proxy-7"}, timeout=5)
        assert ready.headers["x-request-id"] == "proxy-7"
    with serve_http(data_dir, UNIVERSE_MCP_AUTH="token") as server:  # no metrics token: /metrics stays closed
        refused = httpx.get(f"{server.url}/metrics", timeout=5)
        assert refused.status_code == 401 and "UNIVERSE_MCP_METRICS_TOKEN" in refused.text


async def test_metrics_can_be_switched_off(make_settings):
    # In-process: the route is simply not registered (no lifespan needed to see a 404).
    from server.app import build_server
    from server.transports import http_app

    for enabled, expected in ((False, 404), (True, 200)):
        settings = make_settings(metrics_enabled=enabled)
        app = http_app(build_server(settings), settings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://127.0.0.1") as http:
            assert (await http.get("/metrics")).status_code == expected

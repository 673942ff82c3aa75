"""search_assets online (issue 13, item 4): when the store has fewer hits than asked, Yahoo Search and Alpha
Vantage SYMBOL_SEARCH are asked at once, within the deadline, through their guards; their hits follow the store's,
labelled, one per canonical symbol, and are kept as the caller's unconfirmed assets. On SQLite and PostgreSQL.

Yahoo answers from recorded bodies through a requests transport (tests/providers/conftest.py, CannedYahoo), Alpha
Vantage from a local HTTP server speaking recorded bodies; the black hole accepts connections and never answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from providers.alpha_vantage import AlphaVantageProvider
from providers.base import MarketDataProvider
from providers.catalog import CatalogProvider
from providers.guard import CircuitBreaker, GuardedProvider, RateLimit
from providers.yahoo import YahooProvider
from tests.conftest import Call
from tests.providers.conftest import (  # noqa: F401 - fixtures
    BOOTSTRAP_ROUTES,
    CannedYahoo,
    Reply,
    av_server,
    black_hole,
    fixture_bytes,
    yahoo_env,
)
from tests.support.stores import pg_store, serve, store  # noqa: F401

pytestmark = pytest.mark.anyio

EVOLUTION = (r"/v1/finance/search\?", 200, fixture_bytes("yahoo", "search_company_name_evolution.json"))
# Recorded for q=AAPL; served here for "Apple" (Yahoo's answer to the ticker, a real body either way).
YAHOO_AAPL = (r"/v1/finance/search\?", 200, fixture_bytes("yahoo", "search_aapl.json"))
NO_RESULTS = (r"/v1/finance/search\?", 200, fixture_bytes("yahoo", "search_no_results.json"))


def guarded(*providers: MarketDataProvider) -> list[MarketDataProvider]:
    """The providers as core/wiring.py builds them: behind a breaker and a rate limit; the catalog last."""
    return [
        *(GuardedProvider(p, CircuitBreaker(p.name), RateLimit(p.name, "100/second")) for p in providers),
        CatalogProvider(),
    ]


def yahoo(canned: CannedYahoo, cache_dir: Path, timeout_s: float = 3.0) -> YahooProvider:
    return YahooProvider(timeout_s=timeout_s, cache_dir=cache_dir, session_factory=canned.session_factory())


def alpha_vantage(base_url: str, timeout_s: float = 3.0) -> AlphaVantageProvider:
    return AlphaVantageProvider("TESTKEY", base_url=base_url, timeout_s=timeout_s)


def symbols_of(page: dict[str, Any]) -> list[str]:
    return [a["symbol"] for a in page["assets"]]


def sources_of(page: dict[str, Any]) -> dict[str, str | None]:
    return {a["symbol"]: a.get("source") for a in page["assets"]}


async def search(settings: Any, providers: Sequence[MarketDataProvider] | None = None, **arguments: Any) -> dict:
    async with serve(settings, providers=providers) as client:
        return await Call(client).ok("search_assets", **arguments)


async def test_a_name_the_store_lacks_comes_back_labelled_and_kept_for_its_caller_only(store, yahoo_env, av_server):
    alice, bob = store.user("alice"), store.user("bob")
    # Offline, the store has nothing for the name.
    assert symbols_of(await search(store(local_user=alice), query="Evolution Gaming Group")) == []

    canned = CannedYahoo([*BOOTSTRAP_ROUTES, EVOLUTION])  # Alpha Vantage has no route for it: a 404, an error
    online = store(local_user=alice, offline=False)
    providers = guarded(yahoo(canned, yahoo_env), alpha_vantage(av_server.base_url))
    page = await search(online, providers, query="Evolution Gaming Group")
    assert sources_of(page) == {"0RQ6.IL": "yahoo", "E3G1.SG": "yahoo"}
    assert {a["validation_status"] for a in page["assets"]} == {"pending"}
    assert page["assets"][0]["name"] == "Evolution AB (publ)"
    assert canned.count("/v1/finance/search") == 1
    assert [q["keywords"] for q in av_server.requests] == [["Evolution Gaming Group"]]  # asked; its error cost nothing

    # Kept in the store as alice's unconfirmed assets: her offline search finds them there (no source: the store's).
    mine = {a["symbol"]: a for a in (await search(store(local_user=alice), query="evolution"))["assets"]}
    assert {s: (mine[s]["validation_status"], mine[s].get("source")) for s in ("0RQ6.IL", "E3G1.SG")} == {
        "0RQ6.IL": ("pending", None),
        "E3G1.SG": ("pending", None),
    }
    # Another owner never sees them until a provider confirms them.
    assert not {"0RQ6.IL", "E3G1.SG"} & set(symbols_of(await search(store(local_user=bob), query="evolution")))


async def test_store_hits_come_first_and_a_symbol_the_store_has_is_not_repeated(store, yahoo_env, av_server):
    av_server.routes[("SYMBOL_SEARCH", "Apple")] = Reply(
        body=fixture_bytes("alpha_vantage", "symbol_search_apple.json")
    )
    offline = await search(store(), query="Apple")
    assert offline["assets"][0]["symbol"] == "AAPL"

    canned = CannedYahoo([*BOOTSTRAP_ROUTES, YAHOO_AAPL])
    providers = guarded(yahoo(canned, yahoo_env), alpha_vantage(av_server.base_url))
    page = await search(store(offline=False), providers, query="Apple", limit=20)
    symbols = symbols_of(page)
    assert len(symbols) == len(set(symbols)) <= 20  # AAPL came from the store, Yahoo and Alpha Vantage: once
    assert page["assets"][: len(offline["assets"])] == offline["assets"]  # the store's hits first, as they were
    found = sources_of(page)
    assert found["AAPL"] is None
    # Yahoo's results are merged before Alpha Vantage's; the options in Yahoo's answer are not securities to hold.
    assert found["AAPU"] == "yahoo" and found["AAPL34.SAO"] == "alpha_vantage" and found["APC.DEX"] == "alpha_vantage"
    assert not any(s.startswith("AAPL26") for s in symbols)
    assert all(found[s] is not None for s in symbols[len(offline["assets"]) :])


async def test_a_black_holed_provider_costs_the_deadline_and_the_store_hits_still_come_back(
    store,
    yahoo_env,
    black_hole,  # noqa: F811
):
    import requests

    host, port = black_hole

    def into_the_hole() -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.proxies = {"http": f"http://{host}:{port}", "https": f"http://{host}:{port}"}
        return session

    # Both providers would wait 30 s on their own; the search's 1 s deadline (validation_deadline_s) ends the wait.
    hole_yahoo = YahooProvider(timeout_s=30, cache_dir=yahoo_env, session_factory=into_the_hole)
    providers = guarded(hole_yahoo, alpha_vantage(f"http://{host}:{port}/query", timeout_s=30))
    settings = store(offline=False, validation_deadline_s=1.0)
    with anyio.fail_after(20):  # a hang detector, well under the providers' own 30 s, not a speed bound
        page = await search(settings, providers, query="Apple")
    assert page["assets"] and page["assets"][0]["symbol"] == "AAPL"
    assert all("source" not in a for a in page["assets"])


async def test_past_the_new_asset_quota_the_hits_are_shown_not_kept(store, yahoo_env, av_server):
    alice = store.user("alice")
    canned = CannedYahoo([*BOOTSTRAP_ROUTES, EVOLUTION])
    online = store(local_user=alice, offline=False, max_new_assets_per_hour=1)  # two hits: one over the quota
    page = await search(online, guarded(yahoo(canned, yahoo_env)), query="Evolution Gaming Group")
    assert sources_of(page) == {"0RQ6.IL": "yahoo", "E3G1.SG": "yahoo"}
    assert not {"0RQ6.IL", "E3G1.SG"} & set(symbols_of(await search(store(local_user=alice), query="evolution")))


async def test_offline_never_asks_and_online_does(make_settings, yahoo_env, av_server):
    av_server.routes[("SYMBOL_SEARCH", "Apple")] = Reply(
        body=fixture_bytes("alpha_vantage", "symbol_search_apple.json")
    )
    canned = CannedYahoo([*BOOTSTRAP_ROUTES, NO_RESULTS])

    def providers() -> list[MarketDataProvider]:
        return guarded(yahoo(canned, yahoo_env), alpha_vantage(av_server.base_url))

    offline = await search(make_settings(), providers(), query="Apple")  # offline is the tests' default
    assert canned.urls == [] and av_server.requests == []
    assert all("source" not in a for a in offline["assets"])
    # A full first page, or a later page, needs no help either.
    await search(make_settings(offline=False), providers(), query="a", limit=5)
    assert canned.urls == [] and av_server.requests == []

    online = await search(make_settings(offline=False), providers(), query="Apple")
    assert canned.count("/v1/finance/search") == 1 and len(av_server.requests) == 1
    assert "alpha_vantage" in set(sources_of(online).values())


async def test_only_a_caller_who_may_spend_provider_quota_searches_online(make_settings, av_server):
    from core.wiring import open_app_state
    from services.schemas import ALL_SCOPES, Caller
    from tools._deps import ToolDeps

    av_server.routes[("SYMBOL_SEARCH", "Apple")] = Reply(
        body=fixture_bytes("alpha_vantage", "symbol_search_apple.json")
    )
    async with open_app_state(
        make_settings(offline=False), providers=guarded(alpha_vantage(av_server.base_url))
    ) as state:
        owner = state.local_caller.owner_id
        reader = ToolDeps(state, Caller(owner_id=owner, name="reader", scopes=frozenset({"read"}))).online_search()
        assert reader is not None and await reader.find("Apple", 5) == []
        assert av_server.requests == []  # a read-only token never makes the server ask a provider
        checker = ToolDeps(state, Caller(owner_id=owner, name="checker", scopes=ALL_SCOPES)).online_search()
        assert checker is not None and [f.symbol for f in await checker.find("Apple", 5)][:2] == ["APLE", "AAPL"]
        assert len(av_server.requests) == 1

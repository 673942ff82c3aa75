"""The validation strategy (services/validation.py) in process: cache -> store -> providers in order -> pending.

A real migrated SQLite store (the server's AppState), scriptable FakeProviders standing in for the network ones,
and a cache that records what is written to it with which TTL. The real providers behind the same strategy are
covered by tests/providers/test_chain.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from core.settings import Settings
from core.wiring import AppState
from providers.base import AssetProfile, ProviderUnavailable, Verdict
from providers.fake import FakeProvider
from server.lifespan import open_app_state
from services.schemas import SymbolVerdict
from services.validation import PROFILE_FIELDS, ValidationConfig, ValidationService
from storage.cache import MemoryCache
from storage.db import utcnow
from storage.models import Asset
from storage.repositories import assets as asset_repo

pytestmark = pytest.mark.anyio

NVDA = AssetProfile(
    symbol="NVDA",
    name="NVIDIA Corporation",
    exchange="NMS",
    asset_type="equity",
    currency="USD",
    sector="Information Technology",
    industry="Semiconductors",
    country="United States",
    market_cap=4.0e12,
    pe_ratio=50.0,
    dividend_yield=0.0003,
    isin="US67066G1040",
    extra={"yahoo_exchange": "NMS"},
)
ACME = AssetProfile(symbol="ZZACME", name="Acme Explosives Inc", sector="Materials")


class RecordingCache(MemoryCache):
    """The in-process cache, remembering every write (key, payload, ttl) and every read."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, str, int]] = []
        self.reads = 0

    async def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        self.reads += 1
        return await super().get_many(keys)

    async def set(self, key: str, value: str, ttl_s: int) -> None:
        self.writes.append((key, value, ttl_s))
        await super().set(key, value, ttl_s)


class BuggyProvider(FakeProvider):
    async def validate(self, symbol: str) -> Verdict:
        raise KeyError("a bug, not a provider answer")


class DatedProvider(FakeProvider):
    """Answers like the offline catalog: valid, with the date its data describes."""

    async def validate(self, symbol: str) -> Verdict:
        verdict = await super().validate(symbol)
        return Verdict(verdict.symbol, verdict.status, "catalog", verdict.profile, verdict.reason, date(2026, 1, 2))


@pytest.fixture
async def state(make_settings: Callable[..., Settings]) -> AsyncIterator[AppState]:
    async with open_app_state(make_settings()) as app_state:
        yield app_state


def service(*providers, known: list[str] | None = None, **config) -> ValidationService:
    return ValidationService(
        cache=RecordingCache(),
        providers=list(providers),
        config=ValidationConfig(**config),
        known_symbols=(lambda: known) if known is not None else None,
    )


async def run(state: AppState, svc: ValidationService, symbols: list[str], **kwargs) -> dict[str, object]:
    async with state.unit_of_work() as session:
        verdicts = await svc.validate(session, symbols, **kwargs)
    assert [v.symbol for v in verdicts] == symbols  # in the caller's order
    return {v.symbol: v for v in verdicts}


async def stored(state: AppState, *symbols: str) -> dict[str, Asset]:
    async with state.unit_of_work() as session:
        return await asset_repo.get_assets_by_symbols(session, list(symbols))


# --- providers in order -------------------------------------------------------------------------------------------
async def test_the_first_provider_that_answers_decides_and_later_ones_are_not_asked(state):
    first = FakeProvider(name="yahoo", known={"NVDA": NVDA})
    second = FakeProvider(name="alpha_vantage", known={"NVDA": NVDA, "ZZNOPE": ACME})
    v = await run(state, service(first, second), ["NVDA", "ZZNOPE"])
    assert (v["NVDA"].status, v["NVDA"].source) == ("valid", "yahoo")
    assert (v["ZZNOPE"].status, v["ZZNOPE"].source) == ("invalid", "yahoo")  # "no such symbol" is an answer
    assert v["ZZNOPE"].reason == "yahoo does not list ZZNOPE"
    assert second.calls == 0


async def test_a_provider_error_falls_through_to_the_next(state):
    first = FakeProvider(name="yahoo", fail_symbols={"NVDA"})
    second = FakeProvider(name="alpha_vantage", known={"NVDA": NVDA})
    v = await run(state, service(first, second), ["NVDA"])
    assert (v["NVDA"].status, v["NVDA"].source) == ("valid", "alpha_vantage")
    assert (first.calls, second.calls) == (1, 1)


async def test_when_every_provider_fails_the_symbol_is_pending_with_every_providers_error(state):
    first = FakeProvider(name="yahoo", fail_symbols={"ZZQQ"})
    second = FakeProvider(name="alpha_vantage", fail_symbols={"ZZQQ"})
    v = await run(state, service(first, second), ["ZZQQ"])
    assert v["ZZQQ"].status == "pending" and v["ZZQQ"].source is None
    assert v["ZZQQ"].reason == "no provider could answer (yahoo: simulated outage; alpha_vantage: simulated outage)"
    assert v["ZZQQ"].retry_after_s is None and not v["ZZQQ"].stale


async def test_a_rate_limited_last_provider_says_so_and_when_to_retry(state):
    limited = FakeProvider(name="alpha_vantage", rate_limit_every=1, retry_after_s=42.0)
    v = await run(state, service(FakeProvider(name="yahoo", fail_symbols={"ZZQQ"}), limited), ["ZZQQ"])
    assert (v["ZZQQ"].status, v["ZZQQ"].reason, v["ZZQQ"].retry_after_s) == (
        "pending",
        "alpha_vantage is rate limited; yahoo: simulated outage",
        42.0,
    )


async def test_no_providers_or_no_time_leaves_symbols_pending_without_asking(state):
    v = await run(state, service(), ["ZZQQ"])
    assert (v["ZZQQ"].status, v["ZZQQ"].reason) == ("pending", "no provider answered within the deadline")
    fake = FakeProvider(known={"ZZQQ": ACME})
    v = await run(state, service(fake), ["ZZQQ"], deadline_s=0)
    assert v["ZZQQ"].status == "pending" and fake.calls == 0


async def test_the_deadline_covers_the_whole_call(state):
    hanging = FakeProvider(name="yahoo", hang=True)
    v = await run(state, service(hanging, FakeProvider(known={"ZZQQ": ACME})), ["ZZQQ", "ZZRR"], deadline_s=0.2)
    assert {s: (x.status, x.reason) for s, x in v.items()} == {
        "ZZQQ": ("pending", "no provider answered within the deadline"),
        "ZZRR": ("pending", "no provider answered within the deadline"),
    }


async def test_the_configured_deadline_applies_when_the_call_gives_none(state):
    v = await run(state, service(FakeProvider(hang=True), deadline_s=0.1), ["ZZQQ"])
    assert v["ZZQQ"].status == "pending"


async def test_at_most_concurrency_provider_calls_run_at_once(state):
    running = peak = 0

    class Counting(FakeProvider):
        async def validate(self, symbol: str) -> Verdict:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            return await super().validate(symbol)

    symbols = [f"ZZC{i:02d}" for i in range(12)]
    await run(state, service(Counting(), concurrency=3), symbols)
    assert peak == 3


async def test_a_bug_in_a_provider_leaves_the_symbol_unsettled_and_is_logged(state, caplog):
    with caplog.at_level(logging.ERROR, logger="services.validation"):
        v = await run(state, service(BuggyProvider()), ["ZZQQ"])
    assert v["ZZQQ"].status == "pending"
    assert [r.getMessage() for r in caplog.records] == ["validation task failed"]


# --- verdicts, profiles and what is remembered ----------------------------------------------------------------------
async def test_a_valid_verdict_carries_the_profile_fields_and_is_cached_for_a_day(state):
    svc = service(FakeProvider(name="yahoo", known={"NVDA": NVDA}), valid_ttl_s=111, invalid_ttl_s=22)
    before = utcnow()
    v = (await run(state, svc, ["NVDA"]))["NVDA"]
    assert v.profile == {
        "symbol": "NVDA",
        "name": "NVIDIA Corporation",
        "exchange": "NMS",
        "asset_type": "equity",
        "currency": "USD",
        "sector": "Information Technology",
        "industry": "Semiconductors",
        "country": "United States",
        "market_cap": 4.0e12,
        "pe_ratio": 50.0,
        "dividend_yield": 0.0003,
        "isin": "US67066G1040",
    }
    assert v.reason is None and v.as_of is None and not v.cached
    assert before <= v.checked_at <= utcnow()
    ((key, payload, ttl),) = svc.cache.writes
    assert (key, ttl) == ("verdict:NVDA", 111)
    # The cached verdict is stored as it is sent: the fields that do not apply are left out, not null.
    assert '"cached":false' in payload and "null" not in payload and '"candidates"' not in payload
    assert SymbolVerdict.model_validate_json(payload) == v


async def test_an_invalid_verdict_is_cached_for_an_hour_with_its_candidates(state):
    """Candidates are part of the cached verdict: a cache hit says "did you mean" too (issue 12 item 7)."""
    svc = service(FakeProvider(name="yahoo"), known=["MSFT", "MSFU", "AAPL"], valid_ttl_s=111, invalid_ttl_s=22)
    v = (await run(state, svc, ["MSFTT"]))["MSFTT"]
    assert (v.status, v.candidates) == ("invalid", ["MSFT", "MSFU"])
    ((key, payload, ttl),) = svc.cache.writes
    assert (key, ttl) == ("verdict:MSFTT", 22) and '"candidates":["MSFT","MSFU"]' in payload
    cached = (await run(state, svc, ["MSFTT"]))["MSFTT"]
    assert cached.cached and cached.candidates == ["MSFT", "MSFU"]


async def test_a_catalog_verdict_is_dated_by_its_data(state):
    v = (await run(state, service(DatedProvider(known={"ZZDATE": ACME})), ["ZZDATE"]))["ZZDATE"]
    assert v.as_of == date(2026, 1, 2)
    assert v.checked_at == datetime(2026, 1, 2, tzinfo=UTC)


async def test_unsettled_symbols_are_never_cached(state):
    svc = service(FakeProvider(fail_symbols={"ZZQQ"}))
    await run(state, svc, ["ZZQQ"])
    assert svc.cache.writes == []


async def test_a_fully_cached_call_is_answered_from_the_cache(state):
    provider = FakeProvider(name="yahoo", known={"NVDA": NVDA})
    svc = service(provider)
    await run(state, svc, ["NVDA", "ZZNOPE"])
    assert provider.calls == 2
    again = await run(state, svc, ["NVDA", "ZZNOPE", "NVDA"])
    assert provider.calls == 2 and all(v.cached for v in again.values())
    assert again["NVDA"].profile["name"] == "NVIDIA Corporation"
    from_cache = await svc.from_cache(["NVDA", "ZZNOPE"])
    assert [(v.symbol, v.status, v.cached) for v in from_cache] == [
        ("NVDA", "valid", True),
        ("ZZNOPE", "invalid", True),
    ]
    assert from_cache[0] is again["NVDA"]  # parsed once, shared
    assert await svc.from_cache(["NVDA", "ZZOTHER"]) is None  # not everything cached: the caller must validate


async def test_force_refresh_skips_cache_and_store(state):
    provider = FakeProvider(name="yahoo", known={"NVDA": NVDA})
    svc = service(provider)
    await run(state, svc, ["NVDA"])
    v = await run(state, svc, ["NVDA"], force_refresh=True)
    assert provider.calls == 2 and not v["NVDA"].cached


# --- the store ----------------------------------------------------------------------------------------------------
async def test_verdicts_are_recorded_in_the_store(state):
    provider = FakeProvider(name="yahoo", known={"NVDA": NVDA}, fail_symbols={"ZZPEND"})
    await run(state, service(provider), ["NVDA", "ZZPEND", "ZZNEVER"])
    rows = await stored(state, "NVDA", "ZZPEND", "ZZNEVER")
    nvda = rows["NVDA"]
    assert (nvda.validation_status, nvda.is_validated, nvda.validation_source) == ("valid", True, "yahoo")
    assert (nvda.name, nvda.industry, nvda.market_cap, nvda.isin) == (
        "NVIDIA Corporation",
        "Semiconductors",
        4.0e12,
        "US67066G1040",
    )
    assert nvda.last_validated_at is not None and nvda.validation_reason is None
    # Pending symbols are created so the background re-check finds them; an unknown invalid one is not created.
    assert rows["ZZPEND"].validation_status == "pending"
    assert rows["ZZPEND"].validation_reason == "no provider could answer (yahoo: simulated outage)"
    assert "ZZNEVER" not in rows


async def test_a_fresh_stored_verdict_is_used_and_warms_the_cache(state):
    provider = FakeProvider(name="yahoo", known={"NVDA": NVDA})
    await run(state, service(provider), ["NVDA", "ZZGONE"])
    async with state.unit_of_work() as session:
        await asset_repo.create_assets(session, [{"symbol": "ZZGONE", "validation_status": "unknown"}])
    await run(state, service(provider), ["ZZGONE"])  # now known to the store: its invalid verdict is recorded
    calls = provider.calls
    fresh = service(provider)  # a new process: empty cache, same store
    v = await run(state, fresh, ["NVDA", "ZZGONE"])
    assert provider.calls == calls  # both answered from the store
    assert (v["NVDA"].status, v["NVDA"].source, v["NVDA"].stale) == ("valid", "yahoo", False)
    assert v["NVDA"].profile["name"] == "NVIDIA Corporation"
    assert (v["ZZGONE"].status, v["ZZGONE"].reason) == ("invalid", "yahoo does not list ZZGONE")
    assert sorted(key for key, _, _ in fresh.cache.writes) == ["verdict:NVDA", "verdict:ZZGONE"]


async def test_a_stored_verdict_older_than_fresh_s_is_checked_again(state):
    provider = FakeProvider(name="yahoo", known={"NVDA": NVDA})
    await run(state, service(provider), ["NVDA"])
    async with state.unit_of_work() as session:
        await session.execute(
            update(Asset).where(Asset.symbol == "NVDA").values(last_validated_at=utcnow() - timedelta(seconds=100))
        )
    await run(state, service(provider, fresh_s=101), ["NVDA"])
    assert provider.calls == 1  # 100 s old, fresh for 101 s: from the store
    await run(state, service(provider, fresh_s=99), ["NVDA"])
    assert provider.calls == 2  # older than fresh_s: asked again


async def test_an_earlier_verdict_beats_pending_and_is_marked_stale(state):
    good = FakeProvider(name="yahoo", known={"NVDA": NVDA})
    await run(state, service(good), ["NVDA"])
    down = FakeProvider(name="yahoo", fail_symbols={"NVDA"})
    v = (await run(state, service(down), ["NVDA"], force_refresh=True))["NVDA"]
    assert (v.status, v.source, v.stale) == ("valid", "yahoo", True)
    assert v.reason == "last verdict kept: no provider could answer (yahoo: simulated outage)"
    assert v.profile["name"] == "NVIDIA Corporation"
    row = (await stored(state, "NVDA"))["NVDA"]
    assert row.validation_status == "valid"  # a stale answer changes nothing in the store


async def test_invalid_is_recorded_onto_a_known_asset_and_pending_never_overwrites_a_verdict(state):
    async with state.unit_of_work() as session:
        await asset_repo.create_assets(
            session,
            [
                {"symbol": "ZZUNK", "validation_status": "unknown"},
                {"symbol": "ZZINV", "validation_status": "unknown"},
                {"symbol": "ZZPEN", "validation_status": "pending", "validation_reason": "earlier"},
            ],
        )
    provider = FakeProvider(name="yahoo", fail_symbols={"ZZUNK", "ZZPEN"})
    await run(state, service(provider), ["ZZUNK", "ZZINV", "ZZPEN"])
    rows = await stored(state, "ZZUNK", "ZZINV", "ZZPEN")
    assert rows["ZZUNK"].validation_status == "pending"  # unknown -> pending
    assert (rows["ZZINV"].validation_status, rows["ZZINV"].is_validated, rows["ZZINV"].validation_source) == (
        "invalid",
        False,
        "yahoo",
    )
    assert rows["ZZINV"].validation_reason == "yahoo does not list ZZINV" and rows["ZZINV"].last_validated_at
    assert (rows["ZZPEN"].validation_status, rows["ZZPEN"].validation_reason) == ("pending", "earlier")


async def test_long_reasons_are_cut_to_300_characters_in_the_store(state):
    class Wordy(FakeProvider):
        async def validate(self, symbol: str) -> Verdict:
            raise ProviderUnavailable(self.name, "x" * 400)

    async with state.unit_of_work() as session:
        await asset_repo.create_assets(session, [{"symbol": "ZZLONG", "validation_status": "unknown"}])
    await run(state, service(Wordy()), ["ZZLONG", "ZZNEW"])
    rows = await stored(state, "ZZLONG", "ZZNEW")
    assert len(rows["ZZLONG"].validation_reason) == 300 and len(rows["ZZNEW"].validation_reason) == 300


async def test_a_rate_limited_verdict_is_not_recorded_as_an_answer(state):
    limited = FakeProvider(name="yahoo", rate_limit_every=1, retry_after_s=5)
    await run(state, service(limited), ["ZZRATE"])
    row = (await stored(state, "ZZRATE"))["ZZRATE"]
    assert (row.validation_status, row.validation_reason) == ("pending", "yahoo is rate limited")


async def test_check_many_gives_the_universe_services_view(state):
    svc = service(FakeProvider(name="yahoo", known={"NVDA": NVDA}), known=["MSFT"])
    async with state.unit_of_work() as session:
        checks = await svc.check_many(session, ["NVDA", "MSFTT"])
    assert (checks["NVDA"].symbol, checks["NVDA"].status, checks["NVDA"].source) == ("NVDA", "valid", "yahoo")
    assert checks["NVDA"].reason is None and checks["MSFTT"].symbol == "MSFTT"
    assert (checks["MSFTT"].status, checks["MSFTT"].reason, checks["MSFTT"].candidates) == (
        "invalid",
        "yahoo does not list MSFTT",
        ["MSFT"],
    )


async def test_each_symbol_is_answered_by_the_first_layer_that_knows_it_cache_then_store_then_providers(state):
    """One call, four symbols, each settled by a different step: a cached verdict beats the store's, a fresh stored
    verdict beats the providers', a provider answers only what neither knows, and what no provider answers is
    pending. The provider is asked about exactly the last two."""
    checked = utcnow() - timedelta(minutes=5)
    async with state.unit_of_work() as session:
        await asset_repo.create_assets(
            session,
            [
                # The store says invalid, the cache valid: the cache answers first.
                {"symbol": "ZZCACHE", "validation_status": "invalid", "validation_source": "alpha_vantage",
                 "last_validated_at": checked},
                # A fresh stored verdict; the provider would call it invalid (it does not know it).
                {"symbol": "ZZSTORE", "validation_status": "valid", "validation_source": "alpha_vantage",
                 "is_validated": True, "last_validated_at": checked},
            ],
        )  # fmt: skip
    provider = FakeProvider(name="yahoo", known={"ZZCACHE": ACME, "ZZPROV": ACME}, fail_symbols={"ZZPEND"})
    svc = service(provider)
    cached = SymbolVerdict(symbol="ZZCACHE", status="valid", source="listings", checked_at=checked)
    await svc.cache.set("verdict:ZZCACHE", cached.model_dump_json(), 60)

    v = await run(state, svc, ["ZZPEND", "ZZPROV", "ZZSTORE", "ZZCACHE"])
    answered = {s: (x.status, x.source, x.cached, x.stale) for s, x in v.items()}
    assert answered == {
        "ZZCACHE": ("valid", "listings", True, False),
        "ZZSTORE": ("valid", "alpha_vantage", False, False),
        "ZZPROV": ("valid", "yahoo", False, False),
        "ZZPEND": ("pending", None, False, False),
    }
    assert provider.calls_by_symbol == {"ZZPROV": 1, "ZZPEND": 1}
    rows = await stored(state, "ZZCACHE", "ZZSTORE", "ZZPROV", "ZZPEND")
    assert {s: r.validation_status for s, r in rows.items()} == {
        "ZZCACHE": "invalid",  # a cache hit writes nothing
        "ZZSTORE": "valid",
        "ZZPROV": "valid",
        "ZZPEND": "pending",
    }


async def test_a_verdict_past_fresh_s_is_served_stale_when_every_provider_fails(state):
    """Without force_refresh: an old stored verdict is not answered from the store, but when the providers cannot
    answer it beats pending, marked stale; it is neither cached nor written back."""
    old = utcnow() - timedelta(days=3)
    async with state.unit_of_work() as session:
        await asset_repo.create_assets(
            session,
            [
                {"symbol": "ZZOLDV", "validation_status": "valid", "validation_source": "yahoo", "is_validated": True,
                 "name": "Old Valid Inc", "last_validated_at": old},
                {"symbol": "ZZOLDI", "validation_status": "invalid", "validation_source": "yahoo",
                 "validation_reason": "yahoo does not list ZZOLDI", "last_validated_at": old},
            ],
        )  # fmt: skip
    down = FakeProvider(name="yahoo", fail_symbols={"ZZOLDV", "ZZOLDI"})
    svc = service(down, fresh_s=86_400)
    v = await run(state, svc, ["ZZOLDV", "ZZOLDI"])
    assert down.calls_by_symbol == {"ZZOLDV": 1, "ZZOLDI": 1}  # too old to be answered from the store
    why = "last verdict kept: no provider could answer (yahoo: simulated outage)"
    assert {s: (x.status, x.source, x.stale, x.reason) for s, x in v.items()} == {
        "ZZOLDV": ("valid", "yahoo", True, why),
        "ZZOLDI": ("invalid", "yahoo", True, why),
    }
    assert v["ZZOLDV"].profile == {"name": "Old Valid Inc"} and v["ZZOLDV"].checked_at == old
    assert svc.cache.writes == []
    rows = await stored(state, "ZZOLDV", "ZZOLDI")
    assert {s: (r.validation_status, r.last_validated_at) for s, r in rows.items()} == {
        "ZZOLDV": ("valid", old),
        "ZZOLDI": ("invalid", old),
    }


# --- did you mean -------------------------------------------------------------------------------------------------
def test_candidates_prefer_share_classes_then_close_spellings():
    known = ["BRK.A", "BRK.B", "BRK-B", "BRKR", "BR", "MSFT", "MSFU", "MSFX", "MSTR", "MSFTW", "AAPL"]
    svc = service(known=known)
    assert svc.candidates("BRK") == ["BRK.A", "BRK.B", "BRK-B", "BRKR", "BR"]
    assert svc.candidates("BRK.C") == ["BRK.A", "BRK.B", "BRK-B", "BRKR"]
    assert svc.candidates("MSFTT") == ["MSFT", "MSFTW", "MSTR", "MSFX", "MSFU"]  # closest spelling first
    assert svc.candidates("MSFTT", limit=2) == ["MSFT", "MSFTW"]
    # A symbol a provider called invalid may still be in the catalog: never offer it as its own "did you mean".
    assert svc.candidates("BRK.B") == ["BRK.A", "BRK-B", "BRKR"]
    assert svc.candidates("ZZZZZZ") == []
    assert service().candidates("BRK") == []  # nothing known, nothing suggested


def test_profile_fields_are_the_stored_ones():
    assert set(PROFILE_FIELDS) <= {c.name for c in Asset.__table__.columns}
    assert "extra" not in PROFILE_FIELDS and "symbol" not in PROFILE_FIELDS

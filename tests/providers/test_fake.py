"""The scriptable fake provider used by service tests and benchmarks."""

from __future__ import annotations

import anyio
import pytest

from providers.base import AssetProfile, MarketDataProvider, ProviderRateLimited, ProviderUnavailable
from providers.fake import FakeProvider

pytestmark = pytest.mark.anyio


async def test_known_symbols_are_valid_and_others_invalid():
    fake = FakeProvider(known={"aapl": AssetProfile(symbol="AAPL", name="Apple")})
    assert isinstance(fake, MarketDataProvider)
    valid = await fake.validate("AAPL")
    invalid = await fake.validate("nope")
    assert valid.status == "valid" and valid.profile and valid.profile.name == "Apple" and valid.source == "fake"
    assert invalid.status == "invalid" and invalid.reason and invalid.symbol == "NOPE"
    assert fake.calls == 2 and fake.calls_by_symbol == {"AAPL": 1, "NOPE": 1}


async def test_generated_symbols_are_deterministic():
    a = FakeProvider.with_generated(1000, latency_s=0.0)
    b = FakeProvider.with_generated(1000)
    assert list(a.known) == list(b.known) and len(a.known) == 1000
    assert "SYM00001" in a.known and "SYM01000" in a.known
    assert (await a.validate("SYM00500")).status == "valid"
    assert [p.symbol for p in await a.search("SYM0000", limit=3)] == ["SYM00001", "SYM00002", "SYM00003"]
    assert [p.symbol for p in await a.search("company 999")] == ["SYM00999"]


async def test_failures_rate_limits_and_latency(monkeypatch):
    slept: list[float] = []
    real_sleep = anyio.sleep

    async def recording_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(anyio, "sleep", recording_sleep)
    fake = FakeProvider(fail_symbols={"BAD"}, rate_limit_every=3, retry_after_s=2.5, latency_s=0.02)
    with pytest.raises(ProviderUnavailable):
        await fake.validate("bad")
    assert (await fake.validate("X")).status == "invalid"
    assert slept == [0.02, 0.02]  # every call waits its latency (asked of the clock, not measured)
    with pytest.raises(ProviderRateLimited) as raised:
        await fake.validate("Y")
    assert raised.value.retry_after_s == 2.5


async def test_fail_rate_is_seeded():
    async def outcomes(seed: int) -> list[bool]:
        fake = FakeProvider(fail_rate=0.5, seed=seed)
        results = []
        for i in range(40):
            try:
                await fake.validate(f"S{i}")
                results.append(True)
            except ProviderUnavailable:
                results.append(False)
        return results

    first, second = await outcomes(7), await outcomes(7)
    assert first == second and 5 < first.count(False) < 35


async def test_hang_waits_for_the_callers_deadline():
    fake = FakeProvider(hang=True)
    with anyio.move_on_after(0.05) as scope:
        await fake.validate("AAPL")
    assert scope.cancelled_caught and fake.calls == 1
    await fake.aclose()
    assert fake.closed

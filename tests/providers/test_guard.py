"""Circuit breaker and shared rate limit around a provider."""

from __future__ import annotations

import uuid

import anyio
import pytest

from providers.base import (
    AssetProfile,
    MarketDataProvider,
    ProviderMisconfigured,
    ProviderRateLimited,
    ProviderUnavailable,
    Verdict,
)
from providers.fake import FakeProvider
from providers.guard import CircuitBreaker, GuardedProvider, RateLimit
from tests.support.services import free_port

pytestmark = pytest.mark.anyio

KNOWN = {"AAPL": AssetProfile(symbol="AAPL", name="Apple")}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_breaker_opens_after_consecutive_failures_and_fails_fast():
    fake = FakeProvider(known=KNOWN, fail_symbols={"DOWN"})
    guarded = GuardedProvider(fake, CircuitBreaker("fake", fail_max=3, reset_timeout_s=30))
    assert isinstance(guarded, MarketDataProvider) and guarded.state == "closed"

    for _ in range(3):
        with pytest.raises(ProviderUnavailable):
            await guarded.validate("DOWN")
    assert guarded.state == "open" and fake.calls == 3

    for _ in range(200):
        with pytest.raises(ProviderUnavailable, match="circuit open"):
            await guarded.validate("AAPL")
    assert fake.calls == 3  # refused locally: the provider was not called (speed is `make bench`'s business)


async def test_a_success_resets_the_failure_count():
    fake = FakeProvider(known=KNOWN, fail_symbols={"DOWN"})
    guarded = GuardedProvider(fake, CircuitBreaker("fake", fail_max=2))
    with pytest.raises(ProviderUnavailable):
        await guarded.validate("DOWN")
    assert (await guarded.validate("AAPL")).status == "valid"
    assert (await guarded.validate("ZZZ")).status == "invalid"  # an answer is a success
    with pytest.raises(ProviderUnavailable):
        await guarded.validate("DOWN")
    assert guarded.state == "closed"


async def test_half_open_lets_one_trial_through_and_recovers():
    clock = Clock()
    fake = FakeProvider(known=KNOWN, fail_symbols={"AAPL"})
    breaker = CircuitBreaker("fake", fail_max=1, reset_timeout_s=10, clock=clock)
    guarded = GuardedProvider(fake, breaker)
    with pytest.raises(ProviderUnavailable):
        await guarded.validate("AAPL")
    assert guarded.state == "open"

    clock.now += 10
    assert guarded.state == "half_open"
    with pytest.raises(ProviderUnavailable):  # the trial fails: open again
        await guarded.validate("AAPL")
    assert guarded.state == "open" and fake.calls == 2

    clock.now += 10
    fake.fail_symbols.clear()
    assert (await guarded.validate("AAPL")).status == "valid"
    assert guarded.state == "closed"


async def test_only_one_trial_runs_while_half_open():
    clock = Clock()
    fake = FakeProvider(known=KNOWN, latency_s=0.05)
    breaker = CircuitBreaker("fake", fail_max=1, reset_timeout_s=5, clock=clock)
    guarded = GuardedProvider(fake, breaker)
    breaker.record_failure()
    clock.now += 5
    results: list[str] = []

    async def attempt() -> None:
        try:
            results.append((await guarded.validate("AAPL")).status)
        except ProviderUnavailable:
            results.append("refused")

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(attempt)
    assert sorted(results) == ["refused"] * 4 + ["valid"] and fake.calls == 1


async def test_rate_limits_are_not_failures_and_start_a_cooldown():
    clock = Clock()
    fake = FakeProvider(known=KNOWN, rate_limit_every=1, retry_after_s=30)
    guarded = GuardedProvider(fake, CircuitBreaker("fake", fail_max=1), clock=clock)
    with pytest.raises(ProviderRateLimited):
        await guarded.validate("AAPL")
    assert guarded.state == "closed" and guarded.health()["cooldown_s"] == 30
    with pytest.raises(ProviderRateLimited) as raised:  # answered locally until the provider's wait is over
        await guarded.validate("AAPL")
    assert fake.calls == 1 and 29 <= raised.value.retry_after_s <= 30
    clock.now += 31
    fake.rate_limit_every = 0
    assert (await guarded.validate("AAPL")).status == "valid"


class Misconfigured:
    name = "alpha_vantage"

    def __init__(self) -> None:
        self.calls = 0

    async def validate(self, symbol: str) -> Verdict:
        self.calls += 1
        raise ProviderMisconfigured(self.name, "Alpha Vantage rejected the API key")

    async def search(self, query: str, limit: int = 10) -> list[AssetProfile]:
        raise AssertionError("not used")

    async def aclose(self) -> None:
        return None


async def test_misconfiguration_holds_the_breaker_open_with_the_same_error():
    clock = Clock()
    inner = Misconfigured()
    guarded = GuardedProvider(inner, CircuitBreaker("alpha_vantage", misconfigured_hold_s=600, clock=clock))
    for _ in range(3):
        with pytest.raises(ProviderMisconfigured, match="API key"):
            await guarded.validate("AAPL")
    assert inner.calls == 1 and guarded.state == "open"
    assert guarded.health()["misconfigured"] == "Alpha Vantage rejected the API key"
    clock.now += 600
    with pytest.raises(ProviderMisconfigured):
        await guarded.validate("AAPL")
    assert inner.calls == 2  # one trial after the hold


async def test_unexpected_exceptions_and_hangs_count_as_failures():
    class Broken(FakeProvider):
        async def validate(self, symbol: str) -> Verdict:
            raise KeyError("https://example.invalid/?apikey=leak")

    guarded = GuardedProvider(Broken(), CircuitBreaker("fake", fail_max=2))
    with pytest.raises(ProviderUnavailable) as raised:
        await guarded.validate("AAPL")
    assert "apikey" not in str(raised.value) and raised.value.__context__ is None

    hanging = GuardedProvider(FakeProvider(hang=True), CircuitBreaker("fake", fail_max=1))
    with anyio.move_on_after(0.05):
        await hanging.validate("AAPL")
    assert hanging.state == "open"


async def test_limiter_refuses_with_retry_after():
    limit = RateLimit("yahoo", "2/second;5/minute")
    guarded = GuardedProvider(FakeProvider(known=KNOWN), CircuitBreaker("fake"), limit)
    await guarded.validate("AAPL")
    await guarded.validate("AAPL")
    with pytest.raises(ProviderRateLimited) as raised:
        await guarded.validate("AAPL")
    assert 0 < raised.value.retry_after_s <= 1.0
    assert guarded.state == "closed" and guarded.cooldown_s == 0  # our own budget: no provider cooldown


async def test_refused_burst_does_not_spend_the_longer_budget():
    limit = RateLimit("alpha_vantage", "1/second;2/day")
    await limit.acquire()
    for _ in range(3):
        with pytest.raises(ProviderRateLimited) as raised:
            await limit.acquire()
        assert raised.value.retry_after_s <= 1.0  # the burst window refused, not the daily one


async def test_limiter_falls_back_to_memory_when_redis_is_down():
    limit = RateLimit("yahoo", "1/second", storage_uri=f"redis://127.0.0.1:{free_port()}/0", storage_timeout_s=0.2)
    await limit.acquire()  # Redis refused: the in-process limit answers instead of an error
    assert limit.degraded
    with pytest.raises(ProviderRateLimited):
        await limit.acquire()


async def test_two_limiters_share_a_redis_budget(redis_url: str):
    # The session's Redis (tests/support/services.py: the machine's or a throwaway one, a failure under CI when
    # neither can be had); the key is unique because that database is shared by the whole session.
    key = f"alpha_vantage-{uuid.uuid4().hex[:8]}"
    first = RateLimit(key, "3/minute", storage_uri=redis_url)
    second = RateLimit(key, "3/minute", storage_uri=redis_url)  # another replica
    await first.acquire()
    await second.acquire()
    await first.acquire()
    with pytest.raises(ProviderRateLimited) as raised:
        await second.acquire()
    assert not second.degraded and 0 < raised.value.retry_after_s <= 60

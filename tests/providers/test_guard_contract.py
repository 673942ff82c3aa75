"""providers/guard.py to the letter: defaults, boundaries, the errors and log lines it produces, health, search.

tests/providers/test_guard.py covers the behaviours; this file pins what a caller reads (the error's provider and
message, the retry wait, the health report) and the documented defaults, which mutation testing showed nothing
else checked. Clocks are injected (CircuitBreaker and GuardedProvider take one; RateLimit's degraded window reads
``core.resilience.time``, replaced here by a fake).
"""

from __future__ import annotations

import logging
import socket
import uuid

import anyio
import pytest

from core import resilience
from providers.base import AssetProfile, ProviderMisconfigured, ProviderRateLimited, ProviderUnavailable, Verdict
from providers.fake import FakeProvider
from providers.guard import CircuitBreaker, GuardedProvider, RateLimit

pytestmark = pytest.mark.anyio

KNOWN = {"AAPL": AssetProfile(symbol="AAPL", name="Apple"), "APLE": AssetProfile(symbol="APLE", name="Apple Hosp")}


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeTime:
    """Replaces the ``time`` module in core.resilience: monotonic() is ours; time() stays real (limits uses it)."""

    def __init__(self) -> None:
        import time as real

        self._real = real
        self.now = 5000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self._real.time()


def dead_redis_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{s.getsockname()[1]}/0"


class Misconfigured:
    name = "alpha_vantage"

    def __init__(self) -> None:
        self.calls = 0
        self.broken = True

    async def validate(self, symbol: str) -> Verdict:
        self.calls += 1
        if self.broken:
            raise ProviderMisconfigured(self.name, "Alpha Vantage rejected the API key")
        return Verdict(symbol=symbol, status="valid", source="alpha_vantage")

    async def search(self, query: str, limit: int = 10) -> list[AssetProfile]:
        return []

    async def aclose(self) -> None:
        return None


# --- CircuitBreaker -----------------------------------------------------------------------------------------------
def test_the_breaker_defaults_five_failures_thirty_seconds_ten_minutes():
    clock = Clock()
    breaker = CircuitBreaker("yahoo", clock=clock)
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state == "closed" and breaker.consecutive_failures == 4
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 29.999
    assert breaker.state == "open"
    clock.now = 1000.0 + 30.0
    assert breaker.state == "half_open"

    held = CircuitBreaker("alpha_vantage", clock=clock)
    held.trip(ProviderMisconfigured("alpha_vantage", "bad key"))
    opened = clock.now
    clock.now = opened + 599.999
    assert held.state == "open"
    clock.now = opened + 600.0
    assert held.state == "half_open"


@pytest.mark.parametrize("fail_max", [0, -1])
def test_fail_max_must_be_at_least_one(fail_max):
    with pytest.raises(ValueError) as raised:
        CircuitBreaker("x", fail_max=fail_max)
    assert str(raised.value) == "fail_max must be at least 1"
    assert CircuitBreaker("x", fail_max=1).fail_max == 1


def test_an_open_breaker_names_its_provider_and_why():
    breaker = CircuitBreaker("yahoo", fail_max=1)
    breaker.record_failure()
    with pytest.raises(ProviderUnavailable) as raised:
        breaker.before_call()
    assert (raised.value.provider, raised.value.message) == (
        "yahoo",
        "circuit open after repeated failures; not calling the provider",
    )
    assert breaker.name == "yahoo"


async def test_a_misconfigured_provider_is_held_with_its_own_error_even_when_fail_max_is_one():
    clock = Clock()
    inner = Misconfigured()
    guarded = GuardedProvider(inner, CircuitBreaker("alpha_vantage", fail_max=1, clock=clock))
    for _ in range(2):
        with pytest.raises(ProviderMisconfigured) as raised:
            await guarded.validate("AAPL")
        assert (raised.value.provider, raised.value.message) == ("alpha_vantage", "Alpha Vantage rejected the API key")
    assert inner.calls == 1
    clock.now += 30  # a plain failure would be retried now; a misconfiguration is held for ten minutes
    with pytest.raises(ProviderMisconfigured):
        await guarded.validate("AAPL")
    assert inner.calls == 1


async def test_after_recovery_nothing_is_reported_misconfigured():
    clock = Clock()
    inner = Misconfigured()
    guarded = GuardedProvider(inner, CircuitBreaker("alpha_vantage", misconfigured_hold_s=60, clock=clock))
    with pytest.raises(ProviderMisconfigured):
        await guarded.validate("AAPL")
    assert guarded.health()["misconfigured"] == "Alpha Vantage rejected the API key"
    clock.now += 60
    inner.broken = False  # the key was fixed
    assert (await guarded.validate("AAPL")).status == "valid"
    assert guarded.state == "closed"
    assert guarded.health()["misconfigured"] is None and guarded.breaker.misconfigured is None


# --- RateLimit ----------------------------------------------------------------------------------------------------
def test_rate_limit_uris_get_the_async_prefix_once():
    assert RateLimit("k", "1/second").storage_uri == "async+memory://"
    assert RateLimit("k", "1/second", storage_uri="async+memory://").storage_uri == "async+memory://"
    assert RateLimit("k", "1/second", storage_uri="redis://h:1/0").storage_uri == "async+redis://h:1/0"
    assert RateLimit("k", "1/second", storage_uri="async+redis://h:1/0").storage_uri == "async+redis://h:1/0"


def test_rate_limit_windows_are_ordered_by_length():
    limit = RateLimit("k", "5/120 seconds;2/minute;1/second")
    assert [str(i) for i in limit.items] == ["1 per 1 second", "2 per 1 minute", "5 per 120 second"]


async def test_the_default_memory_limit_is_never_degraded(caplog):
    limit = RateLimit("yahoo", "2/minute")
    with caplog.at_level(logging.WARNING, logger="core.resilience"):
        await limit.acquire()
        await limit.acquire()
        with pytest.raises(ProviderRateLimited) as raised:
            await limit.acquire()
    assert not limit.degraded and caplog.records == []
    assert raised.value.provider == "yahoo" and raised.value.message == "local rate limit 2 per 1 minute reached"
    assert isinstance(raised.value.retry_after_s, float)


async def test_the_wait_is_until_the_refusing_window_frees_a_unit():
    limit = RateLimit("yahoo", "2/10 seconds")
    await limit.acquire()
    await anyio.sleep(0.5)
    await limit.acquire()
    with pytest.raises(ProviderRateLimited) as raised:
        await limit.acquire()
    # The first unit is at least 0.5 s old: it frees in at most 9.5 s, not in a fresh 10 s.
    assert 0 < raised.value.retry_after_s <= 9.55


async def test_a_wait_under_a_second_is_reported_as_such():
    limit = RateLimit("yahoo", "1/second")
    await limit.acquire()
    await anyio.sleep(0.3)
    with pytest.raises(ProviderRateLimited) as raised:
        await limit.acquire()
    assert 0 < raised.value.retry_after_s < 0.95


async def test_storage_failure_is_logged_by_type_once_and_memory_used_for_fallback_s(monkeypatch, caplog):
    fake = FakeTime()
    monkeypatch.setattr(resilience, "time", fake)
    limit = RateLimit("yahoo", "100/second", storage_uri=dead_redis_url(), storage_timeout_s=0.2)
    with caplog.at_level(logging.WARNING, logger="core.resilience"):
        await limit.acquire()
        assert limit.degraded
        fake.now += 29.999
        await limit.acquire()  # still degraded: memory only, Redis not tried again
        assert [r.getMessage() for r in caplog.records] == [
            "rate limit yahoo: storage failed (StorageError); using in-process limits"
        ]
        fake.now = 5000.0 + 30.0
        assert not limit.degraded  # fallback_s (30 s) is over: Redis is tried again
        await limit.acquire()
    assert len(caplog.records) == 2


async def test_two_limits_on_one_redis_keep_their_keys_apart(redis_url):
    tag = uuid.uuid4().hex[:8]
    yahoo = RateLimit(f"yahoo-{tag}", "1/minute", storage_uri=redis_url)
    alpha = RateLimit(f"alpha_vantage-{tag}", "1/minute", storage_uri=redis_url)
    await yahoo.acquire()
    with pytest.raises(ProviderRateLimited) as raised:
        await yahoo.acquire()
    assert raised.value.provider == f"yahoo-{tag}"
    await alpha.acquire()  # yahoo's spent budget is not alpha_vantage's
    assert not yahoo.degraded and not alpha.degraded


# --- GuardedProvider ----------------------------------------------------------------------------------------------
async def test_health_reports_every_field():
    clock = Clock()
    fake = FakeProvider(name="yahoo", known=KNOWN, rate_limit_every=1, retry_after_s=12.34)
    guarded = GuardedProvider(fake, CircuitBreaker("yahoo", clock=clock), clock=clock)
    assert guarded.name == "yahoo"
    assert guarded.health() == {
        "provider": "yahoo",
        "state": "closed",
        "consecutive_failures": 0,
        "misconfigured": None,
        "cooldown_s": 0.0,
        "rate_limit_degraded": False,
    }
    with pytest.raises(ProviderRateLimited):
        await guarded.validate("AAPL")
    assert guarded.health()["cooldown_s"] == 12.3


async def test_health_shows_a_degraded_rate_limit():
    limit = RateLimit("yahoo", "100/second", storage_uri=dead_redis_url(), storage_timeout_s=0.2)
    guarded = GuardedProvider(FakeProvider(name="yahoo", known=KNOWN), CircuitBreaker("yahoo"), limit)
    await guarded.validate("AAPL")
    assert guarded.health()["rate_limit_degraded"] is True


async def test_during_the_providers_cooldown_calls_are_refused_locally_to_the_last_moment():
    clock = Clock()
    fake = FakeProvider(name="yahoo", known=KNOWN, rate_limit_every=1, retry_after_s=30)
    guarded = GuardedProvider(fake, CircuitBreaker("yahoo", clock=clock), clock=clock)
    with pytest.raises(ProviderRateLimited):
        await guarded.validate("AAPL")
    clock.now += 0.8765433
    with pytest.raises(ProviderRateLimited) as raised:
        await guarded.validate("AAPL")
    assert (raised.value.provider, raised.value.message) == ("yahoo", "provider asked us to wait")
    assert raised.value.retry_after_s == 29.123 and isinstance(raised.value.retry_after_s, float)
    clock.now = 1000.0 + 29.5  # half a second left: still refused locally
    with pytest.raises(ProviderRateLimited):
        await guarded.validate("AAPL")
    assert fake.calls == 1


async def test_an_exception_outside_the_contract_is_named_by_type_only(caplog):
    class Broken(FakeProvider):
        async def validate(self, symbol: str) -> Verdict:
            raise KeyError("https://example.invalid/?apikey=leak")

    guarded = GuardedProvider(Broken(name="yahoo"), CircuitBreaker("yahoo"))
    with caplog.at_level(logging.WARNING, logger="providers.guard"):
        with pytest.raises(ProviderUnavailable) as raised:
            await guarded.validate("AAPL")
    assert (raised.value.provider, raised.value.message) == ("yahoo", "unexpected KeyError")
    assert [r.getMessage() for r in caplog.records] == ["provider yahoo raised KeyError outside its contract"]
    assert guarded.breaker.consecutive_failures == 1


async def test_search_is_guarded_and_passes_query_and_limit():
    seen: list[tuple[str, int]] = []

    class Searching(FakeProvider):
        async def search(self, query: str, limit: int = 10) -> list[AssetProfile]:
            seen.append((query, limit))
            return await super().search(query, limit)

    guarded = GuardedProvider(Searching(name="yahoo", known=KNOWN), CircuitBreaker("yahoo", fail_max=1))
    assert [p.symbol for p in await guarded.search("A", limit=1)] == ["AAPL"]
    assert [p.symbol for p in await guarded.search("APL", limit=5)] == ["APLE"]
    await guarded.search("B")
    assert seen == [("A", 1), ("APL", 5), ("B", 10)]  # the Protocol's default limit is passed on
    guarded.breaker.record_failure()
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await guarded.search("A")
    assert len(seen) == 3


async def test_aclose_closes_the_inner_provider():
    fake = FakeProvider(known=KNOWN)
    await GuardedProvider(fake, CircuitBreaker("fake")).aclose()
    assert fake.closed

"""core/resilience.py on its own: the circuit breaker's transitions at their exact thresholds (a controllable clock),
the in-process moving windows, and the fallback limiter's shared storage (a real Redis), its fallback when that
storage fails, and what it reports as remaining."""

from __future__ import annotations

import logging
import secrets

import pytest
from limits import parse

from core import resilience
from core.resilience import CircuitBreaker, FallbackLimiter, LocalWindows

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    # what core.resilience reads through its ``time`` module
    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(resilience, "time", fake)
    return fake


# --- the circuit breaker ------------------------------------------------------------------------------------------
def test_the_breaker_refuses_nonsense_settings():
    with pytest.raises(ValueError, match="^fail_max must be at least 1$"):
        CircuitBreaker(fail_max=0)
    with pytest.raises(ValueError, match="^reset_timeout_s must be positive$"):
        CircuitBreaker(reset_timeout_s=0)
    breaker = CircuitBreaker(fail_max=1, reset_timeout_s=0.001)  # the smallest allowed values work
    assert breaker.state == "closed" and breaker.failures == 0 and breaker.probing is False


def test_it_opens_on_exactly_fail_max_consecutive_failures_and_a_success_forgets_them(clock, caplog):
    caplog.set_level(logging.INFO, logger="core.resilience")
    breaker = CircuitBreaker("dep", fail_max=3, reset_timeout_s=5.0, clock=clock)
    assert breaker.failure() is False and breaker.failure() is False
    assert breaker.failures == 2 and breaker.state == "closed" and breaker.acquire() == "call"
    breaker.success()  # consecutive failures only
    assert breaker.failures == 0
    assert [breaker.failure() for _ in range(3)] == [False, False, True]
    assert breaker.state == "open" and breaker.acquire() is None
    assert breaker.failure() is True  # still open: re-opened, logged once
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["circuit dep opened after 3 consecutive failures; retrying in 5.0 s"]


def test_after_the_reset_timeout_exactly_one_caller_probes(clock, caplog):
    caplog.set_level(logging.INFO, logger="core.resilience")
    breaker = CircuitBreaker("dep", fail_max=1, reset_timeout_s=5.0, clock=clock)
    breaker.failure()
    clock.now += 4.999
    assert breaker.state == "open" and breaker.acquire() is None
    clock.now += 0.001  # exactly the timeout
    assert breaker.state == "half_open"
    assert breaker.acquire() == "probe"
    assert breaker.probing and breaker.state == "half_open"
    assert breaker.acquire() is None  # one probe at a time
    breaker.success("probe")
    assert breaker.state == "closed" and breaker.failures == 0 and breaker.probing is False
    assert breaker.acquire() == "call"
    assert "circuit dep closed: the dependency answers again" in [r.getMessage() for r in caplog.records]


def test_a_failed_probe_opens_it_for_another_timeout_and_a_released_probe_lets_another_caller_probe(clock):
    breaker = CircuitBreaker(fail_max=5, reset_timeout_s=5.0, clock=clock)
    for _ in range(5):
        breaker.failure()
    clock.now += 5
    assert breaker.acquire() == "probe"
    assert breaker.failure("probe") is True  # one failed probe is enough, whatever fail_max
    assert breaker.state == "open" and breaker.probing is False
    clock.now += 4.9
    assert breaker.acquire() is None
    clock.now += 0.1
    assert breaker.acquire() == "probe"
    breaker.release("call")  # a call's release changes nothing
    assert breaker.probing
    breaker.release("probe")
    assert breaker.probing is False and breaker.acquire() == "probe"


def test_hold_opens_it_for_the_chosen_time_whatever_the_state(clock):
    breaker = CircuitBreaker(fail_max=3, reset_timeout_s=5.0, clock=clock)
    breaker.hold(60)
    assert breaker.state == "open" and breaker.acquire() is None
    clock.now += 59.9
    assert breaker.acquire() is None
    clock.now += 0.1
    assert breaker.acquire() == "probe"
    assert breaker.failure("probe") is True
    clock.now += 5  # a failed probe re-opens for the reset timeout, not the held time
    assert breaker.acquire() == "probe"


# --- the in-process windows ---------------------------------------------------------------------------------------
def test_local_windows_allow_n_per_window_and_say_how_long_to_wait(clock):
    windows = LocalWindows()
    item = parse("3/10seconds")
    assert windows.remaining(item, "a") == 3
    assert [windows.hit(item, "a") for _ in range(3)] == [None, None, None]
    assert windows.remaining(item, "a") == 0 and windows.remaining(item, "b") == 3
    clock.now += 4
    assert windows.hit(item, "a") == pytest.approx(6.0)  # the oldest hit leaves the window in 6 s
    assert windows.hit(item, "b") is None  # identifiers have budgets of their own
    clock.now += 6  # the first three hits are exactly one window old: still inside it
    assert windows.remaining(item, "a") == 0
    clock.now += 0.001
    assert windows.remaining(item, "a") == 3
    assert windows.hit(item, "a") is None and windows.remaining(item, "a") == 2


def test_local_windows_sweep_idle_keys_every_n_hits(clock):
    windows = LocalWindows(sweep_every=3)
    item = parse("5/second")
    windows.hit(item, "old")
    clock.now += 2  # "old" is idle for longer than its window
    windows.hit(item, "x")
    assert (id(item), "old") in windows._hits
    windows.hit(item, "y")  # the third hit sweeps
    assert (id(item), "old") not in windows._hits
    assert {(id(item), "x"), (id(item), "y")} <= set(windows._hits)


# --- the fallback limiter -----------------------------------------------------------------------------------------
async def test_in_memory_the_first_refusing_item_is_answered_and_the_longer_windows_are_not_spent(clock):
    limiter = FallbackLimiter("test")
    burst, daily = parse("2/second"), parse("3/day")
    assert not limiter.degraded
    assert await limiter.hit([burst, daily], "o") is None
    assert await limiter.hit([burst, daily], "o") is None
    refused = await limiter.hit([burst, daily], "o")
    assert refused is not None and refused[0] is burst and refused[1] == pytest.approx(1.0)
    assert await limiter.remaining([burst, daily], "o") == {str(burst): 0, str(daily): 1}


async def test_the_shared_storage_is_one_budget_for_every_limiter(redis_url):
    key = secrets.token_hex(4)
    item = parse("2/minute")
    a, b = FallbackLimiter("a", redis_url), FallbackLimiter("b", redis_url)
    assert await a.hit([item], key) is None
    assert await b.remaining([item], key) == {str(item): 1}
    assert await b.hit([item], key) is None
    refused = await a.hit([item], key)
    assert refused is not None and refused[0] is item and 0 < refused[1] <= 60
    assert await a.remaining([item], key) == {str(item): 0}
    assert not a.degraded and not b.degraded


async def test_a_failing_storage_falls_back_to_memory_for_fallback_s_then_is_tried_again(clock, caplog):
    # Nothing listens on port 1: every call to the shared storage fails at once.
    limiter = FallbackLimiter("owners", "redis://127.0.0.1:1/0", timeout_s=0.2, fallback_s=30)
    item = parse("1/minute")
    assert await limiter.remaining([item], "o") == {}  # metrics go without; nothing is logged or degraded
    assert not limiter.degraded
    assert await limiter.hit([item], "o") is None  # answered from memory
    assert limiter.degraded
    refused = await limiter.hit([item], "o")
    assert refused is not None and refused[0] is item
    assert await limiter.remaining([item], "o") == {str(item): 0}  # the in-process window while degraded
    warnings = [r for r in caplog.records if r.name == "core.resilience" and r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per fallback period, by the error's type only
    assert warnings[0].getMessage().startswith("rate limit owners: storage failed (")
    assert "127.0.0.1:1" not in warnings[0].getMessage()
    clock.now += 29.9
    assert limiter.degraded
    clock.now += 0.1
    assert not limiter.degraded
    await limiter.hit([item], "o")  # tried again, failed again: logged again
    assert len([r for r in caplog.records if r.name == "core.resilience" and r.levelno == logging.WARNING]) == 2

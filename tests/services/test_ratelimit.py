"""Per-owner rate limits (services/ratelimit.py): one budget per owner and tool class, in memory and shared in Redis.

The in-memory windows run on a controllable clock (``core.resilience.time`` replaced by a fake), so window
expiry is tested without sleeping. The Redis tests use the session's Redis database and two limiters on it: two
replicas of the server.
"""

from __future__ import annotations

import logging
import socket
import uuid

import pytest

from core import resilience
from core.resilience import LocalWindows as _LocalWindows
from services.errors import RateLimited
from services.ratelimit import OwnerRateLimiter

pytestmark = pytest.mark.anyio


class FakeTime:
    """Stands in for the ``time`` module inside core.resilience: monotonic() and time() move only on demand."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(resilience, "time", fake)
    return fake


def owner() -> str:
    return str(uuid.uuid4())  # unique per test: the Redis database is shared by the whole session


async def spend(limiter: OwnerRateLimiter, who: str, tool_class: str, times: int) -> None:
    for _ in range(times):
        await limiter.hit(who, tool_class)


# --- one budget per owner -----------------------------------------------------------------------------------------
async def test_one_owner_exhausted_leaves_another_untouched(clock):
    limiter = OwnerRateLimiter({"read": "3/minute"})
    alice, bob = owner(), owner()
    await spend(limiter, alice, "read", 3)
    with pytest.raises(RateLimited):
        await limiter.hit(alice, "read")
    await spend(limiter, bob, "read", 3)  # bob's budget is his own: all three pass
    with pytest.raises(RateLimited):
        await limiter.hit(bob, "read")
    with pytest.raises(RateLimited):
        await limiter.hit(alice, "read")  # refusing bob spent nothing of alice's either


async def test_classes_have_separate_budgets(clock):
    limiter = OwnerRateLimiter({"read": "2/minute", "write": "1/minute", "validate": ""})
    alice = owner()
    await spend(limiter, alice, "read", 2)
    await limiter.hit(alice, "write")  # reads spent nothing of the write budget
    with pytest.raises(RateLimited) as raised:
        await limiter.hit(alice, "write")
    assert raised.value.details["tool_class"] == "write"
    await spend(limiter, alice, "validate", 50)  # an empty spec means no limit
    await spend(limiter, alice, "unknown-class", 50)


async def test_the_refusal_says_which_limit_and_how_long_to_wait(clock):
    limiter = OwnerRateLimiter({"read": "2/minute"})
    alice = owner()
    await limiter.hit(alice, "read")
    clock.advance(20)
    await limiter.hit(alice, "read")
    clock.advance(10)
    with pytest.raises(RateLimited) as raised:
        await limiter.hit(alice, "read")
    error = raised.value
    # The oldest call (30 s ago) leaves the 60 s window in 30 s.
    assert error.retry_after_s == pytest.approx(30.0)
    assert error.code == "rate_limited"
    assert error.details == {"limit": "2 per 1 minute", "tool_class": "read", "retry_after_s": 30.0}
    assert error.message == "Too many read calls: the limit is 2 per 1 minute."
    assert error.hint == "Wait 30.0 s before the next read call, or batch work into fewer calls."


async def test_the_window_moves(clock):
    limiter = OwnerRateLimiter({"read": "2/minute"})
    alice = owner()
    await limiter.hit(alice, "read")
    clock.advance(30)
    await limiter.hit(alice, "read")
    clock.advance(29.9)
    with pytest.raises(RateLimited):
        await limiter.hit(alice, "read")  # both calls are still inside the last 60 s
    clock.advance(0.2)  # the first call (60.1 s ago) has left the window: one call is free again
    await limiter.hit(alice, "read")
    with pytest.raises(RateLimited) as raised:
        await limiter.hit(alice, "read")
    assert raised.value.retry_after_s == pytest.approx(29.9)


def test_limits_are_checked_shortest_window_first_whatever_their_amounts():
    limiter = OwnerRateLimiter({"read": "3/minute;5/second", "write": "1/hour;100/day;10/minute"})
    assert [str(i) for i in limiter.items["read"]] == ["5 per 1 second", "3 per 1 minute"]
    assert [str(i) for i in limiter.items["write"]] == ["10 per 1 minute", "1 per 1 hour", "100 per 1 day"]
    # By window length, not by unit: 120 seconds is longer than 1 minute.
    odd = OwnerRateLimiter({"read": "5/120 seconds;2/minute"})
    assert [str(i) for i in odd.items["read"]] == ["2 per 1 minute", "5 per 120 second"]


async def test_a_memory_only_limiter_never_reports_a_storage_failure(clock, caplog):
    limiter = OwnerRateLimiter({"read": "2/minute"})
    with caplog.at_level(logging.WARNING, logger="core.resilience"):
        await spend(limiter, owner(), "read", 2)
    assert caplog.records == [] and limiter.limiter.fallback_until == 0.0


async def test_several_limits_the_shortest_window_refuses_first_without_spending_the_longer(clock):
    limiter = OwnerRateLimiter({"read": "5/minute;2/second"})
    alice = owner()
    assert [str(i) for i in limiter.items["read"]] == ["2 per 1 second", "5 per 1 minute"]
    await spend(limiter, alice, "read", 2)
    with pytest.raises(RateLimited) as burst:
        await limiter.hit(alice, "read")
    assert burst.value.details["limit"] == "2 per 1 second"
    clock.advance(1.5)
    await spend(limiter, alice, "read", 2)
    clock.advance(1.5)
    await limiter.hit(alice, "read")  # the refused burst call did not count against the minute: 5th call passes
    clock.advance(1.5)
    with pytest.raises(RateLimited) as minute:
        await limiter.hit(alice, "read")
    assert minute.value.details["limit"] == "5 per 1 minute"


async def test_a_refusal_never_asks_for_less_than_50_ms(clock):
    limiter = OwnerRateLimiter({"read": "1/second"})
    alice = owner()
    await limiter.hit(alice, "read")
    clock.advance(0.999)
    with pytest.raises(RateLimited) as raised:
        await limiter.hit(alice, "read")
    assert raised.value.retry_after_s == 0.05


def test_idle_keys_are_swept_busy_ones_kept(clock):
    from limits import parse

    windows = _LocalWindows(sweep_every=3)
    item = parse("5/second")
    assert windows.hit(item, "idle", "read") is None
    clock.advance(2)  # "idle" is now older than its window
    assert windows.hit(item, "busy", "read") is None
    assert set(windows._hits) == {(id(item), "idle", "read"), (id(item), "busy", "read")}
    assert windows.hit(item, "busy", "read") is None  # the third hit sweeps
    assert set(windows._hits) == {(id(item), "busy", "read")}
    assert windows._since_sweep == 0


def test_a_call_exactly_one_window_old_still_counts_and_is_not_swept(clock):
    from limits import parse

    windows = _LocalWindows(sweep_every=2)
    item = parse("1/second")
    assert windows.hit(item, "a", "read") is None
    clock.advance(1.0)  # the call is now exactly one window old: still inside it
    assert windows.hit(item, "b", "read") is None  # second hit: sweeps, but must keep "a"
    assert (id(item), "a", "read") in windows._hits
    assert windows.hit(item, "a", "read") == pytest.approx(0.0)  # refused, for no time at all
    clock.advance(0.001)
    assert windows.hit(item, "a", "read") is None


def test_local_windows_count_exactly_the_amount(clock):
    from limits import parse

    windows = _LocalWindows()
    item = parse("3/minute")
    assert [windows.hit(item, "a", "read") for _ in range(3)] == [None, None, None]
    assert windows.hit(item, "a", "read") == pytest.approx(60.0)
    assert windows.hit(item, "b", "read") is None
    assert windows.hit(item, "a", "write") is None


# --- shared through Redis: two replicas ---------------------------------------------------------------------------
async def test_two_replicas_share_each_owners_budget_and_keep_owners_apart(redis_url):
    replica_a = OwnerRateLimiter({"read": "4/minute"}, redis_url=redis_url)
    replica_b = OwnerRateLimiter({"read": "4/minute"}, redis_url=redis_url)
    alice, bob = owner(), owner()
    await spend(replica_a, alice, "read", 2)
    await spend(replica_b, alice, "read", 2)
    for replica in (replica_a, replica_b):
        with pytest.raises(RateLimited) as raised:
            await replica.hit(alice, "read")
        assert 0 < raised.value.retry_after_s <= 60
    # Bob, on the replica that just refused alice, has his whole budget.
    await spend(replica_b, bob, "read", 3)
    await replica_a.hit(bob, "read")
    with pytest.raises(RateLimited):
        await replica_b.hit(bob, "read")
    assert replica_a.limiter.fallback_until == replica_b.limiter.fallback_until == 0.0  # Redis answered every time


async def test_in_redis_each_class_has_its_own_budget(redis_url):
    limiter = OwnerRateLimiter({"read": "2/minute", "write": "2/minute"}, redis_url=redis_url)
    alice = owner()
    await spend(limiter, alice, "read", 2)
    await spend(limiter, alice, "write", 2)  # the reads spent nothing of the write budget
    with pytest.raises(RateLimited) as raised:
        await limiter.hit(alice, "write")
    assert raised.value.details["tool_class"] == "write"
    assert raised.value.details["limit"] == "2 per 1 minute"


async def test_in_redis_the_wait_is_until_the_oldest_call_leaves_the_window(redis_url):
    import anyio

    limiter = OwnerRateLimiter({"read": "2/10 seconds"}, redis_url=redis_url)
    alice = owner()
    await limiter.hit(alice, "read")
    await anyio.sleep(1.0)
    await limiter.hit(alice, "read")
    with pytest.raises(RateLimited) as raised:
        await limiter.hit(alice, "read")
    # The first call is at least 1 s old, so it leaves the 10 s window in at most 9 s (not a fresh 10 s).
    assert 0.05 <= raised.value.retry_after_s <= 9.05


class FailingStorage:
    """Stands in for the Redis-backed limiter: counts the calls that reach it and fails each one."""

    def __init__(self) -> None:
        self.calls = 0

    async def hit(self, *args):
        self.calls += 1
        raise ConnectionError("redis is down")


async def test_after_a_storage_failure_memory_is_used_for_fallback_s_then_redis_is_tried_again(clock, caplog):
    limiter = OwnerRateLimiter({"read": "100/minute"}, redis_url="redis://127.0.0.1:1/0")
    storage = FailingStorage()
    limiter.limiter.shared = storage
    assert limiter.limiter.fallback_s == 30.0  # the documented default
    failed_at = clock.now
    with caplog.at_level(logging.WARNING, logger="core.resilience"):
        await limiter.hit(owner(), "read")
    assert storage.calls == 1
    assert [r.getMessage() for r in caplog.records] == [
        "rate limit per-owner: storage failed (ConnectionError); using in-process limits"
    ]
    clock.now = failed_at + 29.999
    await limiter.hit(owner(), "read")
    assert storage.calls == 1  # still within fallback_s: Redis is not asked
    clock.now = failed_at + 30.0  # exactly fallback_s later: Redis is asked again
    await limiter.hit(owner(), "read")
    assert storage.calls == 2


@pytest.fixture
def hung_redis():
    """A TCP server that accepts connections and never answers: a Redis that hangs."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


async def test_a_hung_redis_is_given_up_on_and_the_call_answered_from_memory(hung_redis, caplog):
    import anyio

    limiter = OwnerRateLimiter({"read": "1/minute"}, redis_url=hung_redis)
    alice = owner()
    with anyio.fail_after(20):  # the limiter's own socket timeouts must end the wait long before this
        await limiter.hit(alice, "read")
    assert limiter.limiter.fallback_until > 0
    with pytest.raises(RateLimited):
        await limiter.hit(alice, "read")


async def test_redis_down_falls_back_to_per_process_limits_per_owner(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"  # nothing listens once the socket closes
    limiter = OwnerRateLimiter({"read": "2/minute"}, redis_url=dead, fallback_s=30)
    alice, bob = owner(), owner()
    with caplog.at_level(logging.WARNING, logger="core.resilience"):
        await limiter.hit(alice, "read")  # Redis refused: answered from memory, not an error
    assert [r.getMessage() for r in caplog.records] == [
        "rate limit per-owner: storage failed (StorageError); using in-process limits"  # the type only: never the URL
    ]
    assert limiter.limiter.fallback_until > 0
    await limiter.hit(alice, "read")
    with pytest.raises(RateLimited):
        await limiter.hit(alice, "read")
    await spend(limiter, bob, "read", 2)  # per owner in the fallback too

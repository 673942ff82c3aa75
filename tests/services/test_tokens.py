"""Bearer tokens in process: issue, verify, revoke, and the forgeries a token check must refuse.

The store is a real migrated SQLite database (the server's own AppState); the verifier is the one `serve` builds
for ``auth=token``. Over HTTP the same paths are covered by tests/tenancy; these run in the test process so that
mutation testing (scripts/mutate.py) can see which test exercised which line.
"""

from __future__ import annotations

import hashlib
import hmac
import string
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.settings import Settings
from core.wiring import AppState
from server.auth import StoreTokenVerifier, build_verifier
from server.lifespan import open_app_state
from services import tokens as token_service
from services.errors import InvalidArgument, NotFound
from services.schemas import ALL_SCOPES
from services.tokens import (
    hash_token,
    issue_token,
    list_tokens,
    parse_duration,
    parse_scopes,
    revoke_token,
    verify_token,
)
from storage.db import utcnow
from storage.models import ApiToken

pytestmark = pytest.mark.anyio

ALPHABET = string.ascii_letters + string.digits + "-_"  # token_urlsafe's alphabet


@pytest.fixture
async def state(make_settings: Callable[..., Settings]) -> AsyncIterator[AppState]:
    async with open_app_state(make_settings(auth="token", token_cache_s=60)) as app_state:
        yield app_state


async def issue(state: AppState, user: str = "alice", scopes: list[str] | None = None, **kwargs) -> str:
    async with state.unit_of_work() as session:
        return (await issue_token(session, user, scopes, **kwargs)).token


async def verify(state: AppState, raw: str):
    async with state.unit_of_work() as session:
        return await verify_token(session, raw)


def one_character_variants(token: str) -> list[str]:
    """The token with each character after the ``umcp_`` marker replaced by another one of the alphabet."""
    variants = []
    for i in range(len(token_service.PREFIX), len(token)):
        other = ALPHABET[(ALPHABET.index(token[i]) + 1) % len(ALPHABET)]
        variants.append(token[:i] + other + token[i + 1 :])
    return variants


# --- issue and verify ---------------------------------------------------------------------------------------------
async def test_issued_token_verifies_to_its_owner_and_scopes_and_only_its_hash_is_stored(state):
    async with state.unit_of_work() as session:
        issued = await issue_token(session, "alice", ["validate", "read", "read"], timedelta(hours=2))
    assert issued.token.startswith("umcp_") and len(issued.token) == 5 + 43  # 32 random bytes, urlsafe base64
    assert issued.scopes == ["read", "validate"] and issued.user == "alice"
    assert timedelta(hours=2) - timedelta(minutes=1) < issued.expires_at - utcnow() <= timedelta(hours=2)

    info = await verify(state, issued.token)
    assert info is not None
    assert (info.id, info.user, info.scopes, info.prefix) == (
        issued.id,
        "alice",
        frozenset({"read", "validate"}),
        issued.token[:12],
    )
    assert info.expires_at == issued.expires_at

    async with state.unit_of_work() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.id == issued.id))
    assert row.token_hash == hashlib.sha256(issued.token.encode()).hexdigest() == hash_token(issued.token)
    assert issued.token not in (row.token_hash, row.prefix, row.scopes)


async def test_two_issued_tokens_differ_and_each_names_its_own_user(state):
    first, second = await issue(state, "alice"), await issue(state, "bob")
    assert first != second and first[:12] != second[:12]
    assert (await verify(state, first)).user == "alice"
    assert (await verify(state, second)).user == "bob"
    assert (await verify(state, first)).user_id != (await verify(state, second)).user_id


async def test_a_token_with_no_expiry_keeps_working(state):
    token = await issue(state)
    info = await verify(state, token)
    assert info is not None and info.expires_at is None


# --- forgeries ----------------------------------------------------------------------------------------------------
async def test_a_real_prefix_with_a_wrong_secret_is_refused(state):
    token = await issue(state)
    prefix = token[:12]  # what `token list` prints, so anyone who saw the list has it
    forged_same_length = prefix + "A" * (len(token) - 12)
    assert await verify(state, prefix) is None
    assert await verify(state, forged_same_length) is None
    assert await verify(state, prefix + token[12:][::-1]) is None
    # Another user's real secret behind this user's prefix is no better.
    other = await issue(state, "mallory")
    assert await verify(state, prefix + other[12:]) is None


async def test_every_token_differing_in_one_character_is_refused(state):
    token = await issue(state)
    variants = one_character_variants(token)
    assert len(variants) == 43
    for variant in variants:
        assert await verify(state, variant) is None, f"accepted {variant!r} (real token differs at one character)"
    assert await verify(state, token) is not None  # the real one still works
    assert await verify(state, token + "x") is None and await verify(state, token[:-1]) is None


async def test_tokens_without_the_marker_or_oversized_are_refused_without_a_lookup(state, monkeypatch):
    token = await issue(state)
    looked_up: list[str] = []

    async def spy(session, digest):
        looked_up.append(digest)
        return None

    monkeypatch.setattr(token_service.repo, "find_by_hash", spy)
    assert await verify(state, token[5:]) is None  # the secret without "umcp_"
    assert await verify(state, "UMCP_" + token[5:]) is None
    assert await verify(state, "umcp_" + "a" * 196) is None  # 201 characters
    assert looked_up == []
    assert await verify(state, "umcp_" + "a" * 195) is None  # 200 characters: looked up (and unknown)
    assert looked_up == [hash_token("umcp_" + "a" * 195)]


async def test_the_stored_hash_is_compared_in_constant_time(state, monkeypatch):
    """The lookup is by SHA-256 of the whole token, and the hash found is checked again with hmac.compare_digest:
    a lookup that matched too loosely (by prefix, a case-insensitive collation) cannot let a forgery in."""
    real = await issue(state)
    forged = real[:12] + "B" * (len(real) - 12)
    compared: list[tuple[str, str]] = []
    original_compare = hmac.compare_digest

    def spy_compare(a, b):
        compared.append((a, b))
        return original_compare(a, b)

    monkeypatch.setattr(token_service.hmac, "compare_digest", spy_compare)
    assert await verify(state, real) is not None
    assert compared == [(hash_token(real), hash_token(real))]

    # A repository that returns the row of the real token for the forgery (the prefix-lookup bug) is overruled.
    async with state.unit_of_work() as session:
        row = await token_service.repo.find_by_hash(session, hash_token(real))

    async def loose_lookup(session, digest):
        return row

    monkeypatch.setattr(token_service.repo, "find_by_hash", loose_lookup)
    assert await verify(state, forged) is None


# --- expiry and revocation ----------------------------------------------------------------------------------------
async def test_expired_and_revoked_tokens_are_refused(state):
    expiring = await issue(state, expires_in=timedelta(hours=1))
    async with state.unit_of_work() as session:
        # Exactly at the expiry time the token is already dead (expires_at <= now).
        await session.execute(
            update(ApiToken).where(ApiToken.prefix == expiring[:12]).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await verify(state, expiring) is None

    revoked = await issue(state, "bob")
    async with state.unit_of_work() as session:
        assert await revoke_token(session, revoked[:12]) == 1
    assert await verify(state, revoked) is None


async def test_a_token_is_dead_at_exactly_its_expiry_time(state, monkeypatch):
    token = await issue(state, expires_in=timedelta(hours=1))
    expires_at = (await verify(state, token)).expires_at
    monkeypatch.setattr(token_service, "utcnow", lambda: expires_at - timedelta(microseconds=1))
    assert await verify(state, token) is not None
    monkeypatch.setattr(token_service, "utcnow", lambda: expires_at)
    assert await verify(state, token) is None


async def test_a_token_expiring_later_still_works(state):
    token = await issue(state, expires_in=timedelta(seconds=30))
    assert await verify(state, token) is not None


async def test_revoke_by_id_or_prefix_touches_only_active_matching_tokens(state):
    keep = await issue(state, "alice")
    by_id = await issue(state, "alice")
    by_prefix = await issue(state, "bob")
    async with state.unit_of_work() as session:
        id_of = (await verify_token(session, by_id)).id
        assert await revoke_token(session, f"  {id_of}  ") == 1
        assert await revoke_token(session, by_prefix[:12]) == 1
        with pytest.raises(NotFound) as again:
            await revoke_token(session, by_prefix[:12])  # already revoked: no active token matches
        assert again.value.message == f"No active token matches {by_prefix[:12]!r}."
        assert again.value.hint == "`universe-mcp token list` shows ids and prefixes."
        with pytest.raises(NotFound):
            await revoke_token(session, str(uuid.uuid4()))
        with pytest.raises(NotFound):
            await revoke_token(session, "umcp_nothing")
    assert await verify(state, keep) is not None
    assert await verify(state, by_id) is None and await verify(state, by_prefix) is None


async def test_list_tokens_shows_prefixes_and_revocations_never_the_token(state):
    alice = await issue(state, "alice", ["read"], expires_in=timedelta(days=3))
    bob = await issue(state, "bob")
    verifier = StoreTokenVerifier(state.settings)
    verifier.bind(state)
    await verifier.verify_token(alice)  # records last_used_at
    async with state.unit_of_work() as session:
        await revoke_token(session, bob[:12])
        everyone = await list_tokens(session)
        only_alice = await list_tokens(session, "alice")
    assert [(t.user, t.prefix, t.scopes) for t in only_alice] == [("alice", alice[:12], frozenset({"read"}))]
    by_user = {t.user: t for t in everyone}
    assert set(by_user) == {"alice", "bob"}
    assert by_user["bob"].revoked_at is not None and by_user["alice"].revoked_at is None
    assert by_user["alice"].created_at is not None
    # Every field as verification reports it (list and verify read the same rows).
    verified = await verify(state, alice)
    listed = only_alice[0]
    assert (listed.id, listed.user_id, listed.expires_at) == (verified.id, verified.user_id, verified.expires_at)
    assert listed.expires_at is not None and listed.last_used_at is not None
    assert by_user["bob"].last_used_at is None
    assert all(alice not in repr(t) and bob not in repr(t) for t in everyone)


async def test_list_tokens_is_ordered_by_user_then_age(state):
    bob = await issue(state, "bob")
    alice_first = await issue(state, "alice")
    alice_second = await issue(state, "alice")
    async with state.unit_of_work() as session:
        # The token issued first is made the younger one, so the order cannot come from insertion order.
        await session.execute(
            update(ApiToken)
            .where(ApiToken.prefix == alice_first[:12])
            .values(created_at=utcnow() + timedelta(minutes=1))
        )
        listed = await list_tokens(session)
    assert [t.prefix for t in listed] == [alice_second[:12], alice_first[:12], bob[:12]]


# --- input checks -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("30m", timedelta(minutes=30)),
        (" 12h ", timedelta(hours=12)),
        ("90d", timedelta(days=90)),
        ("4w", timedelta(weeks=4)),
        ("0m", timedelta(0)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "12", "h", "1.5h", "-1d", "12y", "12 hours", "1d2h"])
def test_parse_duration_refuses_anything_else(text):
    with pytest.raises(InvalidArgument, match="is not a duration"):
        parse_duration(text)


def test_parse_scopes():
    assert parse_scopes(None) == sorted(ALL_SCOPES)
    assert parse_scopes([]) == sorted(ALL_SCOPES)
    assert parse_scopes(["write", "read", "write"]) == ["read", "write"]
    with pytest.raises(InvalidArgument, match=r"unknown scope\(s\) \['root'\]"):
        parse_scopes(["read", "root"])


@pytest.mark.parametrize("user", ["", "a" * 65, "al ice", "alice;drop", "ålice", "a/b"])
async def test_issue_refuses_bad_user_names_and_creates_nothing(state, user):
    async with state.unit_of_work() as session:
        with pytest.raises(InvalidArgument) as raised:
            await issue_token(session, user)
        assert raised.value.message == "user names are 1-64 letters, digits, '_', '.', '@' or '-'."
        assert await list_tokens(session) == []


async def test_issue_accepts_every_allowed_user_name_character(state):
    name = "A-z_0.9@x" + "a" * 55  # 64 characters
    assert (await verify(state, await issue(state, name))).user == name


# --- the HTTP verifier (server/auth.py) ---------------------------------------------------------------------------
async def test_verifier_maps_a_token_to_its_owner_and_refuses_near_misses_even_when_cached(state):
    verifier = build_verifier(state.settings)
    assert isinstance(verifier, StoreTokenVerifier)
    token = await issue(state, "alice", ["read", "write"], expires_in=timedelta(days=1))
    assert await verifier.verify_token(token) is None  # not bound to the store yet: nothing is accepted
    verifier.bind(state)

    access = await verifier.verify_token(token)
    info = await verify(state, token)
    assert access is not None
    assert (access.subject, access.client_id, access.scopes) == (str(info.user_id), "alice", ["read", "write"])
    assert access.expires_at == int(info.expires_at.timestamp())
    assert access.token == token

    # The verification is cached (by the hash of the whole token): near misses are not cache hits.
    for variant in [token[:12], token[:12] + "A" * 36, *one_character_variants(token)[::7]]:
        assert await verifier.verify_token(variant) is None, variant
    assert (await verifier.verify_token(token)).subject == str(info.user_id)


async def test_verifier_cache_bounds_revocation_and_refusals_are_cached_too(state, make_settings):
    token = await issue(state)
    verifier = StoreTokenVerifier(state.settings)  # token_cache_s=60
    verifier.bind(state)
    assert await verifier.verify_token(token) is not None
    async with state.unit_of_work() as session:
        await revoke_token(session, token[:12])
    # Within token_cache_s the cached answer stands (documented: the cache bounds how long revocation takes).
    assert await verifier.verify_token(token) is not None

    uncached = StoreTokenVerifier(make_settings(auth="token", token_cache_s=0))
    uncached.bind(state)
    assert await uncached.verify_token(token) is None


class MonotonicClock:
    """server/auth.py's view of time: a monotonic clock the test moves; wall time stays real."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    time = staticmethod(time.time)


async def test_verifier_records_last_use_once_a_minute(state, monkeypatch):
    clock = MonotonicClock()
    monkeypatch.setattr("server.auth.time", clock)
    token = await issue(state)
    verifier = StoreTokenVerifier(state.settings.model_copy(update={"token_cache_s": 0}))
    verifier.bind(state)
    assert (await verify(state, token)).last_used_at is None
    assert await verifier.verify_token(token) is not None
    first = (await verify(state, token)).last_used_at
    assert first is not None
    clock.now += 30
    assert await verifier.verify_token(token) is not None  # verified again (no cache), and still accepted
    assert (await verify(state, token)).last_used_at == first  # not rewritten within the minute
    clock.now += 30.5
    assert await verifier.verify_token(token) is not None
    assert (await verify(state, token)).last_used_at > first  # more than a minute later: written again


async def test_with_the_cache_off_revocation_applies_to_the_very_next_request(state, monkeypatch):
    # token_cache_s=0: no verification is reused, even by a request arriving in the same tick of the clock.
    monkeypatch.setattr("server.auth.time", MonotonicClock())
    token = await issue(state)
    verifier = StoreTokenVerifier(state.settings.model_copy(update={"token_cache_s": 0}))
    verifier.bind(state)
    assert await verifier.verify_token(token) is not None
    async with state.unit_of_work() as session:
        await revoke_token(session, token[:12])
    assert await verifier.verify_token(token) is None


async def test_a_cached_verification_lasts_token_cache_s_and_no_longer(state, monkeypatch):
    clock = MonotonicClock()
    monkeypatch.setattr("server.auth.time", clock)
    token = await issue(state)
    verifier = StoreTokenVerifier(state.settings)  # token_cache_s=60
    verifier.bind(state)
    assert await verifier.verify_token(token) is not None
    async with state.unit_of_work() as session:
        await revoke_token(session, token[:12])
    checked_at = clock.now
    clock.now = checked_at + 59.9
    assert await verifier.verify_token(token) is not None  # the documented bound: cached for token_cache_s
    clock.now = checked_at + 60
    assert await verifier.verify_token(token) is None  # token_cache_s after the check, the revocation applies


async def test_verifier_answers_none_when_the_store_fails(state, monkeypatch, caplog):
    token = await issue(state)
    verifier = StoreTokenVerifier(state.settings)
    verifier.bind(state)

    async def broken(session, raw):
        raise RuntimeError(f"database exploded while checking {raw}")

    monkeypatch.setattr("server.auth.verify_token", broken)
    assert await verifier.verify_token(token) is None
    # A failure of the store is the server's problem: a WARNING that says so and names the error type, never the
    # token or the exception's message (which here holds the token).
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "server.auth"]
    assert records == [("WARNING", "token verification failed: RuntimeError")]
    assert token not in caplog.text

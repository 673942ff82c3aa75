"""server/auth.py in process: the JWT verifier against a locally served JWKS, verifier selection, auth settings.

The token verifier (auth=token) is covered in tests/services/test_tokens.py; over HTTP both are covered by
tests/tenancy. These run in the test process so that mutation testing can see them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from core.settings import Settings
from core.wiring import AppState
from server.app import build_server
from server.auth import JwtVerifier, StoreTokenVerifier, auth_settings, build_verifier
from server.lifespan import open_app_state
from server.transports import http_app
from services.tokens import issue_token
from storage.repositories.users import get_user_by_name

pytestmark = pytest.mark.anyio

ISSUER, AUDIENCE = "https://idp.test", "universe-mcp"


@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Jwks:
    """The identity provider's key set, served over local HTTP; tests publish and withdraw keys while it runs."""

    def __init__(self) -> None:
        self.keys: list[dict] = []
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def publish(self, *keys: tuple[str, str, object]) -> None:
        """Serve exactly these (kid, alg, private key) public halves from now on."""
        self.keys = [public_jwk(kid, alg, key) for kid, alg, key in keys]


def public_jwk(kid: str, alg: str, private_key) -> dict:
    family = {"RS256": "RSA", "PS256": "RSAPSS", "ES256": "EC", "EdDSA": "OKP"}[alg]
    to_jwk = getattr(jwt.algorithms, f"{family}Algorithm").to_jwk
    return json.loads(to_jwk(private_key.public_key())) | {"kid": kid, "use": "sig", "alg": alg}


@pytest.fixture
def jwks(signing_key) -> Iterator[Jwks]:
    served = Jwks()
    served.publish(("test-key", "RS256", signing_key))
    threading.Thread(target=served.server.serve_forever, daemon=True).start()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture
def jwks_url(jwks: Jwks) -> str:
    return jwks.url


def sign(key, *, alg: str = "RS256", kid: str = "test-key", **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300} | claims
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
async def verifier(make_settings: Callable[..., Settings], jwks_url: str) -> AsyncIterator[JwtVerifier]:
    settings = make_settings(auth="jwt", jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=jwks_url)
    async with open_app_state(settings) as state:
        built = build_verifier(settings)
        assert isinstance(built, JwtVerifier)
        built.bind(state)
        yield built


async def owner_of(state: AppState, subject: str):
    async with state.unit_of_work() as session:
        return await get_user_by_name(session, subject)


async def test_a_valid_jwt_maps_to_an_owner_and_its_scopes(verifier, signing_key):
    token = sign(signing_key, scope="universe:read universe:validate something:else")
    access = await verifier.verify_token(token)
    assert access is not None
    user = await owner_of(verifier.state, "user-1")
    assert (access.subject, access.client_id, access.scopes) == (str(user.id), "user-1", ["read", "validate"])
    assert access.claims == {"iss": ISSUER} and access.token == token
    assert access.expires_at == jwt.decode(token, options={"verify_signature": False})["exp"]
    # The same subject is the same owner every time; another subject is another owner.
    again = await verifier.verify_token(sign(signing_key, scope="read"))
    other = await verifier.verify_token(sign(signing_key, sub="user-2"))
    assert again.subject == access.subject and again.scopes == ["read"]
    assert other.subject != access.subject and other.scopes == []


async def test_scopes_may_come_as_a_list_in_scp(verifier, signing_key):
    access = await verifier.verify_token(sign(signing_key, scp=["universe:write", "read", "admin:all"]))
    assert access.scopes == ["read", "write"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone-else"}, "InvalidAudienceError"),
        ({"iss": "https://evil.test"}, "InvalidIssuerError"),
        ({"exp": int(time.time()) - 60}, "ExpiredSignatureError"),
        ({"exp": None}, "MissingRequiredClaimError"),  # exp is required
        ({"sub": None}, "MissingRequiredClaimError"),  # sub is required
        ({"iss": None}, "MissingRequiredClaimError"),  # iss is required
    ],
    ids=["audience", "issuer", "expired", "no-exp", "no-sub", "no-iss"],
)
async def test_a_jwt_failing_a_check_is_refused_and_logged_as_a_rejection(
    verifier, signing_key, claims, reason, caplog
):
    token = sign(signing_key, **claims)
    with caplog.at_level(logging.INFO, logger="server.auth"):
        assert await verifier.verify_token(token) is None
    # A client's bad token is an INFO line naming the check that failed; WARNING (what operators alert on) is kept
    # for failures of the server itself, and the token never reaches the log.
    records = [r for r in caplog.records if r.name == "server.auth"]
    assert [(r.levelno, r.getMessage()) for r in records] == [(logging.INFO, f"rejected a JWT: {reason}")]
    assert token not in caplog.text


@pytest.fixture(scope="module")
def other_algorithm_keys():
    return {
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "PS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
async def test_jwts_signed_with_each_supported_algorithm_are_accepted(
    verifier, jwks, signing_key, other_algorithm_keys, alg
):
    # Identity providers sign with EC, RSA-PSS or Ed25519 keys as well as RSA; each must work when published.
    key = other_algorithm_keys[alg]
    jwks.publish(("test-key", "RS256", signing_key), (f"{alg}-key", alg, key))
    access = await verifier.verify_token(sign(key, alg=alg, kid=f"{alg}-key", sub=f"user-{alg}", scope="read"))
    assert access is not None and access.client_id == f"user-{alg}" and access.scopes == ["read"]


async def test_unsigned_and_symmetric_jwts_are_refused(verifier, jwks, signing_key):
    # "alg": "none" carries no signature at all; HS256 keyed with the provider's public key (which anyone can
    # download) is the classic algorithm-confusion forgery.
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "exp": int(time.time()) + 300}, None,
                          algorithm="none", headers={"kid": "test-key"})  # fmt: skip
    assert await verifier.verify_token(unsigned) is None
    public_pem = signing_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    assert await verifier.verify_token(hs256_forgery(public_pem)) is None


def hs256_forgery(secret: bytes) -> str:
    """An HS256 JWT keyed with ``secret``, built by hand (PyJWT refuses to use a public key as an HMAC secret)."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "test-key"}).encode())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300}
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


class Clock:
    """time.monotonic as the JWKS cache sees it: the real clock, moved forward at will."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    time = staticmethod(time.time)


async def test_a_key_the_provider_withdraws_stops_working_once_the_key_set_expires(
    make_settings, jwks, signing_key, monkeypatch
):
    clock = Clock()
    for module in ("jwt.jwk_set_cache", "jwt.api_jwk", "jwt.jwks_client"):
        monkeypatch.setattr(f"{module}.time", clock)
    settings = make_settings(
        auth="jwt", jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=jwks.url, token_cache_s=0
    )
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish(("old", "RS256", signing_key), ("new", "RS256", rotated))
    async with open_app_state(settings) as state:
        verifier = build_verifier(settings)
        verifier.bind(state)
        for n in range(3):
            assert await verifier.verify_token(sign(signing_key, kid="old", jti=str(n))) is not None
        assert jwks.fetches == 1  # the key set is read once and reused, not fetched per request

        # The provider withdraws the old key (say it leaked). Within the key set's 5-minute lifespan the cached
        # set still holds it; after that, the set is read again and tokens signed with the old key are refused.
        jwks.publish(("new", "RS256", rotated))
        clock.offset = 299.0
        assert await verifier.verify_token(sign(signing_key, kid="old", jti="a")) is not None
        clock.offset = 300.5
        assert await verifier.verify_token(sign(signing_key, kid="old", jti="b")) is None
        assert await verifier.verify_token(sign(rotated, kid="new", jti="c")) is not None


async def test_a_jwt_signed_by_another_key_or_garbage_is_refused(verifier):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await verifier.verify_token(sign(other)) is None
    assert await verifier.verify_token("not.a.jwt") is None
    assert await verifier.verify_token("") is None


async def test_a_refusal_is_cached_like_an_acceptance(verifier, signing_key, monkeypatch):
    token = sign(signing_key, aud="someone-else")
    assert await verifier.verify_token(token) is None
    calls = 0

    async def counting(raw):
        nonlocal calls
        calls += 1
        return None

    monkeypatch.setattr(verifier, "_verify", counting)
    assert await verifier.verify_token(token) is None
    assert calls == 0  # answered from the cache (token_cache_s) without verifying again


async def test_a_token_past_its_expiry_by_the_servers_clock_is_refused(verifier, signing_key, monkeypatch):
    token = sign(signing_key)
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]

    class ServerClock:  # server/auth.py's view of time; the JWT library keeps the real clock
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def time() -> float:
            return expires_at

    monkeypatch.setattr("server.auth.time", ServerClock)
    assert await verifier.verify_token(token) is None  # exp <= now: dead at exactly its expiry


def test_build_verifier_and_auth_settings_follow_the_auth_mode(make_settings):
    assert build_verifier(make_settings()) is None and auth_settings(make_settings()) is None
    assert isinstance(build_verifier(make_settings(auth="token")), StoreTokenVerifier)
    with pytest.raises(SystemExit) as missing:
        build_verifier(make_settings(auth="jwt", jwt_issuer=ISSUER))
    assert str(missing.value) == "UNIVERSE_MCP_AUTH=jwt needs UNIVERSE_MCP_JWT_AUDIENCE, UNIVERSE_MCP_JWT_JWKS_URL."

    token_mode = auth_settings(make_settings(auth="token", host="127.0.0.1", port=8123))
    assert str(token_mode.resource_server_url) == "http://127.0.0.1:8123/mcp"
    assert str(token_mode.issuer_url).rstrip("/") == "http://127.0.0.1:8123"
    assert token_mode.required_scopes is None
    public = auth_settings(make_settings(auth="token", public_url="https://mcp.example.org/mcp"))
    assert str(public.resource_server_url) == "https://mcp.example.org/mcp"
    jwt_mode = auth_settings(
        make_settings(auth="jwt", jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url="http://127.0.0.1:1/")
    )
    assert str(jwt_mode.issuer_url).rstrip("/") == ISSUER


def test_auth_settings_raise_no_deprecation_warning(make_settings):
    # The SDK warns at start-up when validate_token_resource is left unset (and plans to turn it on by default):
    # our verifiers check the audience themselves, so the settings say False explicitly and start-up stays quiet.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auth_settings(make_settings(auth="token"))
        auth_settings(make_settings(auth="jwt", jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=ISSUER))


@asynccontextmanager
async def started(app) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan (startup ... shutdown) around the block, as uvicorn does."""
    to_app, app_inbox = anyio.create_memory_object_stream[dict[str, Any]](10)
    app_outbox, from_app = anyio.create_memory_object_stream[dict[str, Any]](10)

    async def send(message) -> None:
        await app_outbox.send(message)

    async with anyio.create_task_group() as tg:
        tg.start_soon(app, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, app_inbox.receive, send)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        try:
            yield
        finally:
            await to_app.send({"type": "lifespan.shutdown"})
            assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "auth", "version": "1"}},
}


async def test_over_http_an_issued_token_is_accepted_and_anything_else_gets_401(make_settings):
    settings = make_settings(auth="token")
    async with open_app_state(settings) as state, state.unit_of_work() as session:
        token = (await issue_token(session, "alice", ["read"])).token
    app = http_app(build_server(settings), settings)
    async with (
        started(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http,
    ):

        async def status(**headers: str) -> int:
            headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"} | headers
            return (await http.post("/mcp", json=INITIALIZE, headers=headers)).status_code

        assert await status(authorization=f"Bearer {token}") == 200
        assert await status() == 401
        assert await status(authorization=f"Bearer {token[:-1]}x") == 401

"""server/auth.py in process: the JWT verifier against a locally served JWKS, verifier selection, auth settings.

The token verifier (auth=token) is covered in tests/services/test_tokens.py; over HTTP both are covered by
tests/tenancy. These run in the test process so that mutation testing can see them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from core.settings import Settings
from core.wiring import AppState
from server.auth import JwtVerifier, StoreTokenVerifier, auth_settings, build_verifier
from server.lifespan import open_app_state
from storage.repositories.users import get_user_by_name

pytestmark = pytest.mark.anyio

ISSUER, AUDIENCE = "https://idp.test", "universe-mcp"


@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_url(signing_key) -> Iterator[str]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    public.update({"kid": "test-key", "use": "sig", "alg": "RS256"})
    body = json.dumps({"keys": [public]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


def sign(key, **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300} | claims
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "test-key"})


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
    "claims",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.test"},
        {"exp": int(time.time()) - 60},
        {"exp": None},  # exp is required
        {"sub": None},  # sub is required
        {"iss": None},  # iss is required
    ],
    ids=["audience", "issuer", "expired", "no-exp", "no-sub", "no-iss"],
)
async def test_a_jwt_failing_a_check_is_refused(verifier, signing_key, claims, caplog):
    assert await verifier.verify_token(sign(signing_key, **claims)) is None


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

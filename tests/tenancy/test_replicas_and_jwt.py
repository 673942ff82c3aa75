"""Two replicas behave as one server; JWT verification against a locally served JWKS."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.servers import http_server
from tests.tenancy.conftest import connect, envelope

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.mark.parametrize("deployment", ["postgres"], indirect=True)
async def test_two_replicas_sharing_postgres_and_redis_serve_one_client_consistently(deployment, tmp_path, redis_url):
    token = await deployment.token("gina")
    shared = {"UNIVERSE_MCP_REDIS_URL": redis_url, "UNIVERSE_MCP_RATE_LIMIT_WRITE": "12/minute"}
    with deployment.server(tmp_path / "a", **shared) as url_a, deployment.server(tmp_path / "b", **shared) as url_b:
        async with connect(url_a, token) as a, connect(url_b, token) as b:
            uid = envelope(await a.call_tool("create_universe", {"name": "Shared", "symbols": ["AAPL"]}))["data"][
                "universe"
            ]["id"]
            assert (
                envelope(await b.call_tool("get_universe", {"universe_id": uid}))["data"]["universe"]["asset_count"]
                == 1
            )
            added = envelope(
                await b.call_tool("add_assets_to_universe", {"universe_id": uid, "symbols": ["MSFT", "AAPL"]})
            )
            assert added["data"]["report"]["counts"] == {"added": 1, "already_present": 1}
            again = envelope(await a.call_tool("add_assets_to_universe", {"universe_id": uid, "symbols": ["MSFT"]}))
            assert again["data"]["report"]["counts"] == {"already_present": 1}
            dup = envelope(await b.call_tool("create_universe", {"name": "shared"}))
            assert dup["error"]["code"] == "already_exists" and dup["error"]["details"]["existing_id"] == uid
            # The write budget (12/minute) is shared through Redis: 4 writes above, 8 more pass, then both refuse.
            results = []
            for i in range(9):
                client = a if i % 2 else b
                results.append(
                    envelope(await client.call_tool("update_universe", {"universe_id": uid, "description": str(i)}))
                )
            assert [r["success"] for r in results] == [True] * 8 + [False]
            assert results[-1]["error"]["code"] == "rate_limited"
            final_a = envelope(await a.call_tool("get_universe", {"universe_id": uid}))["data"]
            final_b = envelope(await b.call_tool("get_universe", {"universe_id": uid}))["data"]
            assert final_a == final_b and final_a["universe"]["description"] == "7"


@pytest.fixture
def jwks_server():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
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
    yield key, f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()


def sign(key, **claims) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://idp.test",
        "aud": "universe-mcp",
        "sub": "user-1",
        "iat": now,
        "exp": now + 300,
        "scope": "universe:read universe:write",
    } | claims
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "test-key"})


async def test_jwt_tokens_from_an_identity_provider(jwks_server, tmp_path):
    key, jwks_url = jwks_server
    env = {
        "UNIVERSE_MCP_AUTH": "jwt",
        "UNIVERSE_MCP_JWT_ISSUER": "https://idp.test",
        "UNIVERSE_MCP_JWT_AUDIENCE": "universe-mcp",
        "UNIVERSE_MCP_JWT_JWKS_URL": jwks_url,
    }
    with http_server(tmp_path / "data", **env) as url:
        async with connect(url, sign(key)) as client:
            created = envelope(await client.call_tool("create_universe", {"name": "From IdP"}))
            assert created["success"]
            forbidden = envelope(await client.call_tool("validate_symbols", {"symbols": ["AAPL"]}))
            assert forbidden["error"]["code"] == "forbidden"  # no validate scope in the token
        async with connect(url, sign(key, sub="user-2")) as other:
            assert envelope(await other.call_tool("list_universes", {}))["data"]["universes"] == []
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-11-25",
        }
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for bad in (
            sign(key, aud="someone-else"),
            sign(key, iss="https://evil.test"),
            sign(key, exp=int(time.time()) - 5),
            sign(other_key),
        ):
            response = httpx.post(url, json=body, headers=headers | {"authorization": f"Bearer {bad}"}, timeout=10)
            assert response.status_code == 401
        metadata = httpx.get(url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"), timeout=5)
        assert metadata.status_code == 200 and "https://idp.test" in json.dumps(metadata.json())


async def test_jwt_subjects_sharing_their_first_64_characters_are_two_tenants(jwks_server, tmp_path):
    key, jwks_url = jwks_server
    env = {
        "UNIVERSE_MCP_AUTH": "jwt",
        "UNIVERSE_MCP_JWT_ISSUER": "https://idp.test",
        "UNIVERSE_MCP_JWT_AUDIENCE": "universe-mcp",
        "UNIVERSE_MCP_JWT_JWKS_URL": jwks_url,
    }
    # Identity providers issue long subjects (e.g. "tenant|connection|user" or URLs); these differ at character 65.
    shared = "https://login.example.com/tenants/7f3c9a2e-0b1d-4c55-9e8f-2a6b1c0d9e7f/users/"
    assert len(shared) >= 64
    first, second = shared + "alice", shared + "bob"
    scopes = "universe:read universe:write"
    with http_server(tmp_path / "data", **env) as url:
        async with connect(url, sign(key, sub=first, scope=scopes)) as alice:
            created = envelope(await alice.call_tool("create_universe", {"name": "Alice only"}))
            assert created["success"], created
        async with connect(url, sign(key, sub=second, scope=scopes)) as bob:
            assert envelope(await bob.call_tool("list_universes", {}))["data"]["universes"] == []
            uid = created["data"]["universe"]["id"]
            assert envelope(await bob.call_tool("get_universe", {"universe_id": uid}))["error"]["code"] == "not_found"
        async with connect(url, sign(key, sub=first, scope=scopes)) as alice_again:
            listed = envelope(await alice_again.call_tool("list_universes", {}))["data"]["universes"]
            assert [u["name"] for u in listed] == ["Alice only"]  # the same long subject is the same owner

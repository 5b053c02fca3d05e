"""OIDC bearer tokens through `gantry serve`, from a real OpenID provider.

The provider is npm `oidc-provider` (tests/oidc/provider.mjs, installed by scripts/deps.sh) on
a loopback port: client credentials with a resource indicator give JWT access tokens whose
`aud` is the resource, with groups ["eng", "ops"] and the granted scopes. Gantry discovers it
from `[[auth.oidc]]`; the PyPI `mcp` 2.x client sends the token as `Authorization: Bearer`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

from conftest import REPO_ROOT as ROOT, Gantry, Spawner, texts, tool

pytestmark = pytest.mark.anyio

PROVIDER_DIR = ROOT / "tests" / "oidc"


@pytest.fixture
def issuer(spawn: Spawner, tmp_path: Path) -> str:
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").exists():
        pytest.fail("npm oidc-provider is not installed: run scripts/deps.sh")
    proc = spawn([tool("node"), "provider.mjs", "--port", "0", "--keys", str(tmp_path / "idp-keys.json")],
                 name="oidc-provider", cwd=PROVIDER_DIR)
    line: list[str] = []

    def announced() -> bool:
        text = proc.stdout_path.read_text()
        if "\n" in text:
            line.append(text.splitlines()[0])
            return True
        return False

    proc.wait_until(announced, "the OpenID provider to print its issuer")
    return json.loads(line[0])["issuer"]


def token(issuer: str, resource: str, scope: str = "mcp:tools") -> str:
    r = httpx.post(f"{issuer}/token", data={
        "grant_type": "client_credentials", "client_id": "gantry-test",
        "client_secret": "gantry-test-secret", "resource": resource, "scope": scope,
    }, timeout=30, trust_env=False)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture
def gw(gantry, issuer: str) -> Gantry:
    return gantry(f"""
[[auth.oidc]]
issuer = "{issuer}"
[servers.everything]
command = "{tool('mcp-server-everything')}"
args = ["stdio"]
[endpoints.eng]
access = "restricted"
teams = ["eng"]
scopes = ["mcp:tools"]
[endpoints.finance]
access = "restricted"
teams = ["finance"]
""")


def initialize(url: str, bearer: str | None) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return httpx.post(url, json=body, headers=headers, timeout=30, trust_env=False)


async def test_a_token_from_the_provider_lets_a_real_client_in(gw: Gantry, issuer: str) -> None:
    url = gw.endpoint_url("eng")
    # Without a token: 401, and the metadata names the provider as the authorization server.
    r = initialize(url, None)
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
    metadata = httpx.get(metadata_url, timeout=30, trust_env=False).json()
    assert metadata["resource"] == url
    assert metadata["authorization_servers"] == [issuer]

    good = token(issuer, url)
    headers = {"Authorization": f"Bearer {good}"}
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as c:
            assert "everything__echo" in {t.name for t in (await c.list_tools()).tools}
            assert texts(await c.call_tool("everything__echo", {"message": "hi"})) == ["Echo: hi"]
    # The token is never in Gantry's log.
    assert good not in gw.proc.logs(limit=10_000_000)


async def test_tokens_for_something_else_are_refused_with_the_reason(gw: Gantry, issuer: str) -> None:
    url = gw.endpoint_url("eng")

    def refused(bearer: str, status: int, error: str, says: str) -> None:
        r = initialize(url, bearer)
        assert r.status_code == status, r.text
        challenge = r.headers["www-authenticate"]
        assert f'error="{error}"' in challenge, challenge
        assert says in challenge, challenge
        assert bearer not in challenge and bearer not in r.text

    # Issued for another resource (another endpoint): wrong audience.
    refused(token(issuer, gw.endpoint_url("finance")), 401, "invalid_token", "audience")
    # A payload changed after signing: the signature no longer verifies.
    header, payload, signature = token(issuer, url).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["eng", "finance", "admins"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    refused(f"{header}.{forged}.{signature}", 401, "invalid_token", "signature")
    # Unsigned (alg: none).
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    refused(f"{none}.{payload}.", 401, "invalid_token", "none")
    # Valid, but without the scope the endpoint requires: step-up.
    r = initialize(url, token(issuer, url, scope="gantry:admin"))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert 'scope="mcp:tools"' in r.headers["www-authenticate"]
    # Valid, but the provider's groups are not the endpoint's team.
    finance = gw.endpoint_url("finance")
    r = initialize(finance, token(issuer, finance))
    assert r.status_code == 403, r.text

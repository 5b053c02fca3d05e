"""Endpoint access policies and MCP authorization, end to end.

What runs:
- the 401 → RFC 9728 metadata discovery step on the wire (raw HTTP), what the PyPI `mcp` 2.x
  client sees when it connects with a bearer token nobody accepts, and that a public
  endpoint refuses a wrong credential too;
- the safe default: `gantry serve` and `gantry check` refuse a non-loopback listen address
  while an endpoint is `public`, unless `allow_public_on_network = true`.

What needs real credentials (the `credentials` fixture): the policy × caller × operation
matrix with the `mcp` 2.x client sending `Authorization: Bearer <key>`. The fixture makes API
keys with `gantry key create`.
The same matrix also runs in Rust over a real listener with an in-test authenticator
(crates/gantry-proxy/src/access/tests.rs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

from conftest import Gantry, free_port, gantry_cli, gantry_ok, texts, tool

pytestmark = pytest.mark.anyio

WELL_KNOWN = "/.well-known/oauth-protected-resource"

ENTITLEMENTS = """
analysts = { tools = ["everything__echo", "everything__get-sum"], prompts = ["everything__simple-prompt"], resources = ["demo://resource/static/document/*"] }
"*" = ["everything__echo"]
"""


def config(extra: str = "") -> str:
    everything = f'[servers.everything]\ncommand = "{tool("mcp-server-everything")}"\nargs = ["stdio"]\n'
    endpoints = ""
    for policy, access in [
        ("public", ""),
        ("authenticated", 'access = "authenticated"\n'),
        ("restricted", 'access = "restricted"\nteams = ["analysts"]\n'),
    ]:
        for suffix, mode in [("", "direct"), ("_p", "progressive")]:
            endpoints += f'[endpoints.{policy}{suffix}]\nmode = "{mode}"\n{access}[endpoints.{policy}{suffix}.entitlements]\n{ENTITLEMENTS}\n'
    return extra + everything + endpoints


@pytest.fixture
def access_gw(gantry, credentials) -> Gantry:
    # After `credentials`: the keys are in the database before gantry starts.
    return gantry(config('authorization_servers = ["https://login.example"]\n'))


def post(url: str, headers: dict | None = None) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    h = {"Accept": "application/json, text/event-stream", **(headers or {})}
    return httpx.post(url, json=body, headers=h, timeout=30, trust_env=False)


def test_401_then_protected_resource_metadata_discovery_on_the_wire(access_gw: Gantry) -> None:
    url = access_gw.endpoint_url("restricted")
    r = post(url)
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    metadata_url = f"{access_gw.base_url}{WELL_KNOWN}/mcp/restricted"
    assert challenge == f'Bearer resource_metadata="{metadata_url}"', challenge
    # The client follows resource_metadata to the RFC 9728 document.
    doc = httpx.get(metadata_url, timeout=10, trust_env=False)
    assert doc.status_code == 200
    assert doc.headers["content-type"] == "application/json"
    assert doc.json() == {
        "resource": url,
        "resource_name": "Gantry endpoint restricted",
        "authorization_servers": ["https://login.example"],
        "bearer_methods_supported": ["header"],
    }
    # The root document describes the gateway when it has several endpoints.
    root = httpx.get(f"{access_gw.base_url}{WELL_KNOWN}", timeout=10, trust_env=False).json()
    assert root["resource"] == access_gw.base_url
    # A token nobody issued: invalid_token, described, and the secret is not echoed.
    r = post(url, {"Authorization": "Bearer not-a-real-key-s3cret"})
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "s3cret" not in r.headers["www-authenticate"] + r.text
    # Public endpoints work without a credential but refuse a wrong one.
    assert post(access_gw.endpoint_url("public")).status_code == 200
    wrong = post(access_gw.endpoint_url("public"), {"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    malformed = post(access_gw.endpoint_url("public"), {"Authorization": "Basic dXNlcjpwdw=="})
    assert malformed.status_code == 400
    assert 'error="invalid_request"' in malformed.headers["www-authenticate"]
    log = access_gw.proc.logs()
    assert "refused: the token is not a valid Gantry API key" in log, log
    assert "s3cret" not in log, "the token was logged"


def bearer_client(url: str, token: str | None, mode: str = "auto", wire: list | None = None) -> Client:
    """The `mcp` 2.x client sending `Authorization: Bearer <token>` on every request; `wire`
    collects (request headers, status, WWW-Authenticate) of each exchange."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    http = create_mcp_http_client(headers=headers)
    if wire is not None:

        async def record(response) -> None:
            wire.append((dict(response.request.headers), response.status_code, response.headers.get("www-authenticate")))

        http.event_hooks["response"].append(record)
    return Client(streamable_http_client(url, http_client=http), mode=mode)


async def test_a_real_client_with_a_token_nobody_accepts_is_refused(access_gw: Gantry) -> None:
    wire: list = []
    url = access_gw.endpoint_url("authenticated")
    with pytest.raises(Exception):
        async with bearer_client(url, "forged-token", wire=wire) as c:
            await c.list_tools()
    assert wire, "the client sent nothing"
    for sent, status, challenge in wire:
        assert sent["authorization"] == "Bearer forged-token"
        assert status == 401
        assert challenge.startswith(f'Bearer resource_metadata="{access_gw.base_url}{WELL_KNOWN}/mcp/authenticated", error="invalid_token"'), challenge
    # Anonymous on a public endpoint: only what "*" is entitled to.
    async with bearer_client(access_gw.endpoint_url("public"), None) as c:
        assert [t.name for t in (await c.list_tools()).tools] == ["everything__echo"]
        assert texts(await c.call_tool("everything__echo", {"message": "hi"})) == ["Echo: hi"]


def test_public_endpoints_are_not_served_on_a_network_address_unless_allowed(tmp_path: Path, gantry) -> None:
    cfg = tmp_path / "open.toml"
    cfg.write_text('listen = "0.0.0.0:0"\n' + config())
    for cmd in (["check", "--config", str(cfg)], ["serve", "--config", str(cfg)]):
        r = gantry_cli(*cmd)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        assert "refusing to listen on 0.0.0.0:0: endpoints public, public_p have access = \"public\"" in r.stderr, r.stderr
        assert "allow_public_on_network = true" in r.stderr
    # Only protected endpoints: allowed on the network.
    closed = tmp_path / "closed.toml"
    closed.write_text('listen = "0.0.0.0:0"\n[endpoints.x]\naccess = "authenticated"\n')
    r = gantry_cli("check", "--config", str(closed))
    assert r.returncode == 0, r.stderr
    assert "endpoint /mcp/x -> [], access authenticated" in r.stdout
    # Explicitly allowed: it serves.
    gw = gantry(f'listen = "0.0.0.0:{free_port()}"\nallow_public_on_network = true\n' + config())
    assert post(gw.endpoint_url("public")).status_code == 200


# ---------------------------------------------------------------------------------------------
# the matrix with real credentials


def _create_key(data_dir: Path, subject: str, teams: list[str], plane: str) -> str:
    """One API key for a new user `subject` in `teams`, for `plane` ("data" or "control")."""
    at = ["--data-dir", str(data_dir)]
    gantry_ok("user", "add", subject, *at)
    for t in teams:
        if t not in gantry_ok("team", "list", *at):
            gantry_ok("team", "add", t, *at)
        gantry_ok("team", "add-member", t, subject, *at)
    return gantry_ok("key", "create", "--user", subject, "--plane", plane, *at).strip()


@pytest.fixture
def credentials(tmp_path: Path) -> Callable[[str], str | None]:
    """`credentials(who) -> token`: who is nobody, wrong_team, right_team or admin_only.

    Made with `gantry user|team|key` in the data directory the test's gantry will use (next
    to its config file), before it starts."""
    data = tmp_path / "gantry-data"
    keys = {
        "wrong_team": _create_key(data, "mallory", ["sales"], "data"),
        "right_team": _create_key(data, "alice", ["analysts"], "data"),
        "admin_only": _create_key(data, "root", ["analysts"], "control"),
    }
    return lambda who: keys.get(who)


# policy → who → expected: a refusal status, or the tools it is entitled to.
RIGHT = ["everything__echo", "everything__get-sum"]
EXPECTED = {
    "public": {"nobody": ["everything__echo"], "wrong_team": ["everything__echo"], "right_team": RIGHT, "admin_only": 403},
    "authenticated": {"nobody": 401, "wrong_team": ["everything__echo"], "right_team": RIGHT, "admin_only": 403},
    "restricted": {"nobody": 401, "wrong_team": 403, "right_team": RIGHT, "admin_only": 403},
}


@pytest.mark.parametrize("policy", list(EXPECTED))
@pytest.mark.parametrize("who", ["nobody", "wrong_team", "right_team", "admin_only"])
async def test_access_matrix_with_a_real_client(access_gw: Gantry, credentials, policy: str, who: str) -> None:
    token = credentials(who)
    want = EXPECTED[policy][who]
    for suffix in ("", "_p"):
        url = access_gw.endpoint_url(policy + suffix)
        if isinstance(want, int):
            r = post(url, {"Authorization": f"Bearer {token}"} if token else None)
            assert r.status_code == want, r.text
            assert r.headers["www-authenticate"].startswith(f'Bearer resource_metadata="{access_gw.base_url}{WELL_KNOWN}/mcp/{policy}{suffix}"')
            continue
        async with bearer_client(url, token) as c:
            if suffix == "":
                assert sorted(t.name for t in (await c.list_tools()).tools) == want
                assert texts(await c.call_tool("everything__echo", {"message": "m"})) == ["Echo: m"]
                # Not entitled is exactly unknown: the same JSON-RPC error, naming the tool.
                with pytest.raises(MCPError) as hidden:
                    await c.call_tool("everything__get-env", {})
                with pytest.raises(MCPError) as unknown:
                    await c.call_tool("everything__nothing", {})
                assert hidden.value.code == unknown.value.code
                assert str(hidden.value).replace("get-env", "X") == str(unknown.value).replace("nothing", "X")
                resources = [str(r.uri) for r in (await c.list_resources()).resources]
                assert all(u.startswith("demo://resource/static/document/") for u in resources)
                assert bool(resources) == (who == "right_team")
            else:
                found = await c.call_tool("search_tools", {"query": "environment variables echo sum"})
                # Exactly what it is entitled to: the query names all of those tools and get-env.
                assert sorted(t["id"] for t in found.structured_content["tools"]) == want, found
                # Not entitled is exactly unknown here too.
                hidden = await c.call_tool("describe_tools", {"ids": ["everything__get-env"]})
                unknown = await c.call_tool("describe_tools", {"ids": ["everything__nothing"]})
                assert hidden.is_error, hidden
                assert hidden.structured_content == {"error": "unknown_ids", "unknown": ["everything__get-env"]}, hidden
                assert texts(hidden)[0].replace("get-env", "X") == texts(unknown)[0].replace("nothing", "X")

"""Both protocol eras on both sides of Gantry, behind one endpoint.

Servers: tests/fixtures/modern_server.py (PyPI `mcp` 2.x, dual-era, so Gantry speaks
2026-07-28 to it) over Streamable HTTP and over stdio, and npm server-everything (legacy only).
Clients: PyPI `mcp` 2.x `Client` in `2026-07-28`, `legacy` and `auto` modes, npm
`@modelcontextprotocol/client` 2.x (tests/e2e/node_client.mjs), and raw HTTP for what a
client library would never send.

What proves that Gantry spoke 2026-07-28 upstream: `modern_ask` answers a 2026-07-28 request
with `input_required` and reports the server's own `requestState` on the retry
(`state=round1:…`); asked in the legacy era it would elicit mid-call and report `state=legacy`.
And the HTTP server refuses a `modern_region` call without the `Mcp-Param-Region` header, which
only Gantry can add for a legacy client.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, types

from conftest import (
    FIXTURES_DIR, MODERN, MODERN_SERVER, cancel_call, envelope, free_port, listen_stream, node_client, start_modern,
    texts, tool, wait_for,
)

pytestmark = pytest.mark.anyio

ELICITATION = {"elicitation": {"form": {}}}
ASKED = "answer: accept ok=True state=round1:Proceed?"


@pytest.fixture
def mixed(gantry, spawn, state_dir: Path):
    """Gantry with endpoint `mix`: modern_server over HTTP (`web`, tools cacheable for 60 s)
    and stdio (`local`, 30 s), and server-everything (`everything`); endpoint `modern` has
    only the two modern servers."""
    web = start_modern(spawn, "--state-dir", str(state_dir), "--tools-ttl-ms", "60000")
    return gantry(f"""
[servers.web]
url = "{web.url}"
[servers.local]
command = "{sys.executable}"
args = ["{MODERN_SERVER}", "--transport", "stdio", "--state-dir", "{state_dir}", "--tools-ttl-ms", "30000"]
[servers.everything]
command = "{tool('mcp-server-everything')}"
args = ["stdio"]
[endpoints.mix]
servers = ["web", "local", "everything"]
[endpoints.modern]
servers = ["web", "local"]
""")


def accept_ok(asked: list[str]):
    async def elicit(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"ok": True})

    return elicit


@pytest.mark.parametrize("mode", [MODERN, "legacy", "auto"])
async def test_every_client_era_reaches_every_server_era(mixed, mode: str) -> None:
    async with Client(mixed.endpoint_url("mix"), mode=mode) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert {"web__modern_echo", "local__modern_echo", "everything__echo"} <= names, names
        assert texts(await c.call_tool("web__modern_echo", {"text": "a"})) == ["modern:a"]
        assert texts(await c.call_tool("local__modern_echo", {"text": "b"})) == ["modern:b"]
        assert texts(await c.call_tool("everything__echo", {"message": "c"})) == ["Echo: c"]
        read = await c.read_resource("modern://greeting")
        assert read.contents[0].text == "hello from modern"


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
@pytest.mark.parametrize("server", ["web", "local"])
async def test_input_required_round_trip(mixed, mode: str, server: str) -> None:
    # 2026-07-28 client: the server's input_required passes through (state sealed by Gantry).
    # Legacy client: Gantry asks the question as elicitation/create on the session and retries.
    asked: list[str] = []
    async with Client(mixed.endpoint_url("mix"), mode=mode, elicitation_callback=accept_ok(asked)) as c:
        r = await c.call_tool(f"{server}__modern_ask", {"question": "Proceed?"})
    assert texts(r) == [ASKED] and not r.is_error, r
    assert asked == ["Proceed?"]


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
async def test_sampling_asked_through_input_required(mixed, mode: str) -> None:
    # Legacy client: Gantry turns the server's sampling input request into
    # sampling/createMessage on the session and retries with the model's answer.
    prompts: list[str] = []

    async def sample(context, params):
        prompts.append(params.messages[0].content.text)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="short"), model="test-model"
        )

    async with Client(mixed.endpoint_url("mix"), mode=mode, sampling_callback=sample) as c:
        r = await c.call_tool("web__modern_summarize", {"text": "a long story"})
    assert texts(r) == ["summary: short"] and not r.is_error, r
    assert prompts == ["Summarise: a long story"]


async def test_legacy_client_without_elicitation_gets_a_clear_error(mixed) -> None:
    async with Client(mixed.endpoint_url("mix"), mode="legacy") as c:
        # The server asks anyway; Gantry cannot put the question to this client and says so.
        with pytest.raises(Exception) as err:
            await c.call_tool("web__modern_ask", {"question": "Proceed?"})
        assert "did not declare the elicitation capability" in str(err.value), err.value
        assert texts(await c.call_tool("web__modern_echo", {"text": "still"})) == ["modern:still"]


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
async def test_param_headers_reach_the_server(mixed, mode: str) -> None:
    async with Client(mixed.endpoint_url("mix"), mode=mode) as c:
        r = await c.call_tool("web__modern_region", {"region": "Zürich", "text": "t"})
    assert texts(r) == ["region=Zürich text=t"], r


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
@pytest.mark.parametrize("server", ["web", "local"])
async def test_progress_from_a_modern_server(mixed, mode: str, server: str) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(mixed.endpoint_url("mix"), mode=mode) as c:
        r = await c.call_tool(f"{server}__modern_progress", {"steps": 3}, progress_callback=on_progress)
    assert texts(r) == ["done 3"]
    assert seen == [1, 2, 3]


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
@pytest.mark.parametrize("server", ["web", "local"])
async def test_cancellation_reaches_a_modern_server(mixed, state_dir: Path, mode: str, server: str) -> None:
    # Over HTTP Gantry closes the request's stream; over stdio it sends notifications/cancelled.
    marker = f"{server}-{mode}"
    async with Client(mixed.endpoint_url("mix"), mode=mode) as c:
        await cancel_call(lambda: c.call_tool(f"{server}__modern_slow", {"seconds": 60, "marker": marker}),
                          state_dir, marker)
        assert texts(await c.call_tool(f"{server}__modern_echo", {"text": "after"})) == ["modern:after"]


@pytest.mark.parametrize("server", ["web", "local"])
async def test_list_changes_of_a_modern_server_reach_legacy_clients(mixed, server: str) -> None:
    # Gantry listens to the server with subscriptions/listen and re-reads its tools.
    changed = anyio.Event()

    async def handler(message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with Client(mixed.endpoint_url("mix"), mode="legacy", message_handler=handler) as c:
        await c.list_tools()
        r = await c.call_tool(f"{server}__modern_add_tool", {"name": "late"})
        assert texts(r) == ["added late"]
        with anyio.fail_after(20):
            await changed.wait()

        async def listed():
            return f"{server}__late" in {t.name for t in (await c.list_tools()).tools}

        await wait_for(listed, "the added tool to be listed")
        assert texts(await c.call_tool(f"{server}__late", {})) == ["I am late"]


async def test_resource_updates_of_a_modern_server_reach_a_legacy_subscriber(mixed) -> None:
    # Gantry subscribes on its listen stream to the server; subscribe returns once acknowledged.
    updated = anyio.Event()

    async def handler(message) -> None:
        if isinstance(message, types.ResourceUpdatedNotification) and str(message.params.uri) == "modern://greeting":
            updated.set()

    async with Client(mixed.endpoint_url("modern"), mode="legacy", message_handler=handler) as c:
        await c.subscribe_resource("modern://greeting")
        assert texts(await c.call_tool("web__modern_touch", {"uri": "modern://greeting"})) == ["touched modern://greeting"]
        with anyio.fail_after(20):
            await updated.wait()


# ---------------------------------------------------------------------------------------------
# Raw 2026-07-28 requests: what Gantry puts on the wire


def call(url: str, name: str, arguments: dict, rid: int = 1, **more) -> dict:
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    params = {"name": name, "arguments": arguments, "_meta": envelope(ELICITATION), **more}
    body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}
    r = httpx.post(url, json=body, headers=headers, timeout=30, trust_env=False)
    return {"status": r.status_code, **r.json()}


def test_routing_headers_upstream_use_the_servers_names_and_pass_unknown_params(mixed) -> None:
    url = mixed.endpoint_url("mix")
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "web__modern_seen_headers",
        "Mcp-Param-Extra": "passed on",
    }
    params = {"name": "web__modern_seen_headers", "arguments": {}, "_meta": envelope(ELICITATION)}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    r = httpx.post(url, json=body, headers=headers, timeout=30, trust_env=False).json()
    got = json.loads(r["result"]["content"][0]["text"])
    assert got == {
        "mcp-method": "tools/call",
        "mcp-name": "modern_seen_headers",
        "mcp-param-extra": "passed on",
        "mcp-protocol-version": MODERN,
    }, got


async def test_listen_stream_gets_resource_updates_of_a_modern_server(mixed) -> None:
    url = mixed.endpoint_url("modern")
    wanted = {"resourceSubscriptions": ["modern://greeting"]}
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        async with listen_stream(http, url, "listen-r", envelope(ELICITATION), wanted) as next_frame:
            with anyio.fail_after(20):
                ack = await next_frame()
                assert ack["params"]["notifications"] == {"resourceSubscriptions": ["modern://greeting"]}, ack
                touch = await http.post(
                    url,
                    json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                          "params": {"name": "web__modern_touch", "arguments": {"uri": "modern://greeting"},
                                     "_meta": envelope(ELICITATION)}},
                    headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MODERN,
                             "Mcp-Method": "tools/call", "Mcp-Name": "web__modern_touch"},
                )
                assert touch.json()["result"]["content"][0]["text"] == "touched modern://greeting", touch.text
                frame = await next_frame()
    assert frame["method"] == "notifications/resources/updated", frame
    assert frame["params"]["uri"] == "modern://greeting"
    assert frame["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-r"


def list_tools(url: str) -> dict:
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": envelope(ELICITATION)}}
    return httpx.post(url, json=body, headers=headers, timeout=30, trust_env=False).json()["result"]


def test_merged_lists_promise_what_every_part_promises(mixed) -> None:
    # The smallest TTL of the parts, public only if every part is; a legacy server promises nothing.
    modern_only = list_tools(mixed.endpoint_url("modern"))
    assert (modern_only["ttlMs"], modern_only["cacheScope"]) == (30000, "public"), modern_only
    mix = list_tools(mixed.endpoint_url("mix"))
    assert (mix["ttlMs"], mix["cacheScope"]) == (0, "private"), mix


def test_modern_server_state_is_sealed_and_checked(mixed) -> None:
    url = mixed.endpoint_url("mix")
    first = call(url, "web__modern_ask", {"question": "Proceed?"})
    result = first["result"]
    assert result["resultType"] == "input_required", first
    # The server's own question key comes through; its state is sealed by Gantry.
    assert list(result["inputRequests"]) == ["confirm"], result
    state = result["requestState"]
    assert state.startswith("gantry1."), state
    answer = {"confirm": {"action": "accept", "content": {"ok": True}}}
    done = call(url, "web__modern_ask", {"question": "Proceed?"}, rid=2, inputResponses=answer, requestState=state)
    assert done["result"]["content"][0]["text"] == ASKED, done

    tampered = state[:-2] + ("AA" if not state.endswith("AA") else "BB")
    bad = call(url, "web__modern_ask", {"question": "Proceed?"}, rid=3, inputResponses=answer, requestState=tampered)
    assert bad["status"] == 400 and bad["error"]["code"] == -32602, bad
    assert "altered" in bad["error"]["message"]

    # A state issued for one server cannot steer a call to another.
    other = call(url, "local__modern_ask", {"question": "Proceed?"}, rid=4, inputResponses=answer, requestState=state)
    assert other["status"] == 400 and other["error"]["code"] == -32602, other
    assert 'issued for server "web"' in other["error"]["message"], other


# ---------------------------------------------------------------------------------------------
# npm @modelcontextprotocol/client through Gantry


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
def test_node_client_through_gantry(mixed, mode: str) -> None:
    lines = node_client(
        mixed.endpoint_url("mix"),
        'call:web__modern_echo:{"text":"hi"}',
        'call:everything__echo:{"message":"legacy"}',
        'call:local__modern_ask:{"question":"Proceed?"}',
        'call:web__modern_region:{"region":"eu","text":"t"}',
        mode=mode,
    )
    assert lines[0]["era"] == ("modern" if mode == MODERN else "legacy"), lines[0]
    assert [line["text"] for line in lines[1:]] == ["modern:hi", "Echo: legacy", ASKED, "region=eu text=t"], lines


# ---------------------------------------------------------------------------------------------
# The third era of the probe: a URL that only speaks the legacy HTTP+SSE transport


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
async def test_url_of_an_sse_server_falls_back_to_sse(gantry, spawn, mode: str) -> None:
    # No `transport` in the config: Gantry tries 2026-07-28 and Streamable HTTP first; the
    # server refuses both POSTs with 404, and answers GET with its endpoint event.
    port = free_port()
    server = spawn(
        [tool("mcp-server-everything"), "sse"], name="everything-sse", env={"PORT": str(port)}
    )
    server.wait_for_port(port)
    gw = gantry(f'[servers.old]\nurl = "http://127.0.0.1:{port}/sse"\n[endpoints.main]\n')
    async with Client(gw.endpoint_url("main"), mode=mode) as c:
        r = await c.call_tool("old__echo", {"message": "over sse"})
    assert texts(r) == ["Echo: over sse"], r


# ---------------------------------------------------------------------------------------------
# PyPI fastmcp as a 2026-07-28 server


async def test_fastmcp_server_serves_every_client_era(gantry, spawn) -> None:
    # One server for all three client modes: fastmcp takes seconds to start.
    port = free_port()
    server = spawn(
        [tool("fastmcp"), "run", str(FIXTURES_DIR / "fastmcp_server.py"),
         "--transport", "http", "--host", "127.0.0.1", "--port", str(port)],
        name="fastmcp",
    )
    server.wait_for_port(port)
    gw = gantry(f"""
[servers.fast]
url = "http://127.0.0.1:{port}/mcp"
[servers.everything]
command = "{tool('mcp-server-everything')}"
args = ["stdio"]
[endpoints.main]
servers = ["fast", "everything"]
""")
    for mode in (MODERN, "legacy", "auto"):
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        async with Client(gw.endpoint_url("main"), mode=mode) as c:
            r = await c.call_tool("fast__multiply", {"a": 6, "b": 7})
            assert texts(r) == ["42"], (mode, r)
            r = await c.call_tool("fast__count_to", {"n": 3}, progress_callback=on_progress)
            assert texts(r) == ["counted to 3"], (mode, r)
            assert texts(await c.call_tool("everything__echo", {"message": mode})) == [f"Echo: {mode}"]
        assert seen == [1, 2, 3], (mode, seen)
    # Gantry's log says which era it found for each server.
    logs = gw.proc.logs()
    assert "server connected server=fast version=2026-07-28" in logs, logs
    assert "server connected server=everything version=2025-11-25" in logs, logs

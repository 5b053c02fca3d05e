"""MCP 2026-07-28 clients through Gantry, in front of legacy-era servers.

Clients: PyPI `mcp` 2.x `Client` in `2026-07-28` and `auto` modes, and raw HTTP for what a
client library would never send (tampered state, mismatched headers). Servers: npm
server-everything (legacy only) and the probe server (tests/fixtures/probe_server.py), as in
test_gateway_core.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, types

from conftest import MODERN, cancel_slow_call, envelope, listen_stream, texts, wait_for

pytestmark = pytest.mark.anyio

def post(url: str, method: str, params: dict, name: str | None = None, rid: int = 1, **extra_headers) -> httpx.Response:
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
        **extra_headers,
    }
    if name is not None:
        headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
    return httpx.post(url, json=body, headers=headers, timeout=30, trust_env=False)


@pytest.mark.parametrize("mode", [MODERN, "auto"])
async def test_modern_client_lists_and_calls_legacy_servers(main_gw, mode: str) -> None:
    async with Client(main_gw.endpoint_url("main"), mode=mode) as c:
        assert c.session.protocol_version == MODERN
        names = {t.name for t in (await c.list_tools()).tools}
        assert {"everything__echo", "time__get_current_time", "probe__echo"} <= names
        r = await c.call_tool("everything__echo", {"message": "modern"})
        assert texts(r) == ["Echo: modern"], r
        r = await c.call_tool("probe__echo", {"message": "hi"})
        assert texts(r) == ["probe: hi"]


async def test_modern_client_gets_progress_from_a_legacy_server(main_gw) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(main_gw.endpoint_url("main"), mode=MODERN) as c:
        r = await c.call_tool(
            "everything__trigger-long-running-operation", {"duration": 1, "steps": 3}, progress_callback=on_progress
        )
        assert not r.is_error, r
    assert len(seen) >= 2 and seen == sorted(seen), seen


async def test_a_legacy_servers_question_reaches_a_modern_client_as_input_required(main_gw) -> None:
    asked: list[str] = []

    async def elicit(context, params):
        asked.append(params.message)
        return types.ElicitResult(
            action="accept",
            content={"name": "Ada", "check": True, "email": "ada@example.com", "integer": 3, "number": 1.5, "untitledSingleSelectEnum": "option1"},
        )

    async with Client(main_gw.endpoint_url("main"), mode=MODERN, elicitation_callback=elicit) as c:
        async def listed():
            return "everything__trigger-elicitation-request" in {t.name for t in (await c.list_tools()).tools}

        await wait_for(listed, "the elicitation tool to be listed")
        r = await c.call_tool("everything__trigger-elicitation-request", {})
        dumped = json.dumps([b.model_dump() for b in r.content])
        assert "accept" in dumped.lower() and "Ada" in dumped, dumped
    assert asked, "the client's elicitation callback never ran"


def test_a_tampered_request_state_is_refused(main_gw) -> None:
    url = main_gw.endpoint_url("main")
    caps = {"elicitation": {"form": {}}}
    params = {"name": "probe__ask_then_give_up", "arguments": {"seconds": 30}, "_meta": envelope(caps)}
    first = post(url, "tools/call", params, name="probe__ask_then_give_up")
    assert first.status_code == 200, first.text
    result = first.json()["result"]
    assert result["resultType"] == "input_required"
    (key,) = result["inputRequests"]
    assert result["inputRequests"][key]["method"] == "elicitation/create"
    state = result["requestState"]

    tampered = state[:-2] + ("AA" if not state.endswith("AA") else "BB")
    retry = dict(params, inputResponses={key: {"action": "accept", "content": {"name": "Eve"}}}, requestState=tampered)
    refused = post(url, "tools/call", retry, name="probe__ask_then_give_up", rid=2)
    assert refused.status_code == 400
    err = refused.json()["error"]
    assert err["code"] == -32602 and "requestState was altered" in err["message"], err

    # The genuine state still works once; the server gets the answer.
    good = dict(params, inputResponses={key: {"action": "accept", "content": {"name": "Ada"}}}, requestState=state)
    done = post(url, "tools/call", good, name="probe__ask_then_give_up", rid=3)
    assert done.status_code == 200, done.text
    assert done.json()["result"]["content"][0]["text"] == "answered"
    again = post(url, "tools/call", good, name="probe__ask_then_give_up", rid=4)
    assert again.json()["error"]["code"] == -32602, "a state must not be replayed"


def test_modern_requests_are_validated_like_the_spec_says(main_gw) -> None:
    url = main_gw.endpoint_url("main")
    ok = post(url, "tools/list", {"_meta": envelope()})
    assert ok.status_code == 200
    res = ok.json()["result"]
    assert res["resultType"] == "complete" and res["cacheScope"] == "private" and res["ttlMs"] == 0
    assert res["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "gantry/main"

    wrong_method = post(url, "tools/list", {"_meta": envelope()}, **{"Mcp-Method": "prompts/list"})
    assert wrong_method.status_code == 400 and wrong_method.json()["error"]["code"] == -32020

    wrong_name = post(url, "tools/call", {"name": "probe__echo", "arguments": {"message": "x"}, "_meta": envelope()}, name="probe__pid")
    assert wrong_name.status_code == 400 and wrong_name.json()["error"]["code"] == -32020

    meta = envelope()
    meta["io.modelcontextprotocol/protocolVersion"] = "2099-01-01"
    unsupported = post(url, "tools/list", {"_meta": meta}, **{"MCP-Protocol-Version": "2099-01-01"})
    assert unsupported.status_code == 400
    err = unsupported.json()["error"]
    assert err["code"] == -32022 and err["data"]["supported"] == [MODERN] and err["data"]["requested"] == "2099-01-01"

    no_meta = post(url, "tools/list", {})
    assert no_meta.status_code == 400 and no_meta.json()["error"]["code"] == -32602

    removed = post(url, "ping", {"_meta": envelope()})
    assert removed.status_code == 404 and removed.json()["error"]["code"] == -32601

    discover = post(url, "server/discover", {"_meta": envelope()}).json()["result"]
    assert discover["supportedVersions"] == [MODERN] and "tools" in discover["capabilities"]


async def test_closing_the_stream_cancels_the_call_upstream(main_gw, state_dir: Path) -> None:
    async with Client(main_gw.endpoint_url("main"), mode=MODERN) as c:
        await cancel_slow_call(c, state_dir, "m1")


async def test_listen_stream_receives_list_changes(main_gw) -> None:
    url = main_gw.endpoint_url("main")
    wanted = {"toolsListChanged": True, "promptsListChanged": True}
    frames: list[dict] = []
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        async with listen_stream(http, url, "listen-1", envelope(), wanted) as next_frame:
            with anyio.fail_after(20):
                ack = await next_frame()
                assert ack["method"] == "notifications/subscriptions/acknowledged"
                assert ack["params"]["notifications"]["toolsListChanged"] is True
                assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"
                grow = await http.post(
                    url,
                    json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                          "params": {"name": "probe__grow", "arguments": {}, "_meta": envelope()}},
                    headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MODERN,
                             "Mcp-Method": "tools/call", "Mcp-Name": "probe__grow"},
                )
                assert grow.json()["result"]["content"][0]["text"].startswith("grown_")
                while True:
                    frame = await next_frame()
                    frames.append(frame)
                    if frame.get("method") == "notifications/tools/list_changed":
                        break
    assert frames[-1]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"

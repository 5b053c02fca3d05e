"""The e2e test assets themselves, without Gantry: modern_server.py (PyPI `mcp` 2.x, protocol
2026-07-28) and node_client.mjs (npm @modelcontextprotocol/client 2.x).

Gateway tests that use these assets can only be trusted if the assets already behave as
described when talking to each other directly: tools listed and called in the 2026-07-28 era
over HTTP and stdio, the input_required round trip, the `x-mcp-header` parameter, run-time
tool list changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters, types
from mcp.shared.subscriptions import ToolsListChanged

from conftest import (
    MODERN, MODERN_SERVER, Server, Spawner, envelope, free_port, node_client, run_node_client, start_modern, texts,
)

pytestmark = pytest.mark.anyio

ELICITATION = {"elicitation": {"form": {}}}
TOOLS = {"modern_echo", "modern_progress", "modern_ask", "modern_region", "modern_add_tool", "modern_slow", "modern_seen_headers", "modern_touch", "modern_summarize"}


@pytest.fixture
def modern_http(spawn: Spawner) -> Server:
    return start_modern(spawn)


@pytest.fixture(params=["http", "stdio"])
def target(request: pytest.FixtureRequest, spawn: Spawner) -> str | StdioServerParameters:
    """What `mcp.Client` connects to: the server's URL, or the command that runs it over stdio."""
    if request.param == "http":
        return start_modern(spawn).url
    return StdioServerParameters(command=sys.executable, args=[str(MODERN_SERVER), "--transport", "stdio"])


def post(url: str, method: str, params: dict, **extra_headers: str) -> httpx.Response:
    """One raw 2026-07-28 request (no client library between the test and the wire)."""
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if "name" in params:
        headers["Mcp-Name"] = params["name"]
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": envelope(ELICITATION)}}
    return httpx.post(url, json=body, headers={**headers, **extra_headers}, timeout=30, trust_env=False)


# ---------------------------------------------------------------------------------------------
# modern_server.py with the Python SDK client


async def test_modern_client_lists_and_calls(target) -> None:
    async with Client(target, mode=MODERN) as c:
        assert c.session.protocol_version == MODERN
        assert {t.name for t in (await c.list_tools()).tools} == TOOLS
        assert texts(await c.call_tool("modern_echo", {"text": "hi"})) == ["modern:hi"]
        assert (await c.read_resource("modern://greeting")).contents[0].text == "hello from modern"


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
async def test_ask_round_trip_reaches_the_elicitation_callback(target, mode: str) -> None:
    asked: list[str] = []

    async def elicit(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"ok": True})

    async with Client(target, mode=mode, elicitation_callback=elicit) as c:
        r = await c.call_tool("modern_ask", {"question": "Proceed?"})
    # 2026-07-28: input_required, then a retry carrying the answer and the state the server minted.
    # Legacy: a plain elicitation/create request in the middle of the call.
    state = "round1:Proceed?" if mode == MODERN else "legacy"
    assert texts(r) == [f"answer: accept ok=True state={state}"] and not r.is_error, r
    assert asked == ["Proceed?"]


async def test_progress_is_reported(target) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(target, mode=MODERN) as c:
        r = await c.call_tool("modern_progress", {"steps": 3}, progress_callback=on_progress)
    assert texts(r) == ["done 3"]
    assert seen == [1, 2, 3]


async def test_region_schema_carries_x_mcp_header(target) -> None:
    async with Client(target, mode=MODERN) as c:
        (region,) = [t for t in (await c.list_tools()).tools if t.name == "modern_region"]
        assert region.input_schema["properties"]["region"]["x-mcp-header"] == "Region"
        assert "x-mcp-header" not in region.input_schema["properties"]["text"]
        # Over HTTP the client mirrors the argument into Mcp-Param-Region, which the server checks.
        assert texts(await c.call_tool("modern_region", {"region": "eu", "text": "t"})) == ["region=eu text=t"]


async def test_added_tool_is_announced_on_subscriptions_listen(modern_http) -> None:
    async with Client(modern_http.url, mode=MODERN) as c:
        async with c.listen(tools_list_changed=True) as sub:
            assert texts(await c.call_tool("modern_add_tool", {"name": "late_tool"})) == ["added late_tool"]
            with anyio.fail_after(10):
                event = await sub.__anext__()
        assert isinstance(event, ToolsListChanged), event
        assert "late_tool" in {t.name for t in (await c.list_tools(cache_mode="bypass")).tools}


async def test_added_tool_is_announced_to_a_legacy_session(modern_http) -> None:
    changed = anyio.Event()

    async def on_message(message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with Client(modern_http.url, mode="legacy", message_handler=on_message) as c:
        await c.call_tool("modern_add_tool", {"name": "late_tool"})
        with anyio.fail_after(10):
            await changed.wait()
        assert "late_tool" in {t.name for t in (await c.list_tools()).tools}


# ---------------------------------------------------------------------------------------------
# modern_server.py on the wire


def test_region_header_is_enforced_on_the_wire(modern_http) -> None:
    params = {"name": "modern_region", "arguments": {"region": "eu", "text": "t"}}
    missing = post(modern_http.url, "tools/call", params)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == -32020, missing.text
    wrong = post(modern_http.url, "tools/call", params, **{"Mcp-Param-Region": "us"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == -32020, wrong.text
    ok = post(modern_http.url, "tools/call", params, **{"Mcp-Param-Region": "eu"})
    assert ok.status_code == 200 and ok.json()["result"]["content"][0]["text"] == "region=eu text=t", ok.text


def ask_first_round(url: str) -> tuple[dict, str]:
    params = {"name": "modern_ask", "arguments": {"question": "Proceed?"}}
    first = post(url, "tools/call", params)
    assert first.status_code == 200, first.text
    result = first.json()["result"]
    assert result["resultType"] == "input_required"
    confirm = result["inputRequests"]["confirm"]
    assert confirm["method"] == "elicitation/create" and confirm["params"]["message"] == "Proceed?"
    assert confirm["params"]["requestedSchema"]["properties"] == {"ok": {"type": "boolean"}}
    return dict(params, inputResponses={"confirm": {"action": "accept", "content": {"ok": True}}}), result["requestState"]


def test_an_altered_sealed_state_is_refused_by_the_sdk(modern_http) -> None:
    retry, state = ask_first_round(modern_http.url)
    refused = post(modern_http.url, "tools/call", dict(retry, requestState=state[:-2] + "AA"))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == -32602, refused.text
    done = post(modern_http.url, "tools/call", dict(retry, requestState=state))
    assert done.json()["result"]["content"][0]["text"] == "answer: accept ok=True state=round1:Proceed?"


def test_an_altered_plain_state_reaches_the_tool_as_bad_state(spawn) -> None:
    server = start_modern(spawn, "--plain-state")
    retry, state = ask_first_round(server.url)
    assert "round1:Proceed?" in state  # readable JSON envelope with --plain-state
    result = post(server.url, "tools/call", dict(retry, requestState=state.replace("round1:", "round2:"))).json()
    assert result["result"]["isError"] is True and result["result"]["content"][0]["text"] == "bad state", result


# ---------------------------------------------------------------------------------------------
# node_client.mjs against modern_server.py


def test_node_client_in_the_2026_era(modern_http) -> None:
    lines = node_client(
        modern_http.url,
        "list",
        'call:modern_echo:{"text":"hi"}',
        'call:modern_ask:{"question":"Proceed?"}',
        'call:modern_region:{"region":"eu","text":"t"}',
    )
    assert lines[0] == {"negotiated": MODERN, "era": "modern"}
    assert lines[1] == {"action": "list", "tools": sorted(TOOLS)}
    assert lines[2] == {"action": "call", "name": "modern_echo", "text": "modern:hi", "isError": False}
    assert lines[3]["text"] == "answer: accept ok=True state=round1:Proceed?", lines[3]
    assert lines[4]["text"] == "region=eu text=t", lines[4]


def test_node_client_in_the_legacy_era(modern_http) -> None:
    lines = node_client(modern_http.url, 'call:modern_ask:{"question":"Proceed?"}', mode="legacy")
    assert lines[0]["era"] == "legacy"
    assert lines[1]["text"] == "answer: accept ok=True state=legacy", lines[1]


def test_node_client_fails_clearly(tmp_path: Path) -> None:
    done = run_node_client(f"http://127.0.0.1:{free_port()}/mcp", "list")
    assert done.returncode == 1 and done.stderr.startswith("node_client: "), done

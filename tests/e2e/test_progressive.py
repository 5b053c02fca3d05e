"""Progressive endpoints: `search_tools`, `describe_tools` and `call_tool` instead of the tools.

Servers: npm server-everything (legacy era), PyPI mcp-server-time, the probe server
(tests/fixtures/probe_server.py, legacy; `grow` adds a tool at run time) and the 2026-07-28
fixture (tests/fixtures/modern_server.py over Streamable HTTP, so Gantry speaks 2026-07-28 to
it). Client: PyPI `mcp` 2.x `Client`, in both eras.

Endpoint `prog` (progressive) and `direct` (direct) publish the same view: the same servers,
`exclude`, and a rename with a new description of server-everything's `get-sum`, so what
`prog` does can be compared with what a direct call returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client, types

from conftest import MODERN, cancel_call, servers_toml, start_modern, texts, wait_for

pytestmark = pytest.mark.anyio

META = ["search_tools", "describe_tools", "call_tool"]
SUM_DESCRIPTION = "Adds the numbers a and b and states their sum."

VIEW = f"""
servers = ["everything", "time", "probe", "web"]
exclude = ["everything/trigger-*", "everything/toggle-*", "probe/pid"]
[endpoints.NAME.tools."everything/get-sum"]
name = "add_numbers"
description = "{SUM_DESCRIPTION}"
"""


@pytest.fixture
def gw(gantry, spawn, state_dir: Path):
    web = start_modern(spawn, "--state-dir", str(state_dir))
    return gantry(
        servers_toml(state_dir)
        + f'[servers.web]\nurl = "{web.url}"\n'
        + '[endpoints.prog]\nmode = "progressive"\n'
        + VIEW.replace("NAME", "prog")
        + "[endpoints.direct]\n"
        + VIEW.replace("NAME", "direct")
        # Also the long-running tool, for progress through call_tool.
        + '[endpoints.progress]\nservers = ["everything"]\nmode = "progressive"\n'
    )


def structured(result: types.CallToolResult) -> dict:
    """The meta-tool's structured result, checked against its JSON text."""
    assert result.structured_content is not None, result
    assert json.loads(texts(result)[0]) == result.structured_content
    return result.structured_content


def same(a: types.CallToolResult, b: types.CallToolResult) -> bool:
    """Equal results, but for the `_meta` serverInfo that names the endpoint (2026-07-28)."""
    return a.model_dump(exclude={"meta"}) == b.model_dump(exclude={"meta"})


async def search(c: Client, **args) -> list[dict]:
    r = await c.call_tool("search_tools", args)
    assert not r.is_error, r
    return structured(r)["tools"]


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
async def test_list_shows_only_the_meta_tools_and_the_rest_stays_direct(gw, mode: str) -> None:
    async with Client(gw.endpoint_url("prog"), mode=mode) as c, Client(gw.endpoint_url("direct"), mode=mode) as d:
        listed = (await c.list_tools()).tools
        assert [t.name for t in listed] == META
        for t in listed:
            assert "Example: {" in (t.description or ""), t
        servers = listed[0].input_schema["properties"]["server"]["enum"]
        assert servers == ["everything", "time", "probe", "web"]
        direct = (await d.list_tools()).tools
        assert len(direct) > 15, [t.name for t in direct]
        size = lambda tools: len(json.dumps([t.model_dump(mode="json", exclude_none=True) for t in tools]))  # noqa: E731
        print(f"tools/list: direct {size(direct)} bytes over {len(direct)} tools, progressive {size(listed)} bytes")
        # Prompts and resources are not affected by the mode.
        assert [p.name for p in (await c.list_prompts()).prompts] == [p.name for p in (await d.list_prompts()).prompts]
        assert [r.uri for r in (await c.list_resources()).resources] == [
            r.uri for r in (await d.list_resources()).resources
        ]


async def test_search_ranks_the_public_view(gw) -> None:
    async with Client(gw.endpoint_url("prog"), mode="legacy") as c:
        hits = await search(c, query="add two numbers")
        # The renamed tool, under its public name, with its server and hints.
        assert hits[0]["id"] == "add_numbers", hits
        assert hits[0]["server"] == "everything"
        assert hits[0]["description"] == SUM_DESCRIPTION
        assert hits[0]["readOnly"] is True and hits[0]["destructive"] is False
        assert 0 < hits[0]["score"] <= 1
        assert all(h["id"] != "everything__get-sum" for h in hits)

        hits = await search(c, query="current time in a timezone")
        assert hits[0]["id"] == "time__get_current_time" and hits[0]["server"] == "time", hits

        # The server filter: probe and server-everything both have an echo tool.
        assert {h["id"] for h in await search(c, query="echo a message")} >= {"everything__echo", "probe__echo"}
        assert [h["id"] for h in await search(c, query="echo a message", server="probe")] == ["probe__echo"]
        assert await search(c, query="echo a message", server="time") == []

        # Nonsense finds nothing, and says so.
        r = await c.call_tool("search_tools", {"query": "xqzvw blorf"})
        assert structured(r)["tools"] == [] and "No tool matches" in structured(r)["note"]

        # Excluded tools are not found.
        ids = {h["id"] for h in await search(c, query="long running operation progress", limit=50)}
        assert not any("trigger" in i for i in ids) and "probe__pid" not in ids, ids

        # Malformed search arguments are refused with the field named.
        r = await c.call_tool("search_tools", {"query": "time", "limit": "five"})
        assert r.is_error and 'limit: expected integer, got string "five"' in texts(r)[0], r


async def test_describe_returns_the_public_definitions(gw) -> None:
    async with Client(gw.endpoint_url("prog"), mode="legacy") as c, Client(gw.endpoint_url("direct"), mode="legacy") as d:
        direct = {t.name: t for t in (await d.list_tools()).tools}
        r = await c.call_tool("describe_tools", {"ids": ["add_numbers", "web__modern_echo", "nope"]})
        assert not r.is_error, r
        out = structured(r)
        add, echo = out["tools"]
        assert add["id"] == "add_numbers" and add["description"] == SUM_DESCRIPTION
        assert add["inputSchema"] == direct["add_numbers"].input_schema
        assert set(add["inputSchema"]["required"]) == {"a", "b"}
        assert add["annotations"]["readOnlyHint"] is True
        assert echo["id"] == "web__modern_echo" and echo["inputSchema"] == direct["web__modern_echo"].input_schema
        assert out["unknown"] == ["nope"]
        # Hidden and original names are unknown.
        r = await c.call_tool("describe_tools", {"ids": ["everything__get-sum", "probe__pid"]})
        assert r.is_error and 'unknown tool ids ["everything__get-sum","probe__pid"]' in texts(r)[0], r


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
async def test_call_reaches_the_server_and_returns_its_result(gw, mode: str) -> None:
    async with Client(gw.endpoint_url("prog"), mode=mode) as c, Client(gw.endpoint_url("direct"), mode=mode) as d:
        r = await c.call_tool("call_tool", {"id": "add_numbers", "arguments": {"a": 2, "b": 3}})
        assert not r.is_error and texts(r) == ["The sum of 2 and 3 is 5."], r
        r = await c.call_tool("call_tool", {"id": "web__modern_echo", "arguments": {"text": "hi"}})
        assert texts(r) == ["modern:hi"], r
        # Gantry adds the Mcp-Param-Region header the 2026-07-28 server requires.
        r = await c.call_tool("call_tool", {"id": "web__modern_region", "arguments": {"region": "Zürich", "text": "t"}})
        assert texts(r) == ["region=Zürich text=t"], r
        # The same result as a direct call, structured content included.
        via = await c.call_tool("call_tool", {"id": "everything__get-structured-content", "arguments": {"location": "New York"}})
        direct = await d.call_tool("everything__get-structured-content", {"location": "New York"})
        assert same(via, direct)
        assert via.structured_content and "temperature" in via.structured_content, via


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
async def test_schema_violations_are_refused_with_the_field_named(gw, mode: str) -> None:
    async with Client(gw.endpoint_url("prog"), mode=mode) as c:
        r = await c.call_tool("call_tool", {"id": "add_numbers", "arguments": {"a": "abc", "b": 1}})
        assert r.is_error, r
        text = texts(r)[0]
        assert '- arguments.a: expected number, got string "abc"' in text, text
        assert "nothing was sent" in text, text
        assert r.structured_content["errors"] == [{"pointer": "/a", "message": 'expected number, got string "abc"'}]

        r = await c.call_tool("call_tool", {"id": "probe__echo", "arguments": {}})
        assert r.is_error and "- arguments.message: required (string), missing" in texts(r)[0], r

        r = await c.call_tool("call_tool", {"id": "add_numbers", "arguments": '{"a": 1, "b": 2}'})
        assert r.is_error and "- arguments: expected object, got string" in texts(r)[0], r

        # An excluded tool and a tool's original name are unknown ids.
        for hidden in ("probe__pid", "everything__get-sum", "everything__trigger-long-running-operation"):
            r = await c.call_tool("call_tool", {"id": hidden, "arguments": {}})
            assert r.is_error and f'unknown tool id "{hidden}"' in texts(r)[0], r


async def test_the_servers_own_errors_come_back_unchanged(gw) -> None:
    async with Client(gw.endpoint_url("prog"), mode="legacy") as c, Client(gw.endpoint_url("direct"), mode="legacy") as d:
        # Valid for the schema (`format` is left to the server), refused by the server itself.
        args = {"data": "ftp://example.com/file.txt"}
        via = await c.call_tool("call_tool", {"id": "everything__gzip-file-as-resource", "arguments": args})
        direct = await d.call_tool("everything__gzip-file-as-resource", args)
        assert via.is_error and "Unsupported URL protocol" in texts(via)[0], via
        assert same(via, direct)


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
async def test_progress_and_input_required_work_through_call_tool(gw, mode: str) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(gw.endpoint_url("progress"), mode=mode) as c:
        r = await c.call_tool(
            "call_tool",
            {"id": "everything__trigger-long-running-operation", "arguments": {"duration": 1, "steps": 3}},
            progress_callback=on_progress,
        )
    assert not r.is_error and "completed" in texts(r)[0], r
    assert len(seen) >= 2, seen

    asked: list[str] = []

    async def elicit(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"ok": True})

    async with Client(gw.endpoint_url("prog"), mode=mode, elicitation_callback=elicit) as c:
        r = await c.call_tool("call_tool", {"id": "web__modern_ask", "arguments": {"question": "Proceed?"}})
    assert texts(r) == ["answer: accept ok=True state=round1:Proceed?"] and not r.is_error, r
    assert asked == ["Proceed?"]


@pytest.mark.parametrize("mode", [MODERN, "legacy"])
async def test_cancelling_call_tool_cancels_the_call_upstream(gw, state_dir: Path, mode: str) -> None:
    marker = f"progressive-{mode}"
    async with Client(gw.endpoint_url("prog"), mode=mode) as c:
        slow = {"id": "probe__slow", "arguments": {"seconds": 60, "marker": marker}}
        await cancel_call(lambda: c.call_tool("call_tool", slow), state_dir, marker)


async def test_auto_mode_follows_the_tool_count(gantry, state_dir: Path) -> None:
    # The probe server starts with 6 tools: direct at or under 6, progressive above.
    g = gantry(servers_toml(state_dir) + '[endpoints.auto]\nservers = ["probe"]\nmode = "auto"\nprogressive_above = 6\n')
    async with Client(g.endpoint_url("auto"), mode="legacy") as c:
        names = [t.name for t in (await c.list_tools()).tools]
        assert len(names) == 6 and "probe__grow" in names, names
        assert texts(await c.call_tool("probe__grow", {})) == ["grown_1"]

        async def progressive():
            return [t.name for t in (await c.list_tools()).tools] == META

        await wait_for(progressive, "the endpoint to turn progressive at 7 tools")
        hits = await search(c, query="tool added at run time")
        assert hits[0]["id"] == "probe__grown_1", hits
        r = await c.call_tool("call_tool", {"id": "probe__grown_1"})
        assert texts(r) == ["grown_1"], r
        # Calls by a tool's own name still work on a progressive endpoint.
        assert texts(await c.call_tool("probe__echo", {"message": "x"})) == ["probe: x"]

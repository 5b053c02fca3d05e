"""Gantry's core, end to end: real servers behind the gateway, real clients in front.

Servers: npm server-everything (stdio), PyPI mcp-server-time (stdio), a probe server written
with PyPI `mcp` 2.x (tests/fixtures/probe_server.py). Clients: PyPI `mcp` 2.x `Client` in
legacy mode over Streamable HTTP and SSE, and over stdio through `gantry stdio`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters, types
from mcp.client.sse import sse_client

from conftest import cancel_slow_call, exists, gantry_bin, servers_toml, texts, tool, wait_for

pytestmark = pytest.mark.anyio


async def test_legacy_client_sees_every_server_under_prefixed_names(main_gw) -> None:
    async with Client(main_gw.endpoint_url("main"), mode="legacy") as c:
        assert c.protocol_version == "2025-11-25"
        names = [t.name for t in (await c.list_tools()).tools]
        assert {"everything__echo", "time__get_current_time", "probe__echo", "probe__slow"} <= set(names), names
        assert len(names) == len(set(names))
        r = await c.call_tool("everything__echo", {"message": "via gantry"})
        assert texts(r) == ["Echo: via gantry"]
        r = await c.call_tool("probe__echo", {"message": "x"})
        assert texts(r) == ["probe: x"]
        r = await c.call_tool("time__get_current_time", {"timezone": "Europe/Paris"})
        assert "Europe/Paris" in texts(r)[0]


async def test_sse_front_serves_the_same_endpoint(main_gw) -> None:
    async with Client(sse_client(main_gw.endpoint_url("main") + "/sse"), mode="legacy") as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert "everything__echo" in names
        r = await c.call_tool("everything__echo", {"message": "over sse"})
        assert texts(r) == ["Echo: over sse"]


async def test_prompts_resources_and_completion_pass_through(main_gw) -> None:
    async with Client(main_gw.endpoint_url("main"), mode="legacy") as c:
        prompts = {p.name for p in (await c.list_prompts()).prompts}
        assert "everything__simple-prompt" in prompts, prompts
        got = await c.get_prompt("everything__simple-prompt", {})
        assert got.messages, got
        resources = (await c.list_resources()).resources
        assert resources, "server-everything lists resources"
        first = resources[0]
        read = await c.read_resource(first.uri)
        assert read.contents and str(read.contents[0].uri) == str(first.uri)
        templates = (await c.list_resource_templates()).resource_templates
        assert templates, "server-everything lists resource templates"
        with pytest.raises(Exception) as err:
            await c.read_resource("nope://nothing")
        assert err.value.error.code == -32002, err.value
        assert err.value.error.data == {"uri": "nope://nothing"}
        assert 'no server of endpoint "main" offers "nope://nothing"' in err.value.error.message


async def test_progress_notifications_reach_the_caller(main_gw) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with Client(main_gw.endpoint_url("main"), mode="legacy") as c:
        r = await c.call_tool(
            "everything__trigger-long-running-operation",
            {"duration": 1, "steps": 3},
            progress_callback=on_progress,
        )
        assert not r.is_error, r
    assert len(seen) >= 2, seen
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)


async def test_sampling_request_is_routed_to_the_client_that_caused_it(main_gw) -> None:
    asked: list[str] = []

    async def sampling(context, params: types.CreateMessageRequestParams):
        asked.append(str(params.messages[0].content))
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="sampled answer"), model="test-model"
        )

    async with Client(main_gw.endpoint_url("main"), mode="legacy", sampling_callback=sampling) as c:
        async def listed():
            return "everything__trigger-sampling-request" in {t.name for t in (await c.list_tools()).tools}

        await wait_for(listed, "the sampling tool to be listed")
        r = await c.call_tool("everything__trigger-sampling-request", {"prompt": "say hi", "maxTokens": 20})
        assert not r.is_error, r
        assert "sampled answer" in json.dumps([b.model_dump() for b in r.content])
    assert asked and "say hi" in asked[0]


async def test_elicitation_request_round_trips(main_gw) -> None:
    async def elicit(context, params):
        return types.ElicitResult(action="accept", content={"name": "Ada", "check": True, "email": "ada@example.com", "integer": 3, "number": 1.5, "untitledSingleSelectEnum": "option1"})

    async with Client(main_gw.endpoint_url("main"), mode="legacy", elicitation_callback=elicit) as c:
        async def listed():
            return "everything__trigger-elicitation-request" in {t.name for t in (await c.list_tools()).tools}

        await wait_for(listed, "the elicitation tool to be listed")
        r = await c.call_tool("everything__trigger-elicitation-request", {})
        dumped = json.dumps([b.model_dump() for b in r.content])
        assert "accept" in dumped.lower(), dumped


async def test_client_without_sampling_is_not_offered_the_sampling_tool(main_gw) -> None:
    async with Client(main_gw.endpoint_url("main"), mode="legacy") as c:
        # server-everything was told this client cannot sample, so it has no sampling tool,
        # and calling it anyway gets the gateway's unknown-tool error, not a hang.
        with pytest.raises(Exception) as err:
            await c.call_tool("everything__trigger-sampling-request", {"prompt": "x", "maxTokens": 5})
        assert 'unknown tool "everything__trigger-sampling-request" on endpoint "main"' in str(err.value)


async def test_cancellation_reaches_the_server(main_gw, state_dir: Path) -> None:
    async with Client(main_gw.endpoint_url("main"), mode="legacy") as c:
        await cancel_slow_call(c, state_dir, "c1")
        r = await c.call_tool("probe__echo", {"message": "still fine"})
        assert texts(r) == ["probe: still fine"]


async def test_list_changed_fans_in_and_out(main_gw) -> None:
    changed = anyio.Event()

    async def handler(message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with Client(main_gw.endpoint_url("main"), mode="legacy", message_handler=handler) as c:
        # Legacy clients receive unsolicited notifications on their GET stream.
        r = await c.call_tool("probe__grow", {})
        grown = texts(r)[0]
        with anyio.fail_after(20):
            await changed.wait()

        async def listed():
            return f"probe__{grown}" in {t.name for t in (await c.list_tools()).tools}

        await wait_for(listed, "the grown tool to be listed")
        r = await c.call_tool(f"probe__{grown}", {})
        assert texts(r) == [grown]


async def test_pagination_uses_gateway_cursors_across_servers(gantry, state_dir) -> None:
    gw = gantry(servers_toml(state_dir) + '[endpoints.paged]\nservers = ["everything", "time", "probe"]\npage_size = 4\n')
    async with Client(gw.endpoint_url("paged"), mode="legacy") as c:
        names: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await c.session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
            pages += 1
            assert len(page.tools) <= 4
            names += [t.name for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
        assert pages >= 4
        assert len(names) == len(set(names))
        assert {"everything__echo", "time__get_current_time", "probe__echo"} <= set(names)
        with pytest.raises(Exception) as err:
            await c.session.list_tools(params=types.PaginatedRequestParams(cursor="not-a-cursor"))
        assert "invalid cursor" in str(err.value)


async def test_priority_naming_keeps_bare_names_and_prefixes_the_loser(gantry, state_dir) -> None:
    gw = gantry(
        servers_toml(state_dir)
        + '[endpoints.p]\nservers = ["everything", "probe"]\nnaming = "priority"\npriority = ["probe", "everything"]\n'
    )
    async with Client(gw.endpoint_url("p"), mode="legacy") as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert {"echo", "everything__echo", "slow", "get-sum"} <= names, names
        assert texts(await c.call_tool("echo", {"message": "m"})) == ["probe: m"]
        assert texts(await c.call_tool("everything__echo", {"message": "m"})) == ["Echo: m"]


async def test_manual_naming_refuses_to_start_on_a_clash_and_accepts_an_override(gantry, state_dir, tmp_path) -> None:
    base = servers_toml(state_dir) + '[endpoints.m]\nservers = ["everything", "probe"]\nnaming = "manual"\n'
    cfg = tmp_path / "manual.toml"
    cfg.write_text('listen = "127.0.0.1:0"\n' + base)
    proc = subprocess.run([str(gantry_bin()), "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc
    assert 'tool name "echo" is claimed by everything/echo and probe/echo' in proc.stderr, proc.stderr
    assert '[endpoints.<name>.tools."probe/echo"]' in proc.stderr

    gw = gantry(base + '[endpoints.m.tools."probe/echo"]\nname = "probe_echo"\n')
    async with Client(gw.endpoint_url("m"), mode="legacy") as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert {"echo", "probe_echo", "get-sum"} <= names
        assert texts(await c.call_tool("probe_echo", {"message": "z"})) == ["probe: z"]


async def test_filters_and_overrides_shape_the_endpoint(gantry, state_dir) -> None:
    gw = gantry(
        servers_toml(state_dir)
        + """[endpoints.f]
servers = ["everything", "probe"]
include = ["everything/*", "probe/echo"]
exclude = ["everything/trigger-*"]
[endpoints.f.tools."everything/echo"]
name = "shout"
description = "Echo, renamed"
annotations = { readOnlyHint = true }
"""
    )
    async with Client(gw.endpoint_url("f"), mode="legacy") as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert "shout" in tools and "everything__echo" not in tools
        assert tools["shout"].description == "Echo, renamed"
        assert tools["shout"].annotations.read_only_hint is True
        assert "probe__echo" in tools and "probe__slow" not in tools
        assert not any(n.startswith("everything__trigger-") for n in tools)
        assert texts(await c.call_tool("shout", {"message": "r"})) == ["Echo: r"]
        with pytest.raises(Exception) as err:
            await c.session.call_tool("probe__slow", {"seconds": 0, "marker": "h"})
        assert "unknown tool" in str(err.value)


async def test_server_killed_mid_call_fails_fast_then_recovers(main_gw, state_dir) -> None:
    async with Client(main_gw.endpoint_url("main"), mode="legacy") as c:
        pid = int(texts(await c.call_tool("probe__pid", {}))[0])
        async with anyio.create_task_group() as tg:
            outcome: dict = {}

            async def call() -> None:
                try:
                    outcome["result"] = await c.session.call_tool("probe__slow", {"seconds": 60, "marker": "k1"})
                except Exception as e:  # the gateway answers with a JSON-RPC error
                    outcome["error"] = str(e)

            tg.start_soon(call)
            await wait_for(lambda: exists(state_dir / "k1.started"), "the slow call to start")
            os.kill(pid, signal.SIGKILL)
        assert "error" in outcome, outcome
        assert "probe" in outcome["error"], outcome

        async def echo_works():
            try:
                return texts(await c.session.call_tool("probe__echo", {"message": "back"})) == ["probe: back"]
            except Exception:
                return False

        await wait_for(echo_works, "the probe server to be restarted")
        new_pid = int(texts(await c.call_tool("probe__pid", {}))[0])
        assert new_pid != pid
        assert texts(await c.call_tool("everything__echo", {"message": "others fine"})) == ["Echo: others fine"]


async def test_gantry_stdio_serves_one_endpoint(state_dir, tmp_path) -> None:
    cfg = tmp_path / "stdio.toml"
    # `other` has an unresolved manual-naming clash: it would refuse to start, but only the
    # endpoint served on stdio (and its servers) is started.
    cfg.write_text(
        servers_toml(state_dir)
        + '[endpoints.main]\nservers = ["everything", "time"]\n'
        + '[endpoints.other]\nservers = ["everything", "probe"]\nnaming = "manual"\n'
    )
    unknown = subprocess.run(
        [str(gantry_bin()), "stdio", "--config", str(cfg), "--endpoint", "nope"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert unknown.returncode == 2 and 'unknown endpoint "nope": the config defines [main, other]' in unknown.stderr
    params = StdioServerParameters(command=str(gantry_bin()), args=["stdio", "--config", str(cfg), "--endpoint", "main"])
    async with Client(params, mode="legacy") as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert {"everything__echo", "time__get_current_time"} <= names
        assert texts(await c.call_tool("everything__echo", {"message": "stdio"})) == ["Echo: stdio"]


def test_bad_input_gets_precise_errors_and_the_gateway_keeps_serving(main_gw) -> None:
    url = main_gw.endpoint_url("main")
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    with httpx.Client(timeout=30, trust_env=False) as http:
        r = http.post(url, headers=h, content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        r = http.post(url, headers=h, json={"jsonrpc": "2.0", "id": 2, "method": 5})
        assert r.status_code == 400 and r.json()["error"]["code"] == -32600 and r.json()["id"] == 2
        r = http.post(url, headers=h, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
        assert r.status_code == 400 and "Mcp-Session-Id" in r.json()["error"]["message"]
        r = http.post(url, headers={**h, "mcp-session-id": "unknown"}, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
        assert r.status_code == 404
        r = http.post(url, headers={**h, "origin": "http://evil.example"}, json=init)
        assert r.status_code == 403
        r = http.post(url, headers=h, content=b"[" + b" " * (5 * 1024 * 1024) + b"]")
        assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]["message"]
        r = http.post(main_gw.base_url + "/mcp/nope", headers=h, json=init)
        assert r.status_code == 404 and "main" in r.text
        r = http.post(url, headers={**h, "mcp-protocol-version": "1999-01-01"}, json=init)
        assert r.status_code == 400
        r = http.post(url, headers=h, json=init)
        assert r.status_code == 200
        sid = r.headers["mcp-session-id"]
        s = {**h, "mcp-session-id": sid}
        r = http.post(url, headers=s, json={"jsonrpc": "2.0", "id": 4, "method": "no/such/method"})
        assert r.json()["error"]["code"] == -32601
        r = http.post(url, headers=s, json={"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "nope", "arguments": {}}})
        assert r.json()["error"]["code"] == -32602 and "unknown tool" in r.json()["error"]["message"]
        r = http.post(url, headers=s, json={"jsonrpc": "2.0", "id": 6, "method": "ping"})
        assert r.json() == {"jsonrpc": "2.0", "id": 6, "result": {}}
        r = http.delete(url, headers=s)
        assert r.status_code == 200
        r = http.post(url, headers=s, json={"jsonrpc": "2.0", "id": 7, "method": "ping"})
        assert r.status_code == 404
        assert http.get(main_gw.base_url + "/healthz").status_code == 200


def test_inspector_cli_lists_and_calls_through_gantry(main_gw, tmp_path) -> None:
    url = main_gw.endpoint_url("main")
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run([tool("mcp-inspector"), "--cli", url, "--transport", "http", "--method", "tools/list"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "everything__echo" in out.stdout
    out = subprocess.run(
        [tool("mcp-inspector"), "--cli", url, "--transport", "http", "--method", "tools/call", "--tool-name", "everything__echo", "--tool-arg", "message=inspected"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "Echo: inspected" in out.stdout
    out = subprocess.run(
        [tool("mcp-inspector"), "--cli", url + "/sse", "--method", "prompts/list"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "everything__simple-prompt" in out.stdout


def http_servers_toml(everything_http, everything_sse) -> str:
    return f"""
[servers.remote]
url = "{everything_http.url}"
[servers.legacy]
url = "{everything_sse.url}"
transport = "sse"
[endpoints.web]
servers = ["remote", "legacy"]
"""


async def test_http_and_sse_upstreams_behind_one_endpoint(gantry, everything_http, everything_sse) -> None:
    gw = gantry(http_servers_toml(everything_http, everything_sse))
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async def sampling(context, params):
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="from the client"), model="m"
        )

    async with Client(gw.endpoint_url("web"), mode="legacy", sampling_callback=sampling) as c:
        # server-everything adds its sampling tool after `initialized` and announces it with
        # list_changed, which the gateway follows: wait for it as a client would.
        wanted = {"remote__echo", "legacy__echo", "remote__trigger-sampling-request", "legacy__trigger-sampling-request"}

        async def all_listed():
            return wanted <= {t.name for t in (await c.list_tools()).tools}

        await wait_for(all_listed, f"{wanted} to be listed")
        assert texts(await c.call_tool("remote__echo", {"message": "http"})) == ["Echo: http"]
        assert texts(await c.call_tool("legacy__echo", {"message": "sse"})) == ["Echo: sse"]
        r = await c.call_tool("remote__trigger-long-running-operation", {"duration": 1, "steps": 3}, progress_callback=on_progress)
        assert not r.is_error
        assert len(seen) >= 2, seen
        for server in ("remote", "legacy"):
            r = await c.call_tool(f"{server}__trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
            assert "from the client" in json.dumps([b.model_dump() for b in r.content]), (server, r)
        resources = (await c.list_resources()).resources
        read = await c.read_resource(resources[0].uri)
        assert read.contents


async def test_a_dead_http_server_does_not_block_the_endpoint(gantry, everything_http) -> None:
    from conftest import free_port

    gw = gantry(
        f"""
[servers.alive]
url = "{everything_http.url}"
[servers.dead]
url = "http://127.0.0.1:{free_port()}/mcp"
connect_timeout = 2
[endpoints.mixed]
servers = ["alive", "dead"]
"""
    )
    async with Client(gw.endpoint_url("mixed"), mode="legacy") as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert "alive__echo" in names and not any(n.startswith("dead__") for n in names)
        assert texts(await c.call_tool("alive__echo", {"message": "ok"})) == ["Echo: ok"]
        with pytest.raises(Exception) as err:
            await c.session.call_tool("dead__anything", {})
        assert "server dead is unavailable" in str(err.value), err.value


async def test_a_restarted_http_server_is_initialized_again(gantry, spawn) -> None:
    from conftest import free_port

    port = free_port()

    def start_server():
        proc = spawn([tool("mcp-server-everything"), "streamableHttp"], name="everything-http", env={"PORT": str(port)})
        proc.wait_for_port(port)
        return proc

    first = start_server()
    gw = gantry(f'[servers.remote]\nurl = "http://127.0.0.1:{port}/mcp"\n[endpoints.r]\nservers = ["remote"]\n')
    async with Client(gw.endpoint_url("r"), mode="legacy") as c:
        assert texts(await c.call_tool("remote__echo", {"message": "one"})) == ["Echo: one"]
        first.stop()
        start_server()

        async def echo_works():
            try:
                return texts(await c.session.call_tool("remote__echo", {"message": "two"})) == ["Echo: two"]
            except Exception:
                return False

        await wait_for(echo_works, "the gateway to initialize the restarted server again")


async def test_servers_see_the_capabilities_each_client_declared(main_gw) -> None:
    async def sampling(context, params):
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="x"), model="m")

    async def roots(context):
        return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/project", name="project")])

    async def caps_seen(client) -> dict:
        r = await client.call_tool("probe__client_caps", {})
        assert not r.is_error, r
        return json.loads(texts(r)[0])

    async with (
        Client(main_gw.endpoint_url("main"), mode="legacy") as plain,
        Client(main_gw.endpoint_url("main"), mode="legacy", sampling_callback=sampling) as sampler,
        Client(main_gw.endpoint_url("main"), mode="legacy", list_roots_callback=roots) as rooted,
    ):
        assert await caps_seen(plain) == {}
        assert await caps_seen(sampler) == {"sampling": {}}
        assert await caps_seen(rooted) == {"roots": {"listChanged": True}}
        # server-everything offers its sampling tool only to clients that declared sampling.
        assert "everything__trigger-sampling-request" in {t.name for t in (await sampler.list_tools()).tools}
        assert "everything__trigger-sampling-request" not in {t.name for t in (await plain.list_tools()).tools}
        # A roots request from the server reaches the client that declared roots.
        r = await rooted.call_tool("everything__get-roots-list", {})
        assert "file:///tmp/project" in json.dumps([b.model_dump() for b in r.content]), r


async def test_a_server_cancelling_its_question_cancels_it_at_the_client(main_gw) -> None:
    asked = anyio.Event()
    withdrawn = anyio.Event()

    async def elicit(context, params):
        asked.set()
        try:
            await anyio.sleep_forever()
        finally:
            withdrawn.set()

    async with Client(main_gw.endpoint_url("main"), mode="legacy", elicitation_callback=elicit) as c:
        r = await c.call_tool("probe__ask_then_give_up", {"seconds": 1})
        assert texts(r) == ["gave up"], r
        assert asked.is_set()
        with anyio.fail_after(10):
            await withdrawn.wait()

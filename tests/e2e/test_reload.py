"""Hot reload, end to end: editing the config of a running `gantry serve` (file watch, SIGHUP,
`POST /admin/api/v1/config/reload`) applies the difference without dropping sessions.

Servers: npm server-everything (stdio) and PyPI mcp-server-time (stdio). Client: PyPI `mcp`
2.x `Client` in legacy mode (its session and GET stream stay open across reloads). Processes
are inspected through /proc: a stdio server runs in its own process group, so "no leftover
processes" means no live process left in that group.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, types

from conftest import control_key, live_pids, poll, proc_cmdline, proc_stat, texts, tool, wait_for

pytestmark = pytest.mark.anyio

BASE = "/admin/api/v1"


def time_server() -> str:
    return f"""
[servers.time]
command = "{tool('mcp-server-time')}"
args = ["--local-timezone", "UTC"]
"""


def everything_server(extra: str = "") -> str:
    return f"""
[servers.everything]
command = "{tool('mcp-server-everything')}"
args = ["stdio"]
{extra}
"""


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in the config"
    path.write_text(text.replace(old, new))


def log(gw) -> str:
    return gw.proc.stderr_path.read_text(errors="replace")


def server_groups(gantry_pid: int, marker: str) -> set[int]:
    """Process groups of gantry's children whose command line contains `marker`."""
    groups = set()
    for pid in live_pids():
        st = proc_stat(pid)
        if st is not None and st[0] != "Z" and st[1] == gantry_pid and marker in proc_cmdline(pid):
            groups.add(st[2])
    return groups


def group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is in process group `pgid`."""
    for pid in live_pids():
        st = proc_stat(pid)
        if st is not None and st[2] == pgid and st[0] != "Z":
            return True
    return False


def reloads_in_log(gw) -> list[str]:
    return [line for line in log(gw).splitlines() if "config reloaded" in line or "config reload rejected" in line]


def wait_for_reload(gw, count: int, timeout: float = 30.0) -> str:
    """Waits until the log holds `count` reload outcomes; returns the last."""
    return poll(lambda: len(reloads_in_log(gw)) >= count and reloads_in_log(gw)[count - 1], f"reload #{count}", timeout)


async def test_a_session_survives_a_reload_that_adds_a_server_and_hears_list_changed(gantry) -> None:
    gw = gantry(time_server() + '[endpoints.main]\nservers = ["time"]\n')
    changed = anyio.Event()

    async def handler(message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with Client(gw.endpoint_url("main"), mode="legacy", message_handler=handler) as c:
        before = {t.name for t in (await c.list_tools()).tools}
        assert "time__get_current_time" in before
        assert not any(n.startswith("everything__") for n in before)

        # Add server-everything to the endpoint: the file watch picks the edit up.
        text = gw.config_path.read_text().replace('servers = ["time"]', 'servers = ["time", "everything"]')
        gw.config_path.write_text(text + everything_server())
        line = wait_for_reload(gw, 1)
        assert "servers added: everything" in line and "endpoints changed: main (servers)" in line, line
        assert 'trigger="file"' in line, line

        with anyio.fail_after(30):
            await changed.wait()

        async def listed():
            return "everything__echo" in {t.name for t in (await c.list_tools()).tools}

        await wait_for(listed, "server-everything's tools on the same session")
        r = await c.call_tool("everything__echo", {"message": "after reload"})
        assert texts(r) == ["Echo: after reload"]
        r = await c.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not r.is_error


async def test_removing_a_stdio_server_stops_its_process_group(gantry) -> None:
    gw = gantry(time_server() + everything_server() + '[endpoints.main]\nservers = ["time", "everything"]\n')
    async with Client(gw.endpoint_url("main"), mode="legacy") as c:
        r = await c.call_tool("everything__echo", {"message": "hi"})
        assert texts(r) == ["Echo: hi"]
        groups = server_groups(gw.proc.pid, "mcp-server-everything")
        assert len(groups) == 1, groups
        (pgid,) = groups
        time_groups = server_groups(gw.proc.pid, "mcp-server-time")
        assert len(time_groups) == 1, time_groups

        edit(gw.config_path, 'servers = ["time", "everything"]', 'servers = ["time"]')
        edit(gw.config_path, everything_server(), "")
        line = wait_for_reload(gw, 1)
        assert "servers removed: everything" in line, line

        poll(lambda: not group_alive(pgid), f"server-everything's process group {pgid} to end", timeout=20)
        assert server_groups(gw.proc.pid, "mcp-server-everything") == set()
        # The other server kept its process and its connection.
        assert server_groups(gw.proc.pid, "mcp-server-time") == time_groups
        r = await c.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not r.is_error
        names = {t.name for t in (await c.list_tools()).tools}
        assert not any(n.startswith("everything__") for n in names), names
        with pytest.raises(Exception) as err:
            await c.call_tool("everything__echo", {"message": "gone"})
        assert "everything__echo" in str(err.value)
    assert "server stopped: removed from the config by a reload" in log(gw)


async def test_an_invalid_edit_is_rejected_with_its_location_and_the_old_config_keeps_serving(
    gantry, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    key = control_key(data)
    gw = gantry(f'data_dir = "{data}"\n' + time_server() + '[endpoints.main]\nservers = ["time"]\n')
    api = httpx.Client(base_url=gw.base_url + BASE, trust_env=False, timeout=30, headers={"Authorization": f"Bearer {key}"})

    state = api.get("/config").json()
    assert state["source"] == str(gw.config_path)
    assert state["servers"] == ["time"] and state["last_reload"] is None

    async with Client(gw.endpoint_url("main"), mode="legacy") as c:
        # A typo'd key: `comand`.
        edit(gw.config_path, "command = ", "comand = ")
        typo_line = next(i for i, l in enumerate(gw.config_path.read_text().splitlines(), 1) if l.startswith("comand"))
        line = wait_for_reload(gw, 1)
        assert "ERROR" in line and "config reload rejected" in line, line
        assert f"{gw.config_path}:{typo_line}:" in line and "comand" in line, line
        last = api.get("/config").json()["last_reload"]
        assert last["ok"] is False and last["trigger"] == "file"
        assert last["error"]["file"] == str(gw.config_path)
        assert last["error"]["line"] == typo_line
        assert "comand" in last["error"]["message"]

        # The old config keeps serving the same session.
        r = await c.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not r.is_error

        # A bad value, through the admin endpoint: 422 with the located error.
        edit(gw.config_path, "comand = ", "command = ")
        edit(gw.config_path, "[servers.time]", "[servers.time]\nrequest_timeout = -3")
        r = api.post("/config/reload")
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["error"]["code"] == "invalid_config"
        assert body["reload"]["error"]["field"] == "servers.time.request_timeout", body
        assert body["reload"]["error"]["line"] is not None
        assert "stays in force" in body["error"]["message"]
        r = await c.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not r.is_error

        # Fixed: applied, and the diff comes back.
        edit(gw.config_path, "request_timeout = -3", "request_timeout = 30")
        r = api.post("/config/reload")
        assert r.status_code == 200, r.text
        applied = r.json()["applied"]
        assert applied["servers"]["changed"] == {"time": ["request_timeout"]}, applied
        assert applied["endpoints"]["changed"] == {"main": ["server time restarted"]}, applied

        async def works():
            r = await c.call_tool("time__get_current_time", {"timezone": "UTC"})
            return not r.is_error

        await wait_for(works, "the restarted time server to answer on the same session")
    assert api.get("/config").json()["last_reload"]["ok"] is True


async def test_sighup_reloads(gantry) -> None:
    gw = gantry(time_server() + '[endpoints.main]\nservers = ["time"]\n')
    os.kill(gw.proc.pid, signal.SIGHUP)
    line = wait_for_reload(gw, 1)
    assert 'trigger="signal"' in line and "no change" in line, line
    assert gw.proc.alive(), "SIGHUP does not end the gateway"

    # An edit followed at once by SIGHUP: the signal applies it before the file watch (which
    # waits for the file to look the same on two polls) would.
    gw.config_path.write_text(gw.config_path.read_text() + '[endpoints.second]\nservers = ["time"]\n')
    os.kill(gw.proc.pid, signal.SIGHUP)
    line = wait_for_reload(gw, 2)
    assert 'trigger="signal"' in line and "endpoints added: second" in line, line
    async with Client(gw.endpoint_url("second"), mode="legacy") as c:
        r = await c.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not r.is_error


async def test_removed_endpoints_close_their_sessions_with_a_clear_404(gantry) -> None:
    gw = gantry(time_server() + '[endpoints.main]\nservers = ["time"]\n[endpoints.old]\nservers = ["time"]\n')
    async with Client(gw.endpoint_url("main"), mode="legacy") as keep:
        http = httpx.Client(trust_env=False, timeout=10)
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        }
        headers = {"Accept": "application/json, text/event-stream"}
        r = http.post(gw.endpoint_url("old"), json=init, headers=headers)
        assert r.status_code == 200
        sid = r.headers["mcp-session-id"]

        edit(gw.config_path, '[endpoints.old]\nservers = ["time"]\n', "")
        line = wait_for_reload(gw, 1)
        assert "endpoints removed: old" in line, line
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        r = http.post(gw.endpoint_url("old"), json=ping, headers={**headers, "mcp-session-id": sid})
        assert r.status_code == 404
        assert "removed from the config by a reload" in r.text, r.text
        # The other endpoint's session is untouched.
        r = await keep.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not r.is_error


async def test_a_reload_during_a_stream_of_calls_loses_no_answered_call(gantry) -> None:
    gw = gantry(time_server() + everything_server() + '[endpoints.main]\nservers = ["time", "everything"]\n')
    async with Client(gw.endpoint_url("main"), mode="legacy") as c:
        await c.call_tool("everything__echo", {"message": "warm"})
        (old_group,) = server_groups(gw.proc.pid, "mcp-server-everything")
        answered = 0
        failures: list[str] = []
        stop = anyio.Event()

        async def calls() -> None:
            nonlocal answered
            while not stop.is_set():
                try:
                    r = await c.call_tool("time__get_current_time", {"timezone": "UTC"})
                except Exception as e:  # noqa: BLE001 - every failure is a lost call
                    failures.append(repr(e))
                    continue
                if r.is_error:
                    failures.append(json.dumps(texts(r)))
                else:
                    answered += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(calls)

            async def some(n: int):
                return answered >= n

            await wait_for(lambda: some(20), "calls to flow")
            # Change an unrelated server (restart) and add another endpoint, twice.
            edit(gw.config_path, 'args = ["stdio"]\n', 'args = ["stdio"]\nenv = { RELOAD_GENERATION = "1" }\n')
            line = await anyio.to_thread.run_sync(wait_for_reload, gw, 1)
            assert "servers restarted: everything (env)" in line, line
            mark = answered
            await wait_for(lambda: some(mark + 20), "calls to keep flowing after the reload")
            gw.config_path.write_text(gw.config_path.read_text() + '[endpoints.more]\nservers = ["everything"]\n')
            line = await anyio.to_thread.run_sync(wait_for_reload, gw, 2)
            assert "endpoints added: more" in line, line
            mark = answered
            await wait_for(lambda: some(mark + 20), "calls to keep flowing after the second reload")
            stop.set()
        assert failures == [], failures
        assert answered >= 60

        # The replaced server-everything's process group ended; exactly one runs now.
        poll(lambda: not group_alive(old_group), "the replaced server-everything to end", timeout=20)
        groups = server_groups(gw.proc.pid, "mcp-server-everything")
        assert len(groups) == 1 and old_group not in groups, groups
        r = await c.call_tool("everything__echo", {"message": "restarted"})
        assert texts(r) == ["Echo: restarted"]

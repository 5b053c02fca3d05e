"""Fault injection with real processes: a faulty server and a healthy one behind one endpoint.

Faulty server: tests/fixtures/fault_server.py (stdio, or a minimal Streamable HTTP server),
which hangs on initialize or on a call, streams progress forever, writes garbage to stdout,
crashes mid-call or in a loop, ignores SIGTERM, starts a grandchild, and over HTTP drops the
connection, answers 500 or answers slowly. Healthy server: npm server-everything (stdio).
Client: raw JSON-RPC over Streamable HTTP (httpx), to see the exact error codes.

After every test Gantry gets SIGTERM and must exit cleanly, leaving no process behind: every
process Gantry started carries a tag in its environment (inherited by grandchildren, also
after they are orphaned), and none may be alive once Gantry has exited; none of Gantry's
children may ever be a zombie. All waits are bounded polls on a real condition.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import anyio
import httpx
import pytest

from conftest import FIXTURES_DIR, free_port, live_pids, poll, proc_read, proc_stat, tagged, tool, wait_for

pytestmark = pytest.mark.anyio

FAULT = FIXTURES_DIR / "fault_server.py"

UNAVAILABLE, TIMEOUT, CLOSED, BUSY = -32010, -32011, -32012, -32013

# Every request of the client has this deadline, and the faulty servers' own request and
# connect timeouts are far beyond it: an answer that came at all came from the fault itself (a
# refusal, a crash, a tool's timeout); a gateway that waited out a server's timeout (or hung)
# fails the call instead of answering late. No test puts an upper bound on how long an answer took.
CLIENT_TIMEOUT = 60.0
FAULT_TIMEOUT = 600.0


# ---------------------------------------------------------------------------------------------
# processes


def zombie_children(pid: int) -> list[int]:
    out = []
    for child in live_pids():
        s = proc_stat(child)
        if s and s[1] == pid and s[0] == "Z":
            out.append(child)
    return out


def rss_kb(pid: int) -> int:
    for line in proc_read(pid, "status").decode().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


# ---------------------------------------------------------------------------------------------
# a raw legacy session


class Session:
    """A legacy (2025-11-25) session over Streamable HTTP, with raw JSON-RPC."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.AsyncClient(timeout=CLIENT_TIMEOUT, trust_env=False)
        self.sid: str | None = None
        self.next_id = 0

    async def __aenter__(self) -> "Session":
        init = await self.request("initialize", {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "fault-test", "version": "1"}})
        assert "result" in init, init
        await self.http.post(self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                             headers=self.headers())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.aclose()

    def headers(self) -> dict:
        h = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        if self.sid:
            h["Mcp-Session-Id"] = self.sid
        return h

    async def request(self, method: str, params: dict | None = None, seen: list | None = None) -> dict:
        """The JSON-RPC response, within CLIENT_TIMEOUT (a stream of progress that never ends
        fails too); messages before it (progress) go to `seen`."""
        with anyio.fail_after(CLIENT_TIMEOUT):
            return await self._request(method, params, seen)

    async def _request(self, method: str, params: dict | None, seen: list | None) -> dict:
        self.next_id += 1
        rid = self.next_id
        body = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            body["params"] = params
        async with self.http.stream("POST", self.url, json=body, headers=self.headers()) as resp:
            self.sid = resp.headers.get("mcp-session-id", self.sid)
            if resp.headers.get("content-type", "").startswith("text/event-stream"):
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    msg = json.loads(line[5:])
                    if msg.get("id") == rid and ("result" in msg or "error" in msg):
                        return msg
                    if seen is not None:
                        seen.append(msg)
                raise AssertionError(f"the response stream of {method} ended without an answer")
            return json.loads(await resp.aread())

    async def call(self, name: str, args: dict | None = None, **kw) -> tuple[dict, float]:
        """(response, seconds it took)."""
        t0 = time.monotonic()
        r = await self.request("tools/call", {"name": name, "arguments": args or {}}, **kw)
        return r, time.monotonic() - t0

    async def text(self, name: str, args: dict | None = None) -> str:
        r, _ = await self.call(name, args)
        assert "result" in r, r
        return r["result"]["content"][0]["text"]

    async def tool_names(self) -> set[str]:
        r = await self.request("tools/list")
        return {t["name"] for t in r["result"]["tools"]}


def error_of(r: dict) -> tuple[int, str]:
    assert "error" in r, f"expected an error, got {r}"
    return r["error"]["code"], r["error"]["message"]


async def healthy(s: Session) -> None:
    """The healthy server answers (the faulty one never holds it up: see CLIENT_TIMEOUT)."""
    r, _ = await s.call("everything__echo", {"message": "still here"})
    assert r["result"]["content"][0]["text"] == "Echo: still here", r


async def listed(s: Session, *, want: set[str] = frozenset()) -> set[str]:
    """tools/list answers (without waiting for a faulty server: see CLIENT_TIMEOUT)."""
    names = await s.tool_names()
    assert "everything__echo" in names
    assert want <= names, (want, names)
    return names


# ---------------------------------------------------------------------------------------------
# the gateway, with the leak check at the end


class Gw:
    def __init__(self, g, tag: str, state: Path) -> None:
        self.g = g
        self.tag = tag
        self.state = state
        self.url = g.endpoint_url("main")
        self.checked = False

    @property
    def pid(self) -> int:
        return self.g.proc.pid

    def logs(self) -> str:
        return self.g.proc.stderr_path.read_text(errors="replace")

    def servers(self) -> list[tuple[int, str]]:
        return [p for p in tagged("GANTRY_FAULT_TAG", self.tag) if p[0] != self.pid]

    def terminate(self, timeout: float = 20.0) -> float:
        """SIGTERM; waits for the exit (bounded), checks it was clean and left nothing."""
        t0 = time.monotonic()
        self.g.proc.popen.send_signal(signal.SIGTERM)
        rc = self.g.proc.popen.wait(timeout=timeout)
        took = time.monotonic() - t0
        self.checked = True
        assert rc == 0, f"gantry exited with {rc}\n{self.logs()[-4000:]}"
        left = self.servers()
        assert not left, f"processes left behind after gantry exited: {left}"
        return took

    def no_zombies(self) -> None:
        """No child of gantry stays a zombie. One killed a moment ago (a crash loop kills on
        its own schedule) may still wait for its reaping: each one seen must be gone soon."""
        seen = set(zombie_children(self.pid))
        if seen:
            poll(lambda: not seen & set(zombie_children(self.pid)),
                 f"gantry to reap its zombie children {sorted(seen)}", timeout=10,
                 describe=lambda: f"zombies now: {zombie_children(self.pid)}")


@pytest.fixture
def start(gantry, tmp_path):
    """`start(servers_toml, top="") -> Gw`: Gantry with endpoint `main` over every server."""
    started: list[Gw] = []

    def run(servers: str, top: str = "") -> Gw:
        tag = uuid.uuid4().hex
        state = tmp_path / f"state-{len(started)}"
        state.mkdir()
        text = top + "\n" + servers.replace("@STATE@", str(state)) + "\n[endpoints.main]\n"
        g = gantry(text, env={"GANTRY_FAULT_TAG": tag, "RUST_LOG": "info,gantry::upstream::stderr=warn"})
        gw = Gw(g, tag, state)
        started.append(gw)
        return gw

    yield run
    for gw in started:
        if not gw.checked and gw.g.proc.alive():
            gw.no_zombies()
            gw.terminate()


def everything() -> str:
    return f"""
[servers.everything]
command = "{tool('mcp-server-everything')}"
args = ["stdio"]
"""


def faulty(*flags: str, extra: str = "", name: str = "faulty") -> str:
    args = ", ".join(json.dumps(a) for a in [str(FAULT), "--state-dir", "@STATE@", *flags])
    connect = "" if "connect_timeout" in extra else f"connect_timeout = {FAULT_TIMEOUT:g}"
    return f"""
[servers.{name}]
command = "{sys.executable}"
args = [{args}]
request_timeout = {FAULT_TIMEOUT:g}
{connect}
{extra}
"""


async def ready(gw: Gw, *, want: set[str]) -> Session:
    s = await Session(gw.url).__aenter__()

    async def all_listed():
        return want <= await s.tool_names()

    await wait_for(all_listed, f"tools {sorted(want)} to be listed", timeout=30)
    return s


# ---------------------------------------------------------------------------------------------
# the tests


async def test_a_server_hanging_on_initialize_never_stalls_the_others(start) -> None:
    gw = start(everything() + faulty("--hang-initialize", "--spawn-child", extra="connect_timeout = 1"))
    s = await ready(gw, want={"everything__echo"})
    try:
        await listed(s)
        r, _ = await s.call("faulty__echo", {"message": "x"})
        code, msg = error_of(r)
        assert code == UNAVAILABLE and msg.startswith("server faulty is unavailable: "), r
        # It is retried with backoff, reported as crash-looping, and each hung attempt is
        # ended (its process group too) before long.
        await wait_for(lambda: "server is crash-looping: 3 failures in a row" in gw.logs(), "the crash-loop report", 30)
        r, _ = await s.call("faulty__echo", {"message": "x"})
        code, msg = error_of(r)
        assert "no answer to server/discover or initialize within 1s" in msg, msg
        assert "crash loop: " in msg and "failures in a row, next attempt in" in msg, msg
        running = [p for p in gw.servers() if "fault_server.py" in p[1]]
        assert len(running) <= 2, running
        gw.no_zombies()
        await healthy(s)
        await listed(s)
    finally:
        await s.__aexit__()


async def test_a_call_that_hangs_times_out_per_tool_and_is_cancelled_upstream(start) -> None:
    gw = start(everything() + faulty(extra='[servers.faulty.tools.hang]\ntimeout = "1s"'))
    s = await ready(gw, want={"everything__echo", "faulty__hang"})
    try:
        outcome = {}

        async def hang():
            outcome["r"], outcome["took"] = await s.call("faulty__hang", {"marker": "h1"})

        async with anyio.create_task_group() as tg:
            tg.start_soon(hang)
            await wait_for(lambda: (gw.state / "h1.started").exists(), "the hanging call to reach the server")
            await healthy(s)
            await listed(s)
        code, msg = error_of(outcome["r"])
        assert code == TIMEOUT, outcome
        assert msg == 'server faulty did not answer tools/call (tool "hang") within 1s; the request was cancelled', msg
        assert outcome["took"] > 0.9, outcome  # at its 1 s timeout, not before
        await wait_for(lambda: (gw.state / "h1.cancelled").exists(), "the server to see notifications/cancelled", 5)
        # Other tools keep the server's own timeout, and the server still answers.
        assert await s.text("faulty__echo", {"message": "after"}) == "fault: after"
    finally:
        await s.__aexit__()


async def test_a_call_streaming_progress_forever_is_bounded(start) -> None:
    gw = start(everything() + faulty(extra='[servers.faulty.tools.stream]\ntimeout = "2s"'))
    s = await ready(gw, want={"everything__echo", "faulty__stream"})
    try:
        seen: list = []
        t0 = time.monotonic()
        r = None

        async def run():
            nonlocal r
            r = await s.request("tools/call", {"name": "faulty__stream", "arguments": {"marker": "s1"},
                                               "_meta": {"progressToken": "p1"}}, seen=seen)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await wait_for(lambda: (gw.state / "s1.started").exists(), "the stream to start")
            await healthy(s)
            await listed(s)
        took = time.monotonic() - t0
        code, msg = error_of(r)
        assert code == TIMEOUT and 'tool "stream"' in msg, r
        assert took > 1.9, took  # at its 2 s timeout, not before
        progress = [m for m in seen if m.get("method") == "notifications/progress"]
        assert len(progress) >= 10, len(progress)
        assert all(m["params"]["progressToken"] == "p1" for m in progress)
        await wait_for(lambda: (gw.state / "s1.cancelled").exists(), "the server to see the cancellation", 5)
        assert await s.text("faulty__echo", {"message": "ok"}) == "fault: ok"
    finally:
        await s.__aexit__()


async def test_garbage_on_stdout_is_skipped_and_an_oversized_answer_fails_at_once(start) -> None:
    gw = start(everything() + faulty("--garbage", extra="max_message_bytes = 65536"))
    s = await ready(gw, want={"everything__echo", "faulty__echo"})
    try:
        assert await s.text("faulty__echo", {"message": "through garbage"}) == "fault: through garbage"
        assert await s.text("faulty__garbage", {"lines": 200}) == "after garbage"
        r, _ = await s.call("faulty__big", {"bytes": 200_000})
        code, msg = error_of(r)
        assert code == -32603, r
        assert msg == "server faulty sent a response larger than max_message_bytes (65536 bytes); it was dropped", msg
        assert await s.text("faulty__echo", {"message": "still"}) == "fault: still"
        await healthy(s)
        # Garbage is logged, but not line by line without end.
        logged = gw.logs().count("ignored a stdout line that is not a JSON-RPC message")
        assert 0 < logged < 60, logged
    finally:
        await s.__aexit__()


async def test_kill_9_mid_call_fails_fast_restarts_and_leaves_nothing(start) -> None:
    gw = start(everything() + faulty("--spawn-child", extra="protocol = \"legacy\""))
    s = await ready(gw, want={"everything__echo", "faulty__hang"})
    try:
        pid = int(await s.text("faulty__pid"))
        child = int((gw.state / "children").read_text().split()[0])
        assert proc_stat(child) is not None
        outcome = {}

        async def hang():
            outcome["r"], outcome["took"] = await s.call("faulty__hang", {"marker": "k1"})

        async with anyio.create_task_group() as tg:
            tg.start_soon(hang)
            await wait_for(lambda: (gw.state / "k1.started").exists(), "the call to reach the server")
            os.kill(pid, signal.SIGKILL)
        code, msg = error_of(outcome["r"])
        assert code == CLOSED, outcome
        assert msg == "server faulty is not connected: process exited (signal: 9 (SIGKILL))", msg
        # The rest of its process group (the grandchild) is ended and nothing is a zombie.
        await wait_for(lambda: proc_stat(child) is None or proc_stat(child)[0] == "Z" and proc_stat(child)[1] != gw.pid,
             "the old grandchild to be killed", 10)

        async def echo_works():
            r, _ = await s.call("faulty__echo", {"message": "back"})
            return "result" in r

        await wait_for(echo_works, "the server to be restarted", 20)
        assert int(await s.text("faulty__pid")) != pid
        await healthy(s)
        # A server that exits on its own mid-call: the same, with its exit status.
        r, _ = await s.call("faulty__crash")
        code, msg = error_of(r)
        assert code == CLOSED and msg == "server faulty is not connected: process exited (exit status: 3)", r
        await wait_for(echo_works, "the server to be restarted again", 20)
        gw.no_zombies()
        await listed(s, want={"faulty__echo"})
    finally:
        await s.__aexit__()


async def test_a_crash_loop_is_reported_and_backs_off(start) -> None:
    gw = start(everything() + faulty("--exit-after-initialize", extra="protocol = \"legacy\""))
    s = await ready(gw, want={"everything__echo"})
    try:
        await wait_for(lambda: "server is crash-looping: 4 failures in a row" in gw.logs(), "four crashes in a row", 30)
        r, _ = await s.call("faulty__echo", {"message": "x"})
        code, msg = error_of(r)
        assert code == UNAVAILABLE and msg.startswith("server faulty is unavailable: connection lost: "), r
        assert "crash loop: " in msg and "next attempt in" in msg, msg
        # Backoff after the n-th failure in a row: 0.25 s × 2^(n-1), ±20%. Each start comes
        # after the previous one failed and its delay passed, so the gaps between starts are
        # at least 80% of it: lower bounds, which a slow machine only makes easier to meet.
        await wait_for(lambda: "server is crash-looping: 5 failures in a row" in gw.logs(), "a fifth crash", 30)
        starts = [float(line.split()[1]) for line in (gw.state / "starts").read_text().splitlines()]
        assert 5 <= len(starts) <= 7, starts
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert all(gap >= 0.8 * 0.25 * 2**n for n, gap in enumerate(gaps)), gaps
        await healthy(s)
        await listed(s)
        gw.no_zombies()
    finally:
        await s.__aexit__()


async def test_http_server_faults(start, spawn) -> None:
    port = free_port()
    state = Path(os.environ.get("TMPDIR", "/tmp")) / f"fault-http-{uuid.uuid4().hex}"
    web = spawn([sys.executable, str(FAULT), "--http", str(port), "--state-dir", str(state)], name="fault-http")
    web.wait_for_port(port)
    gone = free_port()
    gw = start(everything() + f"""
[servers.web]
url = "http://127.0.0.1:{port}/mcp"
request_timeout = {FAULT_TIMEOUT:g}
connect_timeout = {FAULT_TIMEOUT:g}
[servers.web.tools.sleep]
timeout = "1s"
[servers.gone]
url = "http://127.0.0.1:{gone}/mcp"
connect_timeout = 1
request_timeout = {FAULT_TIMEOUT:g}
""")
    s = await ready(gw, want={"everything__echo", "web__echo"})
    try:
        assert await s.text("web__echo", {"message": "over http"}) == "fault: over http"
        r, _ = await s.call("web__drop")
        code, msg = error_of(r)
        assert code in (UNAVAILABLE, CLOSED) and "server web" in msg, r
        r, _ = await s.call("web__fail500")
        code, msg = error_of(r)
        assert code == -32603 and msg == "server web answered HTTP 500 Internal Server Error: internal server error", r
        r, _ = await s.call("web__sleep", {"seconds": 10})
        code, msg = error_of(r)
        assert code == TIMEOUT and msg.startswith('server web did not answer tools/call (tool "sleep") within 1s'), r
        r, _ = await s.call("gone__echo", {"message": "x"})
        code, msg = error_of(r)
        assert code == UNAVAILABLE and msg.startswith("server gone is unavailable: "), r
        assert await s.text("web__echo", {"message": "after"}) == "fault: after"
        await healthy(s)
        await listed(s, want={"web__echo"})
    finally:
        await s.__aexit__()


async def test_max_in_flight_refuses_at_once_without_queueing(start) -> None:
    gw = start(everything() + faulty(extra='max_in_flight = 2\n[servers.faulty.tools.hang]\ntimeout = "1s"'))
    s = await ready(gw, want={"everything__echo", "faulty__wait", "faulty__hang"})
    try:
        async def hold(tool, marker, results):
            r, _ = await s.call(tool, {"marker": marker})
            results.append(r)

        released: list = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(hold, "faulty__wait", "b1", released)
            tg.start_soon(hold, "faulty__wait", "b2", released)
            await wait_for(lambda: (gw.state / "b1.started").exists() and (gw.state / "b2.started").exists(),
                 "two calls in flight")
            # Both calls are held until released: queued, the third could never be answered
            # (it would fail at the client's deadline).
            r, _ = await s.call("faulty__echo", {"message": "third"})
            code, msg = error_of(r)
            assert code == BUSY, r
            assert msg == "server faulty is busy: 2 calls in flight (max_in_flight = 2); nothing was sent, retry later"
            await healthy(s)
            assert released == [], released
            (gw.state / "b1.release").write_text("1")
            (gw.state / "b2.release").write_text("1")
        assert [x["result"]["content"][0]["text"] for x in released] == ["released", "released"], released
        # Calls that time out free their places too.
        timed_out: list = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(hold, "faulty__hang", "b3", timed_out)
            tg.start_soon(hold, "faulty__hang", "b4", timed_out)
        assert [error_of(r)[0] for r in timed_out] == [TIMEOUT, TIMEOUT]
        assert await s.text("faulty__echo", {"message": "free again"}) == "fault: free again"
    finally:
        await s.__aexit__()


async def test_sigterm_lets_calls_in_flight_finish_then_stops_everything(start) -> None:
    gw = start(everything() + faulty("--spawn-child"), top='shutdown_grace = "10s"')
    s = await ready(gw, want={"everything__echo", "faulty__wait"})
    try:
        port = int(gw.g.server.port)
        outcome = {}

        async def slow():
            outcome["r"], _ = await s.call("faulty__wait", {"marker": "g1"})

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await wait_for(lambda: (gw.state / "g1.started").exists(), "the call to reach the server")
            gw.g.proc.popen.send_signal(signal.SIGTERM)
            # New connections are refused at once, while the call is still running.
            def refused():
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    return False
                except OSError:
                    return True

            await wait_for(refused, "the listener to close", 5)
            # The call cannot have ended: the server answers only once released.
            assert "r" not in outcome
            (gw.state / "g1.release").write_text("1")
        assert outcome["r"]["result"]["content"][0]["text"] == "released", outcome
        rc = gw.g.proc.popen.wait(timeout=15)
        gw.checked = True
        assert rc == 0, gw.logs()[-3000:]
        assert not gw.servers(), gw.servers()
        assert "letting calls in flight finish" in gw.logs()
    finally:
        await s.__aexit__()


async def test_sigterm_with_a_stubborn_server_kills_its_whole_group(start) -> None:
    gw = start(
        everything() + faulty("--ignore-sigterm", "--ignore-stdin-close", "--spawn-child"),
        top='shutdown_grace = "1s"',
    )
    s = await ready(gw, want={"everything__echo", "faulty__hang"})
    try:
        async with anyio.create_task_group() as tg:

            async def hang():
                try:
                    await s.call("faulty__hang", {"marker": "t1"})
                except (httpx.HTTPError, AssertionError):
                    pass  # the session is closed under it

            tg.start_soon(hang)
            await wait_for(lambda: (gw.state / "t1.started").exists(), "the call to reach the server")
            took = gw.terminate(timeout=20)
            tg.cancel_scope.cancel()
        # 1 s grace, then stdin close (2 s), SIGTERM (2 s), SIGKILL; a gantry that never got
        # to SIGKILL would be stopped only by terminate's own 20 s bound. The one upper bound
        # on a duration left in this file: those 2 s steps are constants of the code, not
        # timeouts a test can set beyond a deadline, and the bound (5 s of slack) tells them
        # from a stop that waited out its own 10 s limit instead of escalating.
        assert took < 1 + 2 + 2 + 5, took
        assert "stdio server ignored SIGTERM; killing its process group" in gw.logs()
    finally:
        await s.__aexit__()


async def test_memory_returns_near_baseline_after_a_burst_of_faults(start) -> None:
    gw = start(everything() + faulty(extra='max_in_flight = 8\nmax_message_bytes = 65536\n'
                                          '[servers.faulty.tools.hang]\ntimeout = "0.5s"'))
    s = await ready(gw, want={"everything__echo", "faulty__echo"})
    try:
        for i in range(50):
            await s.call("faulty__echo", {"message": str(i)})
            await s.call("everything__echo", {"message": str(i)})
        baseline = rss_kb(gw.pid)
        codes: dict = {}

        async def one(i):
            name, args = [("faulty__echo", {"message": "m" * 1000}), ("faulty__big", {"bytes": 100_000}),
                          ("faulty__hang", {"marker": f"m{i}"}), ("everything__echo", {"message": "e"})][i % 4]
            r, _ = await s.call(name, args)
            key = r["error"]["code"] if "error" in r else "ok"
            codes[key] = codes.get(key, 0) + 1

        for batch in range(10):
            async with anyio.create_task_group() as tg:
                for i in range(40):
                    tg.start_soon(one, batch * 40 + i)
        assert codes.get("ok", 0) > 0 and codes.get(TIMEOUT, 0) > 0 and codes.get(-32603, 0) > 0, codes
        await healthy(s)
        after = rss_kb(gw.pid)
        print(f"RSS baseline {baseline} kB, after the burst {after} kB; outcomes {codes}")
        assert after < max(baseline * 1.5, baseline + 8192), (baseline, after)
        gw.no_zombies()
    finally:
        await s.__aexit__()

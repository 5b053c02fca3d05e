"""Lazy start and idle shutdown (issue 7), end to end with real processes.

`lazy` is tests/fixtures/flaky_server.py over stdio with `start = "lazy"` and
`idle_shutdown = "2s"`; its tool `pid` answers the process id. Every process Gantry starts
carries a tag in its environment, so the test sees exactly which server processes exist.
Every wait is a bounded poll on a real condition.

Run 1 (no persisted catalog): the server is not started with the gateway, `/readyz` is ready
and says `idle`; a list starts it (its catalog is unknown) and its tools appear; after 2 s
without a request its process is gone while its tools stay listed; a call starts it again.
Run 2 (same data directory, so its catalog is persisted): a list does not start it; the
first call does, and succeeds; it idles out again; the next call starts a new process.
After SIGTERM no process is left.
"""

from __future__ import annotations

import signal
import sys
import time
import uuid
from pathlib import Path

import httpx

from conftest import FIXTURES_DIR, LegacySession, poll, tagged

FLAKY = FIXTURES_DIR / "flaky_server.py"
# Gantry processes (they carry the tag too).
GATEWAYS: set[int] = set()


def servers(tag: str) -> list[int]:
    """Live (not zombie) processes whose environment carries the tag, Gantry's excepted."""
    return [pid for pid, _ in tagged("GANTRY_LAZY_TAG", tag) if pid not in GATEWAYS]


class Mcp(LegacySession):
    """A legacy session that can ask the lazy server for its process id."""

    def pid(self) -> int:
        answer = self.request("tools/call", {"name": "lazy__pid", "arguments": {}})
        assert "result" in answer, answer
        return int(answer["result"]["content"][0]["text"])


def start_gateway(gantry, tmp_path: Path, tag: str):
    state = tmp_path / "flaky-state"
    state.mkdir(exist_ok=True)
    g = gantry(
        f"""
data_dir = "{tmp_path / 'data'}"
[health]
interval = 0.5
[servers.lazy]
command = "{sys.executable}"
args = ["{FLAKY}", "--state-dir", "{state}"]
protocol = "legacy"
start = "lazy"
idle_shutdown = "2s"
# Far beyond the client's 30 s read timeout: a call that waited out the connect timeout (a
# missed start signal) fails instead of answering late.
connect_timeout = 600
[endpoints.main]
servers = ["lazy"]
""",
        env={"GANTRY_LAZY_TAG": tag, "RUST_LOG": "info"},
    )
    GATEWAYS.add(g.proc.pid)
    return g


def lazy_health(base_url: str) -> dict:
    r = httpx.get(f"{base_url}/readyz", timeout=10, trust_env=False)
    body = r.json()
    assert r.status_code == 200 and body["ready"], body
    return next(s for s in body["servers"] if s["name"] == "lazy")


def terminate(g, tag: str) -> None:
    g.proc.popen.send_signal(signal.SIGTERM)
    rc = g.proc.popen.wait(timeout=30)
    assert rc == 0, f"gantry exited with {rc}\n{g.proc.logs()}"
    GATEWAYS.discard(g.proc.pid)
    left = servers(tag)
    assert not left, f"processes left behind after gantry exited: {left}"


def test_lazy_start_idle_shutdown_and_restart_on_use(gantry, tmp_path: Path):
    # Run 1: nothing persisted yet.
    tag = uuid.uuid4().hex
    g = start_gateway(gantry, tmp_path, tag)
    url = g.endpoint_url("main")
    health = lazy_health(g.base_url)
    assert health["status"] == "idle", health
    assert "not started yet" in health["reason"], health
    assert servers(tag) == [], "a lazy server has no process before it is needed"

    s = Mcp(url)
    assert servers(tag) == [], "initialize does not start it"
    # Its catalog is unknown: the list starts it, its tools follow (list_changed).
    poll(lambda: "lazy__pid" in s.tools(), "the lazy server's tools to be listed")
    first = poll(lambda: servers(tag), "the lazy server's process")
    assert len(first) == 1, first

    # No request for 2 s: its process ends, its tools stay listed, it is idle (not unhealthy).
    poll(lambda: not servers(tag), "the idle server's process to end", timeout=15)
    assert "lazy__pid" in s.tools()
    health = lazy_health(g.base_url)
    assert health["status"] == "idle" and "idle_shutdown" in health["reason"], health

    # The next call starts it again and succeeds.
    pid = s.pid()
    assert servers(tag) == [pid], (pid, servers(tag))
    assert pid not in first
    terminate(g, tag)

    # Run 2: the catalog is persisted; a list shows it without starting the server.
    tag = uuid.uuid4().hex
    g = start_gateway(gantry, tmp_path, tag)
    s = Mcp(g.endpoint_url("main"))
    assert s.tools() == {"lazy__pid", "lazy__echo", "lazy__fail", "lazy__hang"}
    health = lazy_health(g.base_url)
    assert health["status"] == "idle" and "last known catalog" in health["reason"], health
    # Deliberate time passing, not synchronisation: a process that is not there cannot be
    # polled for, so give a wrongly started one two health intervals (2 x 0.5 s) to show up.
    time.sleep(1.0)
    assert servers(tag) == [], "a list of a known catalog does not start it"

    # Answered at all means answered once the server had started: a call waiting out the
    # 600 s connect_timeout would hit the client's 30 s read timeout first.
    pid = s.pid()
    assert servers(tag) == [pid], "the first call started it, and it runs"
    answer = s.request("tools/call", {"name": "lazy__echo", "arguments": {"message": "hi"}})
    assert answer["result"]["content"][0]["text"] == "flaky: hi", answer

    poll(lambda: not servers(tag), "the idle server's process to end", timeout=15)
    assert "lazy__pid" in s.tools()
    health = lazy_health(g.base_url)
    assert health["status"] == "idle", health
    logs = g.proc.stderr_path.read_text(errors="replace")
    assert "crash" not in logs.lower(), logs[-3000:]

    again = s.pid()
    assert again != pid and servers(tag) == [again]
    terminate(g, tag)

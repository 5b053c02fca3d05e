"""Health checks, the circuit breaker, crash loops, `/readyz` and `gantry server list`, end to
end with real processes.

One gateway runs npm server-everything (healthy throughout), `flaky` (tests/fixtures/
flaky_server.py over stdio: it can be killed, refuse to start, or hang) and `ghost` (a
command that does not exist). Every wait is a bounded poll on a real condition.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from functools import partial
from pathlib import Path

import httpx

import conftest
from conftest import FIXTURES_DIR, LegacySession, control_key, gantry_cli as cli, gantry_ok as ok, tool

FLAKY = FIXTURES_DIR / "flaky_server.py"
# The flaky server's request_timeout: a call it does not answer fails after this long.
FLAKY_REQUEST_TIMEOUT = 1


last_readyz: object = None
# A timed-out wait says what /readyz said last.
poll = partial(conftest.poll, describe=lambda: f"last readyz: {last_readyz}")


def text_of(answer: dict) -> str:
    assert "result" in answer, answer
    return answer["result"]["content"][0]["text"]


def test_health_readiness_circuit_breaker_and_server_list(gantry, tmp_path: Path):
    global last_readyz
    data = tmp_path / "data"
    state = tmp_path / "flaky-state"
    state.mkdir()
    control = control_key(data)

    gw = gantry(
        f"""
data_dir = "{data}"
[health]
interval = 0.5
timeout = 1
[servers.everything]
command = "{tool('mcp-server-everything')}"
args = ["stdio"]
[servers.flaky]
command = "{sys.executable}"
args = ["{FLAKY}", "--state-dir", "{state}"]
protocol = "legacy"
request_timeout = {FLAKY_REQUEST_TIMEOUT}
[servers.flaky.health]
circuit_failures = 3
circuit_cooldown = 2
crash_loop_restarts = 100
[servers.ghost]
command = "{tmp_path}/no-such-server"
[endpoints.main]
servers = ["everything", "flaky", "ghost"]
""",
        env={"RUST_LOG": "info"},
    )
    http = httpx.Client(base_url=gw.base_url, timeout=10, trust_env=False)

    def readyz() -> dict:
        global last_readyz
        r = http.get("/readyz")
        body = r.json()
        assert body["ready"] == (r.status_code == 200), (r.status_code, body)
        last_readyz = body
        return body

    def server(body: dict, name: str) -> dict:
        return next(s for s in body["servers"] if s["name"] == name)

    def status_is(name: str, status: str, reason_prefix: str | None = None):
        def check():
            s = server(readyz(), name)
            return s["status"] == status and (reason_prefix is None or (s["reason"] or "").startswith(reason_prefix))
        return check

    # --- readiness: every server tried; a dead one is listed, not fatal ----------------------
    assert http.get("/healthz").text == "ok\n"
    poll(lambda: readyz()["ready"], "readyz 200")
    poll(status_is("everything", "healthy"), "everything healthy")
    poll(status_is("flaky", "healthy"), "flaky healthy")
    body = readyz()
    assert body["rule"] == "attempted" and body["why"] is None
    ghost = server(body, "ghost")
    assert ghost["status"] == "unhealthy" and ghost["attempted"] is True
    assert ghost["reason"].startswith(("down: ", "crash loop: ")), ghost
    assert "last_error" not in ghost, "details are for the admin API"

    mcp = LegacySession(gw.endpoint_url("main"))
    assert text_of(mcp.call("everything__echo", {"message": "hi"})) == "Echo: hi"
    assert text_of(mcp.call("flaky__echo", {"message": "hi"})) == "flaky: hi"

    # --- a killed stdio server is unhealthy with the reason, then healthy after its restart ----
    pid = int(text_of(mcp.call("flaky__pid")))
    (state / "refuse").write_text("1")
    os.kill(pid, signal.SIGKILL)
    poll(status_is("flaky", "unhealthy", "down: "), "flaky unhealthy after the kill")
    reason = server(readyz(), "flaky")["reason"]
    assert "initialize failed" in reason or "connection lost" in reason, reason
    assert readyz()["ready"], "one dead server does not make the gateway unready"
    answer = mcp.call("flaky__echo", {"message": "x"})
    assert answer["error"]["code"] == -32010 and "server flaky is unavailable" in answer["error"]["message"]
    assert text_of(mcp.call("everything__echo", {"message": "still"})) == "Echo: still"
    (state / "refuse").unlink()
    poll(status_is("flaky", "healthy"), "flaky healthy again after the restart", timeout=30)
    new_pid = int(text_of(mcp.call("flaky__pid")))
    assert new_pid != pid

    # --- errors the server answers on purpose do not open the circuit -----------------------
    for _ in range(5):
        assert mcp.call("flaky__fail")["error"]["message"] == "failing on purpose"
    assert server(readyz(), "flaky")["circuit"] == "closed"

    # --- a hanging server: the circuit opens, calls fail fast, the others keep answering -------
    (state / "hang").write_text("1")
    for _ in range(3):
        answer = mcp.call("flaky__echo", {"message": "slow"})
        if "circuit open" in answer.get("error", {}).get("message", ""):
            break  # the health checks' timeouts counted too
        assert answer["error"]["code"] == -32011, answer
    poll(status_is("flaky", "unhealthy", "circuit open after 3 consecutive failures"), "the circuit to open")
    answer = mcp.call("flaky__echo", {"message": "fast"})
    message = answer["error"]["message"]
    assert answer["error"]["code"] == -32010, answer
    assert message.startswith("server flaky is unavailable: circuit open after 3 consecutive failures (last: "), message
    assert "; retrying in " in message and answer["error"]["data"]["circuit"] == "open"
    # Refused at the gateway, not sent: a call forwarded to the hanging server would have
    # ended in a timeout (-32011), not in the open circuit's -32010 with its retry time.
    assert text_of(mcp.call("everything__echo", {"message": "meanwhile"})) == "Echo: meanwhile"
    assert readyz()["ready"]

    # --- gantry server list, against the running gateway ------------------------------------
    listed = json.loads(ok("server", "list", "--json", "--url", gw.base_url, "--key", control))
    by_name = {s["name"]: s for s in listed}
    assert set(by_name) == {"everything", "flaky", "ghost"}
    assert by_name["everything"]["health"]["status"] == "healthy"
    flaky = by_name["flaky"]["health"]
    assert flaky["status"] == "unhealthy" and flaky["circuit"]["state"] in ("open", "half-open")
    assert flaky["restarts"] >= 1 and flaky["last_error"], flaky
    assert flaky["last_check_at"].endswith("Z")
    table = ok("server", "list", "--config", str(gw.config_path), env={"GANTRY_KEY": control})
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "TRANSPORT", "STATUS", "REASON", "LAST", "ERROR", "LAST", "CHECK", "RESTARTS"]
    assert any(l.startswith("everything") and " healthy " in l for l in lines), table
    assert any(l.startswith("ghost") and "unhealthy" in l for l in lines), table
    offline = cli("server", "list", "--config", str(gw.config_path), "--json", env={"GANTRY_KEY": ""})
    assert offline.returncode == 0 and "no control-plane key" in offline.stderr
    assert {s["status"] for s in json.loads(offline.stdout)} == {"unknown"}
    refused = cli("server", "list", "--url", gw.base_url, "--key", "gantry_nope")
    assert refused.returncode != 0 and "401" in refused.stderr

    # --- the server recovers: the half-open probe closes the circuit -------------------------
    (state / "hang").unlink()
    poll(status_is("flaky", "healthy"), "the probe to close the circuit", timeout=30)
    assert text_of(mcp.call("flaky__echo", {"message": "back"})) == "flaky: back"

    # --- a server that never starts is reported as a crash loop ------------------------------
    api = httpx.Client(base_url=gw.base_url + "/admin/api/v1", timeout=10, trust_env=False,
                       headers={"Authorization": f"Bearer {control}"})

    def crash_loop():
        h = api.get("/servers/ghost").json()["health"]
        return h if (h["reason"] or "").startswith("crash loop: ") else None

    h = poll(crash_loop, "ghost to be reported in a crash loop", timeout=30)
    assert h["status"] == "unhealthy" and h["restarts"] >= 5
    assert any(r.startswith("down: ") for r in h["reasons"]), h
    assert "crash loop" in gw.proc.logs()


def test_readyz_require_all(gantry, tmp_path: Path):
    gw = gantry(
        f"""
[health]
readyz = "require_all"
[servers.ghost]
command = "{tmp_path}/no-such-server"
"""
    )
    http = httpx.Client(base_url=gw.base_url, timeout=10, trust_env=False)

    def unready():
        r = http.get("/readyz")
        return r if r.status_code == 503 and "unhealthy" in (r.json()["why"] or "") else None

    r = poll(unready, "readyz 503 with the reason")
    body = r.json()
    assert body["ready"] is False and body["rule"] == "require_all"
    assert body["why"].startswith('readyz = "require_all" and some servers are unhealthy: ghost (')
    assert body["summary"] == {"healthy": 0, "idle": 0, "degraded": 0, "unhealthy": 1}
    assert http.get("/healthz").status_code == 200

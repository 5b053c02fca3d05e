"""pytest infrastructure for Gantry's end-to-end tests: real processes on loopback ports.

Run after `scripts/deps.sh`:  `. .deps/env.sh && pytest -q tests/e2e`

What it provides:
- `free_port()`: a currently unused TCP port on 127.0.0.1.
- `spawn` fixture: start a subprocess in its own process group with its output in a log file,
  wait until it is ready (a TCP port accepts connections, or an HTTP URL answers with the
  expected status), and kill the whole group at teardown. A failing test prints the logs.
- Ready-made servers: `everything_http` (server-everything `streamableHttp`), `everything_sse`
  (server-everything `sse`), `fixture_http` (tests/fixtures/conformance_server.py over
  streamable-http); `start_modern` starts tests/fixtures/modern_server.py over HTTP. Each is
  a `Server` with `.url`.
- `gantry` fixture: a factory that starts `$GANTRY_BIN serve --config <file>` from a TOML string
  and waits for `GET /healthz` = 200; `gantry_cli` / `gantry_ok` run the CLI, `control_key`
  makes a control-plane key with it.
- `main_gw` fixture: Gantry with endpoint `main` over server-everything, mcp-server-time and
  the probe server (tests/fixtures/probe_server.py, state in the `state_dir` fixture); and the
  client helpers `texts`, `wait_for`, `exists`.
- `/proc` readers: `proc_stat`, `proc_cmdline`, `live_pids`, `tagged` (processes carrying an
  environment tag).
- `poll(condition, what)`: the synchronous `wait_for`; `LegacySession`: a legacy Streamable
  HTTP session over raw JSON-RPC, for tests that drive the wire without an SDK; `envelope`:
  the `_meta` of a raw 2026-07-28 request; `node_client`: tests/e2e/node_client.mjs;
  `cancel_call`: start a slow call, abandon it, wait until the server saw that.

Readiness is always a bounded polling loop on a real condition; no test synchronises on a
bare sleep.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
NODE_BIN = E2E_DIR / "node_modules" / ".bin"
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
CONFORMANCE_FIXTURE = FIXTURES_DIR / "conformance_server.py"
MODERN_SERVER = FIXTURES_DIR / "modern_server.py"
NODE_CLIENT = E2E_DIR / "node_client.mjs"
MODERN = "2026-07-28"

READY_TIMEOUT = 30.0  # seconds a process gets to become ready
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
POLL_INTERVAL = 0.05  # seconds between readiness probes


# ---------------------------------------------------------------------------------------------
# helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name: str) -> str:
    """Path of an installed test tool (npm bin, venv bin, or PATH); fails clearly if missing."""
    for candidate in (NODE_BIN / name, Path(sys.executable).parent / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} is not installed: run scripts/deps.sh and '. .deps/env.sh'", pytrace=False)


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


# Loopback probes never go through a proxy, whatever the environment says.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of `GET url`, or None when nothing answered."""
    try:
        with _DIRECT.open(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return None


def proc_read(pid: int, name: str) -> bytes:
    """`/proc/<pid>/<name>`, or nothing when the process is gone (or the file unreadable)."""
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, or None when it is gone."""
    raw = proc_read(pid, "stat").decode(errors="replace")
    if not raw:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def proc_cmdline(pid: int) -> str:
    """A process's command line, space-separated."""
    return proc_read(pid, "cmdline").replace(b"\0", b" ").decode(errors="replace").strip()


def live_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def tagged(key: str, value: str) -> list[tuple[int, str]]:
    """Live (not zombie) processes whose environment holds `key=value`: (pid, command line).
    Tests tag what Gantry starts this way (it is inherited, also by orphaned grandchildren)."""
    needle = f"{key}={value}".encode()
    return [(pid, proc_cmdline(pid)) for pid in live_pids()
            if needle in proc_read(pid, "environ").split(b"\0") and (proc_stat(pid) or ("Z",))[0] != "Z"]


@dataclass
class Proc:
    """A started subprocess in its own process group, with its output in files."""

    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def logs(self, limit: int = 20_000) -> str:
        parts = []
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            text = path.read_text(errors="replace") if path.exists() else ""
            if len(text) > limit:
                text = f"[... {len(text) - limit} bytes cut ...]\n" + text[-limit:]
            parts.append(f"----- {self.name} {label} ({path}) -----\n{text}")
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after STOP_TIMEOUT."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while children of the group live on.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT) -> None:
        """Poll `ready()` until it is true; fail if the process exits or the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            if ready():
                return
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode} before {what}\n{self.logs()}"
                )
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{self.name}: not ready after {timeout:.0f}s ({what})\n{self.logs()}")
            time.sleep(POLL_INTERVAL)

    def wait_for_port(self, port: int, timeout: float = READY_TIMEOUT) -> None:
        self.wait_until(lambda: port_accepts(port), f"port {port} accepted connections", timeout)

    def wait_for_http(self, url: str, status: int = 200, timeout: float = READY_TIMEOUT) -> None:
        self.wait_until(lambda: http_status(url) == status, f"GET {url} returned {status}", timeout)


@dataclass
class Server:
    """A started server process and where to reach it."""

    proc: Proc
    port: int
    url: str
    extra: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# process management fixtures


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    # Keep each phase's report on the item so fixtures can tell, at teardown, whether the
    # test failed (and print the processes' logs if so).
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


class Spawner:
    """Starts processes for one test and stops them all at its end."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._procs: list[Proc] = []
        self._count = 0

    @property
    def procs(self) -> list[Proc]:
        return list(self._procs)

    def __call__(
        self,
        argv: Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
    ) -> Proc:
        self._count += 1
        label = name or Path(argv[0]).name
        stem = f"{self._count:02d}-{label}"
        stdout_path = self._log_dir / f"{stem}.stdout.log"
        stderr_path = self._log_dir / f"{stem}.stderr.log"
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=full_env,
                cwd=str(cwd) if cwd else None,
                start_new_session=True,  # own process group: stop() kills the whole tree
            )
        proc = Proc(label, list(argv), popen, stdout_path, stderr_path)
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            proc.stop()


@pytest.fixture
def spawn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Spawner]:
    """Factory: `spawn([argv...], name=..., env=..., cwd=...) -> Proc`; stopped at teardown."""
    log_dir = tmp_path / "proc-logs"
    log_dir.mkdir()
    spawner = Spawner(log_dir)
    try:
        yield spawner
    finally:
        spawner.stop_all()
        failed = any(
            getattr(getattr(request.node, f"rep_{phase}", None), "failed", False) for phase in ("setup", "call")
        )
        if failed:
            for proc in spawner.procs:
                print(proc.logs())


def start_everything(spawn: Spawner, mode: str) -> Server:
    port = free_port()
    proc = spawn([tool("mcp-server-everything"), mode], name=f"server-everything-{mode}", env={"PORT": str(port)})
    proc.wait_for_port(port)
    path = "/sse" if mode == "sse" else "/mcp"
    return Server(proc, port, f"http://127.0.0.1:{port}{path}")


def start_python_fixture(spawn: Spawner, script: Path, transport: str, name: str, *extra_args: str) -> Server:
    """A fixture server script over HTTP on a free port; `.url` is its /mcp endpoint."""
    port = free_port()
    proc = spawn([sys.executable, str(script), "--transport", transport, "--port", str(port), *extra_args], name=name)
    proc.wait_for_port(port)
    return Server(proc, port, f"http://127.0.0.1:{port}/mcp")


def start_conformance_fixture(spawn: Spawner, *extra_args: str) -> Server:
    return start_python_fixture(spawn, CONFORMANCE_FIXTURE, "streamable-http", "conformance-fixture", *extra_args)


def start_modern(spawn: Spawner, *extra_args: str) -> Server:
    """tests/fixtures/modern_server.py over Streamable HTTP; `.url` is its /mcp endpoint."""
    return start_python_fixture(spawn, MODERN_SERVER, "http", "modern-http", *extra_args)


@pytest.fixture
def everything_http(spawn: Spawner) -> Server:
    """npm server-everything in `streamableHttp` mode; `.url` is its /mcp endpoint."""
    return start_everything(spawn, "streamableHttp")


@pytest.fixture
def everything_sse(spawn: Spawner) -> Server:
    """npm server-everything in legacy HTTP+SSE mode; `.url` is its /sse endpoint."""
    return start_everything(spawn, "sse")


@pytest.fixture
def fixture_http(spawn: Spawner) -> Server:
    """tests/fixtures/conformance_server.py over streamable-http; `.url` is its /mcp endpoint."""
    return start_conformance_fixture(spawn)


# ---------------------------------------------------------------------------------------------
# the gateway


def gantry_bin() -> Path:
    """`$GANTRY_BIN`, default target/debug/gantry relative to the repo root."""
    value = os.environ.get("GANTRY_BIN")
    path = Path(value) if value else REPO_ROOT / "target" / "debug" / "gantry"
    return path if path.is_absolute() else REPO_ROOT / path


def gantry_cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`$GANTRY_BIN args...` run to its end, output captured; `env` adds to this process's."""
    return subprocess.run([str(gantry_bin()), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env} if env else None)


def gantry_ok(*args: str, env: Mapping[str, str] | None = None) -> str:
    """The stdout of a `gantry` command that must succeed."""
    r = gantry_cli(*args, env=env)
    assert r.returncode == 0, f"gantry {' '.join(args)} failed ({r.returncode}):\n{r.stderr}"
    return r.stdout


def control_key(data_dir: Path) -> str:
    """A control-plane API key of a new user `root`, made with the CLI in `data_dir`."""
    at = ["--data-dir", str(data_dir)]
    gantry_ok("user", "add", "root", *at)
    return gantry_ok("key", "create", "--user", "root", "--plane", "control", *at).strip()


@dataclass
class Gantry:
    """A running gateway."""

    server: Server
    config_path: Path
    config: dict

    @property
    def proc(self) -> Proc:
        return self.server.proc

    @property
    def base_url(self) -> str:
        return self.server.url

    def endpoint_url(self, endpoint: str) -> str:
        """The MCP URL of one endpoint: http://HOST:PORT/mcp/<endpoint>."""
        return f"{self.base_url}/mcp/{endpoint}"


@pytest.fixture
def gantry(spawn: Spawner, tmp_path: Path) -> Callable[..., Gantry]:
    """Factory: `gantry(toml_text, name="gantry", env=None) -> Gantry`.

    Writes the config to a temporary file and runs `$GANTRY_BIN serve --config <file>`,
    then waits for `GET /healthz` = 200 on the config's `listen` address. When the config
    has no top-level `listen`, one on a free loopback port is added. The process is killed
    at teardown; its stdout/stderr stay in files and are printed when the test fails.
    """
    counter = 0

    def start(config: str, *, name: str = "gantry", env: Mapping[str, str] | None = None) -> Gantry:
        nonlocal counter
        counter += 1
        binary = gantry_bin()
        if not binary.exists():
            pytest.fail(f"gantry binary not found at {binary} (build it, or set GANTRY_BIN)", pytrace=False)
        parsed = tomllib.loads(config)
        if "listen" not in parsed:
            config = f'listen = "127.0.0.1:{free_port()}"\n' + config
            parsed = tomllib.loads(config)
        host, _, port_text = str(parsed["listen"]).rpartition(":")
        host = host.strip("[]")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        port = int(port_text)
        config_path = tmp_path / f"{name}-{counter}.toml"
        config_path.write_text(config)
        proc = spawn([str(binary), "serve", "--config", str(config_path)], name=name, env=env, cwd=tmp_path)
        url_host = f"[{host}]" if ":" in host else host
        base_url = f"http://{url_host}:{port}"
        proc.wait_for_http(f"{base_url}/healthz", 200)
        return Gantry(Server(proc, port, base_url), config_path, parsed)

    return start


# ---------------------------------------------------------------------------------------------
# async tests


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ---------------------------------------------------------------------------------------------
# the gateway most end-to-end tests use, and helpers for driving MCP clients

PROBE = FIXTURES_DIR / "probe_server.py"


def texts(result) -> list[str]:
    """The text blocks of a tool result."""
    return [b.text for b in result.content if getattr(b, "type", None) == "text"]


def servers_toml(state_dir: Path) -> str:
    """server-everything, mcp-server-time and the probe server, all over stdio.

    server-everything speaks only the legacy era; mcp-server-time is dual-era, so Gantry
    speaks 2026-07-28 to it; the probe server is dual-era too but pinned to the legacy era
    here, because its tools exercise legacy server→client requests mid-call.
    """
    return f"""
[servers.everything]
command = "{tool('mcp-server-everything')}"
args = ["stdio"]
[servers.time]
command = "{tool('mcp-server-time')}"
args = ["--local-timezone", "UTC"]
[servers.probe]
command = "{sys.executable}"
args = ["{PROBE}", "--state-dir", "{state_dir}"]
protocol = "legacy"
"""


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """Where the probe server records what it saw (call started, call cancelled)."""
    d = tmp_path / "probe-state"
    d.mkdir()
    return d


@pytest.fixture
def main_gw(gantry, state_dir):
    """Gantry with one endpoint `main` over the three servers of `servers_toml`."""
    return gantry(servers_toml(state_dir) + '[endpoints.main]\nservers = ["everything", "time", "probe"]\n')


async def wait_for(predicate, what: str, timeout: float = 20.0):
    """Polls a predicate (plain or async) until it returns a truthy value; the event loop
    runs meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await anyio.sleep(POLL_INTERVAL)


def poll(condition: Callable[[], object], what: str, timeout: float = 30.0,
         describe: Callable[[], str] | None = None):
    """Calls `condition()` until it returns something truthy (bounded) and returns that; on
    timeout the message names `what` and, with `describe`, the state it last saw."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; {describe()}" if describe else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
        time.sleep(POLL_INTERVAL)


JSON_AND_SSE = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


class LegacySession:
    """A legacy (2025-11-25) Streamable HTTP session, raw JSON-RPC over httpx."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(timeout=30, trust_env=False)
        self.n = 0
        self.sid: str | None = None
        r = self.post({"method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        self.sid = r.headers["mcp-session-id"]
        self.http.post(url, headers={**JSON_AND_SSE, "mcp-session-id": self.sid},
                       json={"jsonrpc": "2.0", "method": "notifications/initialized"})

    def post(self, body: dict) -> httpx.Response:
        """POSTs `body` as the next request (its id is `self.n`)."""
        self.n += 1
        headers = {**JSON_AND_SSE, "mcp-session-id": self.sid} if self.sid else JSON_AND_SSE
        return self.http.post(self.url, headers=headers, json={"jsonrpc": "2.0", "id": self.n, **body})

    def request(self, method: str, params: dict | None = None) -> dict:
        """The JSON-RPC answer to one request, from a JSON or an SSE body (HTTP 200 expected)."""
        r = self.post({"method": method, "params": params or {}})
        assert r.status_code == 200, r.text
        if r.headers.get("content-type", "").startswith("text/event-stream"):
            for line in r.text.splitlines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("id") == self.n:
                        return msg
            raise AssertionError(f"no answer in {r.text!r}")
        return r.json()

    def call(self, name: str, args: dict | None = None) -> dict:
        return self.request("tools/call", {"name": name, "arguments": args or {}})

    def tools(self) -> set[str]:
        return {t["name"] for t in self.request("tools/list")["result"]["tools"]}


def envelope(caps: dict | None = None) -> dict:
    """The `_meta` a raw 2026-07-28 request carries, with these client capabilities."""
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": caps or {},
    }


def run_node_client(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """tests/e2e/node_client.mjs (npm @modelcontextprotocol/client) against `url`."""
    return subprocess.run([tool("node"), str(NODE_CLIENT), url, *args],
                          capture_output=True, text=True, timeout=60, cwd=E2E_DIR)


def node_client(url: str, *actions: str, mode: str = MODERN) -> list[dict]:
    """The JSON lines node_client.mjs printed for `actions` in `mode` (it must succeed)."""
    done = run_node_client(url, "--mode", mode, *actions)
    assert done.returncode == 0, f"node_client failed ({done.returncode}):\n{done.stderr}"
    return [json.loads(line) for line in done.stdout.splitlines()]


async def exists(p: Path) -> bool:
    """Whether `p` exists (an async predicate for `wait_for`)."""
    return p.exists()


async def cancel_call(call: Callable[[], Awaitable[object]], state_dir: Path, marker: str) -> None:
    """Starts `call()` (a slow tool of a fixture server that records `<marker>.started` and
    `<marker>.cancelled` in `state_dir`), abandons it once the server has started it, and
    waits until the server saw the cancellation."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await wait_for(lambda: exists(state_dir / f"{marker}.started"), "the slow call to start")
        tg.cancel_scope.cancel()
    await wait_for(lambda: exists(state_dir / f"{marker}.cancelled"), "the server to see the cancellation")


async def cancel_slow_call(client, state_dir: Path, marker: str) -> None:
    """`cancel_call` of the probe server's `slow` tool through `client`."""
    await cancel_call(lambda: client.call_tool("probe__slow", {"seconds": 60, "marker": marker}), state_dir, marker)


@contextlib.asynccontextmanager
async def listen_stream(http: httpx.AsyncClient, url: str, rid: str, meta: dict, notifications: dict):
    """Opens a 2026-07-28 `subscriptions/listen` stream on `url` and yields `next_frame()`,
    which returns the next JSON-RPC message on it."""
    headers = {"Accept": "text/event-stream", "MCP-Protocol-Version": meta["io.modelcontextprotocol/protocolVersion"],
               "Mcp-Method": "subscriptions/listen"}
    body = {"jsonrpc": "2.0", "id": rid, "method": "subscriptions/listen",
            "params": {"_meta": meta, "notifications": notifications}}
    async with http.stream("POST", url, json=body, headers=headers) as resp:
        assert resp.status_code == 200, resp.status_code
        lines = resp.aiter_lines()

        async def next_frame() -> dict:
            async for line in lines:
                if line.startswith("data:"):
                    return json.loads(line[5:])
            raise AssertionError("the listen stream ended")

        yield next_frame

"""The official MCP conformance suite, run against Gantry in front of our fixture server.

The suite (npm @modelcontextprotocol/conformance, pinned) scores the gateway as if it were one
server; the fixture (tests/fixtures/conformance_server.py) provides the names the suite calls.
The fixture is dual-era: by default Gantry speaks 2026-07-28 to it, and one variant pins it to
the legacy era (`protocol = "legacy"`) so a 2026-07-28 client's calls cross eras.
Expected failures live in tests/conformance/baseline-<version>.yml (or
baseline-gantry-<version>-legacy-upstream.yml for that variant), and the run fails both on a
new failure and on a baseline entry that now passes (scripts/conformance.sh).
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from conftest import CONFORMANCE_FIXTURE, REPO_ROOT


def fixture_stdio_config(protocol: str) -> str:
    return f"""
[servers.fixture]
command = "{sys.executable}"
args = ["{CONFORMANCE_FIXTURE}", "--transport", "stdio"]
protocol = "{protocol}"
[endpoints.conformance]
servers = ["fixture"]
naming = "priority"
"""


def fixture_http_config(url: str) -> str:
    return f"""
[servers.fixture]
url = "{url}"
[endpoints.conformance]
servers = ["fixture"]
naming = "priority"
"""


def start_lane(url: str, capabilities: dict) -> None:
    """Starts the upstream connection Gantry keeps for clients with `capabilities` and waits
    until it is up (`server/discover` waits for it). One suite check reads its reply within
    600 ms and declares elicitation, a set nothing before it used: over stdio the new
    connection is a new process, and the check would measure that process's start-up."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }
    r = httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}},
        headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"},
        timeout=30,
        trust_env=False,
    )
    assert r.status_code == 200 and "tools" in r.json()["result"]["capabilities"], r.text


@pytest.mark.parametrize("upstream", ["stdio", "streamable-http", "stdio-legacy"])
@pytest.mark.parametrize("version", ["2025-11-25", "2026-07-28"])
def test_conformance_suite_through_gantry(gantry, spawn, version: str, upstream: str) -> None:
    if upstream.startswith("stdio"):
        gw = gantry(fixture_stdio_config("legacy" if upstream == "stdio-legacy" else "auto"))
    else:
        from conftest import start_conformance_fixture

        gw = gantry(fixture_http_config(start_conformance_fixture(spawn).url))
    if version == "2026-07-28":
        start_lane(gw.endpoint_url("conformance"), {"elicitation": {}})
    suffix = "-legacy-upstream" if upstream == "stdio-legacy" else ""
    baseline = REPO_ROOT / "tests" / "conformance" / f"baseline-gantry-{version}{suffix}.yml"
    if not baseline.exists():
        baseline = REPO_ROOT / "tests" / "conformance" / f"baseline-{version}.yml"
    run = subprocess.run(
        [
            str(REPO_ROOT / "scripts" / "conformance.sh"),
            gw.endpoint_url("conformance"),
            version,
            "--baseline",
            str(baseline),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(run.stdout[-6000:])
    print(run.stderr[-3000:])
    assert run.returncode == 0, f"conformance {version} failed through gantry (see output above)"
    assert f"conformance {version}:" in run.stdout

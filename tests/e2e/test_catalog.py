"""The persisted catalog, end to end: Gantry keeps every server's definitions in its database
(`<data_dir>/gantry.db`), serves a server's last known tools while it cannot start, records
definitions that change between runs, and searches the configured servers' catalog.

Servers: npm server-everything (stdio) and tests/fixtures/catalog_server.py (PyPI `mcp` 2.x,
stdio), whose tool description depends on CATALOG_VARIANT. Client: PyPI `mcp` 2.x `Client`
in legacy mode. The admin views are the real CLI: `gantry catalog list|changes --json` and
`gantry search --config`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mcp import Client

from conftest import FIXTURES_DIR, gantry_cli as cli, gantry_ok, poll, texts, tool, wait_for

pytestmark = pytest.mark.anyio

CATALOG_FIXTURE = FIXTURES_DIR / "catalog_server.py"
SECRET = "s3cret-token-never-stored-7f1c"


def config(everything_command: str, variant: str) -> str:
    return f"""
[servers.everything]
command = "{everything_command}"
args = ["stdio"]
[servers.glossary]
command = "{sys.executable}"
args = ["{CATALOG_FIXTURE}"]
env = {{ CATALOG_VARIANT = "{variant}", GLOSSARY_API_TOKEN = "{SECRET}" }}
[endpoints.main]
servers = ["everything", "glossary"]
"""


def cli_json(*args: str):
    return json.loads(gantry_ok(*args))


def synced(config_path: Path, server: str, tool_name: str):
    """The stored catalog of `server` once it holds `tool_name` with that description."""

    def check():
        for s in cli_json("catalog", "list", "--config", str(config_path), "--json"):
            if s["server"] == server and s["synced_at"]:
                names = {i["name"] for i in s["items"] if i["kind"] == "tool"}
                if tool_name in names:
                    return s
        return None

    return poll(check, f"the database to hold {server}/{tool_name}")


def tool_descriptions(tools) -> dict[str, str]:
    return {t.name: t.description or "" for t in tools}


async def test_the_last_known_catalog_is_served_changes_are_recorded_and_searchable(gantry, tmp_path) -> None:
    everything = tool("mcp-server-everything")
    data_dir = tmp_path / "gantry-data"

    # --- Run 1: both servers work; their catalogs reach the database. -------------------------
    gw1 = gantry(config(everything, "1"))
    async with Client(gw1.endpoint_url("main"), mode="legacy") as c:
        async def both_listed():
            names = {t.name for t in (await c.list_tools()).tools}
            wanted = {"everything__echo", "glossary__glossary_lookup", "glossary__retired_tool"}
            return names if wanted <= names else None

        run1 = await wait_for(both_listed, "both servers' tools")
    everything_tools = {n for n in run1 if n.startswith("everything__")}
    assert len(everything_tools) > 3, run1
    assert data_dir.is_dir() and (data_dir / "gantry.db").exists()
    assert data_dir.stat().st_mode & 0o777 == 0o700, oct(data_dir.stat().st_mode)
    synced(gw1.config_path, "everything", "echo")
    synced(gw1.config_path, "glossary", "retired_tool")
    changes = cli_json("catalog", "changes", "--config", str(gw1.config_path), "--json")
    # server-everything announces list changes right after it connects, so its first sync may
    # be the one its notification caused.
    seen = {(c["server"], c["name"]): c for c in changes}
    assert seen[("everything", "echo")]["change"] == "added", changes
    assert seen[("everything", "echo")]["trigger"] in ("connect", "list_changed"), changes
    assert seen[("glossary", "glossary_lookup")]["trigger"] == "connect", changes
    assert not [c for c in changes if c["change"] != "added"], changes
    gw1.proc.stop()
    before = {s["server"]: s for s in cli_json("catalog", "list", "--config", str(gw1.config_path), "--json")}

    # --- Run 2: everything cannot start; the glossary server's definitions changed. ----------
    gw2 = gantry(config("/nonexistent/mcp-server-everything", "2"))
    async with Client(gw2.endpoint_url("main"), mode="legacy") as c:
        async def glossary_v2():
            tools = (await c.list_tools()).tools
            d = tool_descriptions(tools)
            return tools if "(variant 2)" in d.get("glossary__glossary_lookup", "") else None

        tools = await wait_for(glossary_v2, "the glossary server's new definitions")
        names = {t.name for t in tools}
        # The dead server's last known tools are still listed...
        assert {n for n in names if n.startswith("everything__")} == everything_tools, names
        # ...the live server's list is its new one...
        assert "glossary__new_tool" in names and "glossary__retired_tool" not in names, names
        # ...a call to the dead server says why it cannot be served...
        with pytest.raises(Exception) as err:
            await c.session.call_tool("everything__echo", {"message": "hi"})
        assert "server everything is unavailable" in str(err.value), err.value
        # ...and the live server works.
        assert texts(await c.call_tool("glossary__count_letters", {"word": "gantry"})) == ["6"]
    assert "listing the server's last known catalog (stale)" in gw2.proc.logs()

    # The changed definition is recorded, with who and why.
    def glossary_changes():
        rows = cli_json("catalog", "changes", "--config", str(gw2.config_path), "--server", "glossary", "--json")
        return rows if any(r["change"] == "changed" for r in rows) else None

    rows = poll(glossary_changes, "the change to be recorded")
    changed = [r for r in rows if r["change"] == "changed"]
    assert [(r["kind"], r["name"], r["trigger"]) for r in changed] == [("tool", "glossary_lookup", "connect")], rows
    assert changed[0]["old_fingerprint"].startswith("sha256:")
    assert changed[0]["new_fingerprint"].startswith("sha256:")
    assert changed[0]["old_fingerprint"] != changed[0]["new_fingerprint"]
    assert {(r["name"], r["change"]) for r in rows} >= {("retired_tool", "removed"), ("new_tool", "added")}
    assert not [r for r in rows if r["name"] == "count_letters" and r["change"] != "added"], rows
    # Only changes: the filter and the dead server's unchanged record.
    only = cli_json("catalog", "changes", "--config", str(gw2.config_path), "--change", "changed", "--json")
    assert [(r["server"], r["name"]) for r in only] == [("glossary", "glossary_lookup")], only
    listing = {s["server"]: s for s in cli_json("catalog", "list", "--config", str(gw2.config_path), "--json")}
    # The dead server's stored catalog is untouched: it was never read in this run.
    assert listing["everything"]["configured"]
    assert listing["everything"]["synced_at"] == before["everything"]["synced_at"]
    assert listing["everything"]["items"] == before["everything"]["items"]
    assert not [r for r in cli_json("catalog", "changes", "--config", str(gw2.config_path), "--server",
                                     "everything", "--json") if r["change"] != "added"]
    lookup = [i for i in listing["glossary"]["items"] if i["name"] == "glossary_lookup"][0]
    assert lookup["fingerprint"] == changed[0]["new_fingerprint"]
    text = cli("catalog", "changes", "--config", str(gw2.config_path), "--change", "changed")
    assert text.returncode == 0 and "glossary/tool glossary_lookup" in text.stdout, text

    # No secret from the config is in the database (env values, commands: only what servers say).
    stored = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.name.startswith("gantry.db"))
    assert b"glossary_lookup" in stored
    assert SECRET.encode() not in stored
    assert str(CATALOG_FIXTURE).encode() not in stored

    # --- Search on the live catalog, while gantry runs on the same database. -----------------
    hits = cli_json("search", "--config", str(gw2.config_path), "--offline", "--json", "glossary", "definition")
    assert hits and hits[0]["id"] == "glossary/glossary_lookup", hits
    r = cli("search", "--config", str(gw2.config_path), "--timeout", "20", "--limit", "3", "echo", "message")
    assert r.returncode == 0, r.stderr
    assert "everything/echo" in r.stdout, r.stdout
    assert "server everything has not answered" in r.stderr, r.stderr
    # The file mode keeps working.
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(json.dumps({"s": [{"name": "get_weather", "description": "Weather now"}]}))
    hits = cli_json("search", "--catalog", str(catalog_file), "--json", "weather")
    assert hits[0]["id"] == "s/get_weather"
    gw2.proc.stop()

    # --- Run 3: a server removed from the config is not served from the cache. ---------------
    only_glossary = config(everything, "2").split("[servers.glossary]")[1].split("[endpoints.main]")[0]
    gw3 = gantry(f'[servers.glossary]{only_glossary}[endpoints.main]\nservers = ["glossary"]\n')
    async with Client(gw3.endpoint_url("main"), mode="legacy") as c:
        async def glossary_listed():
            return {t.name for t in (await c.list_tools()).tools}

        names = await wait_for(glossary_listed, "the glossary tools")
        assert not any(n.startswith("everything__") for n in names), names
    listing = {s["server"]: s for s in cli_json("catalog", "list", "--config", str(gw3.config_path), "--json")}
    assert listing["everything"]["configured"] is False
    # --data-dir points elsewhere: an empty catalog there.
    other = tmp_path / "elsewhere"
    r = cli("catalog", "list", "--config", str(gw3.config_path), "--data-dir", str(other), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["synced_at"] is None, r
    assert "no catalog yet" in r.stderr

"""Users, teams, API keys and the admin API, end to end.

The real CLI (`gantry user|team|key`) writes the database; the real gateway (`gantry serve`)
serves `/admin/api/v1` with those keys, notices changes the CLI makes while it runs (it polls
the database), and refuses missing, data-plane-only, revoked, expired and unknown credentials
with the right status and `WWW-Authenticate`. The server behind the one endpoint is PyPI
`mcp-server-time` over stdio. Every wait is a bounded poll on a real condition.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from conftest import gantry_cli as cli, gantry_ok as ok, poll, tool

BASE = "/admin/api/v1"


def www_authenticate(r: httpx.Response) -> str:
    value = r.headers.get("www-authenticate", "")
    assert value.startswith("Bearer "), f"{r.status_code} without a Bearer challenge: {r.headers}"
    return value


def test_identities_keys_and_the_admin_api(gantry, tmp_path: Path):
    data = tmp_path / "data"
    at = ["--data-dir", str(data)]

    # --- the CLI, before the gateway runs ---------------------------------------------------
    ok("user", "add", "root", "--display-name", "The Admin", *at)
    ok("user", "add", "alice", *at)
    ok("team", "add", "ops", *at)
    ok("team", "add-member", "ops", "alice", *at)
    control = ok("key", "create", "--user", "root", "--plane", "control", "--label", "ci", *at).strip()
    data_key = ok("key", "create", "--user", "alice", "--plane", "data", *at).strip()
    both = json.loads(ok("key", "create", "--user", "alice", "--plane", "both", "--json", *at))
    short = ok("key", "create", "--user", "root", "--plane", "control", "--expires", "2s", *at).strip()
    secrets = [control, data_key, both["key"], short]
    for k in secrets:
        assert k.startswith("gantry_") and len(k) == 72, k
    listed = json.loads(ok("key", "list", "--json", *at))
    assert {k["user"] for k in listed} == {"root", "alice"}
    assert all("key" not in k for k in listed), "listings never carry a key"
    assert not any(k.split("_")[2] in json.dumps(listed) for k in secrets)
    assert json.loads(ok("user", "list", "--json", *at))[0]["teams"] == ["ops"]  # alice
    bad = cli("user", "add", "no spaces", *at)
    assert bad.returncode != 0 and "' ' at position 3" in bad.stderr

    gw = gantry(
        f"""
data_dir = "{data}"
[servers.time]
command = "{tool('mcp-server-time')}"
args = ["--local-timezone", "UTC"]
[endpoints.main]
servers = ["time"]
""",
        env={"RUST_LOG": "info,gantry_admin=debug,gantry_auth=debug"},
    )
    api = httpx.Client(base_url=gw.base_url + BASE, trust_env=False, timeout=10)
    auth = lambda key: {"Authorization": f"Bearer {key}"}  # noqa: E731
    admin = auth(control)

    # --- refusals ---------------------------------------------------------------------------
    r = api.get("/users")
    assert r.status_code == 401
    assert 'realm="gantry-admin"' in www_authenticate(r)
    assert "control-plane credential" in r.json()["error"]["message"]
    r = api.get("/users", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 400 and 'error="invalid_request"' in www_authenticate(r)
    r = api.get("/users", headers=auth(data_key))
    assert r.status_code == 403, r.text
    assert "data plane only" in r.json()["error"]["message"]
    assert "error_description=" in www_authenticate(r)

    # --- users, teams, members --------------------------------------------------------------
    users = api.get("/users", headers=admin).json()["users"]
    assert [u["name"] for u in users] == ["alice", "root"]
    assert users[1]["display_name"] == "The Admin"
    r = api.post("/users", headers=admin, json={"name": "bob", "display_name": "Bob"})
    assert r.status_code == 201 and r.json()["name"] == "bob"
    r = api.post("/users", headers=admin, json={"name": "bob"})
    assert r.status_code == 409 and r.json()["error"]["message"] == 'user "bob" already exists'
    r = api.post("/users", headers=admin, json={"name": "-bob"})
    assert r.status_code == 422 and "must start with a letter or digit" in r.json()["error"]["message"]
    r = api.post("/users", headers=admin, json={"name": "carol", "role": "x"})
    assert r.status_code == 422 and 'unknown field "role"' in r.json()["error"]["message"]
    r = api.post("/users", headers=admin, content=b"{not json")
    assert r.status_code == 400
    assert api.get("/users/nobody", headers=admin).status_code == 404
    r = api.post("/users/bob", headers=admin, json={})
    assert r.status_code == 405 and r.headers["allow"] == "GET, PATCH, DELETE"
    assert api.post("/teams", headers=admin, json={"name": "dev"}).status_code == 201
    assert api.put("/teams/dev/members/bob", headers=admin).status_code == 201
    assert api.put("/teams/dev/members/bob", headers=admin).status_code == 200
    assert api.get("/teams/dev/members", headers=admin).json()["members"] == ["bob"]
    assert api.get("/users/bob", headers=admin).json()["teams"] == ["dev"]
    assert api.put("/teams/dev/members/zed", headers=admin).status_code == 404

    # --- keys through the API: created once, a disabled owner, revocation --------------------
    r = api.post("/keys", headers=admin, json={"user": "bob", "plane": "control", "label": "api"})
    assert r.status_code == 201, r.text
    bob_key, bob_id = r.json()["key"], r.json()["id"]
    secrets.append(bob_key)
    assert "not be shown again" in r.json()["warning"] or "cannot show it again" in r.json()["warning"]
    assert api.get("/users", headers=auth(bob_key)).status_code == 200
    assert api.patch("/users/bob", headers=admin, json={"disabled": True}).json()["disabled"] is True
    r = api.get("/users", headers=auth(bob_key))
    assert r.status_code == 401 and "disabled" in r.json()["error"]["message"]
    assert 'error="invalid_token"' in www_authenticate(r)
    api.patch("/users/bob", headers=admin, json={"disabled": False})
    assert api.get("/users", headers=auth(bob_key)).status_code == 200
    r = api.delete(f"/keys/{bob_id}", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    r = api.get("/users", headers=auth(bob_key))  # at once: the write refreshed the key table
    assert r.status_code == 401 and f"gantry_{bob_id} was revoked" in r.json()["error"]["message"]
    assert api.delete(f"/keys/{bob_id}", headers=admin).status_code == 409
    r = api.post("/keys", headers=admin, json={"user": "bob", "plane": "root"})
    assert r.status_code == 422 and "not one of data, control, both" in r.json()["error"]["message"]
    r = api.post("/keys", headers=admin, json={"user": "bob", "expires": "yesterday"})
    assert r.status_code == 422
    keys = api.get("/keys", headers=admin, params={"user": "root"}).json()["keys"]
    assert {k["plane"] for k in keys} == {"control"}
    assert all("key" not in k for k in keys)
    mine = next(k for k in keys if control.startswith(f"gantry_{k['id']}_"))
    assert mine["last_used_at"] is not None and mine["label"] == "ci"
    assert api.get("/keys", headers=admin, params={"nope": "1"}).status_code == 400
    assert api.delete("/teams/dev/members/bob", headers=admin).json()["members"] == []
    assert api.delete("/users/bob", headers=admin).status_code == 200
    assert api.delete("/teams/dev", headers=admin).status_code == 200
    assert api.get("/teams", headers=admin).json()["teams"][0]["name"] == "ops"

    # --- servers, endpoints, catalog, document ----------------------------------------------
    servers = api.get("/servers", headers=admin).json()["servers"]
    assert servers[0]["name"] == "time" and servers[0]["transport"] == "stdio"
    assert servers[0]["endpoints"] == ["main"]
    poll(lambda: api.get("/servers/time", headers=admin).json()["status"] == "ready", "time ready")
    assert api.get("/servers/nope", headers=admin).status_code == 404
    eps = api.get("/endpoints", headers=admin).json()["endpoints"]
    assert eps[0]["name"] == "main" and eps[0]["servers"] == ["time"] and eps[0]["path"] == "/mcp/main"
    items = poll(
        lambda: api.get("/catalog/items", headers=admin, params={"server": "time"}).json()["items"],
        "the time server's catalog to be stored",
    )
    assert {"get_current_time", "convert_time"} <= {i["name"] for i in items}
    changes = api.get("/catalog/changes", headers=admin, params={"change": "added"}).json()["changes"]
    assert changes and all(c["change"] == "added" for c in changes)
    assert api.get("/catalog/changes", headers=admin, params={"change": "moved"}).status_code == 400
    doc = api.get("/openapi.json", headers=admin).json()
    assert doc["openapi"] == "3.1.0"
    for path in ["/users", "/users/{name}", "/teams/{name}/members/{user}", "/keys/{id}", "/servers",
                 "/endpoints", "/catalog/items", "/catalog/changes", "/openapi.json"]:
        assert path in doc["paths"], path

    # --- out-of-process changes: revoked by the CLI while gantry runs; expired ------------------
    assert api.get("/users", headers=auth(both["key"])).status_code == 200
    ok("key", "revoke", both["id"], *at)

    def refused():
        r = api.get("/users", headers=auth(both["key"]))
        return r if r.status_code == 401 else None

    r = poll(refused, "the CLI's revocation to reach the running gateway", timeout=10)
    assert f"the API key gantry_{both['id']} was revoked" in r.json()["error"]["message"]
    assert 'error="invalid_token"' in www_authenticate(r)

    def expired():
        r = api.get("/users", headers=auth(short))
        return r if r.status_code == 401 else None

    r = poll(expired, "the 2 s key to expire", timeout=10)
    assert "has expired" in r.json()["error"]["message"]

    # --- repeated failures from one source: 429, even for a good key, with Retry-After ---------
    wrong = control[: -4] + ("aaaa" if not control.endswith("aaaa") else "bbbb")
    statuses = [api.get("/users", headers=auth(wrong)).status_code for _ in range(12)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    r = api.get("/users", headers=admin)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0

    # --- the log names keys by id and never holds a secret ----------------------------------
    log = gw.proc.stderr_path.read_text()
    assert "admin API request refused" in log
    assert f"gantry_{both['id']}" in log
    for k in secrets + [wrong]:
        assert k.split("_", 2)[2] not in log, "a key's secret reached the log"

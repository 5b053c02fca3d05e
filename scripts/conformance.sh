#!/usr/bin/env bash
# Run the official MCP conformance suite (server mode) against a URL and compare the result
# with a committed baseline of expected failures.
#
# Usage:
#   scripts/conformance.sh URL SPEC_VERSION [--baseline FILE]
#   scripts/conformance.sh fixture SPEC_VERSION [--baseline FILE]
#
#   URL           the MCP endpoint, e.g. http://127.0.0.1:8080/mcp/<endpoint>; the literal
#                 word `fixture` starts tests/fixtures/conformance_server.py on a free port
#                 and tests it directly (no gateway).
#   SPEC_VERSION  2025-11-25 or 2026-07-28: runs exactly the server scenarios that revision
#                 requires (`conformance server --requirements SPEC_VERSION`).
#   --baseline    expected failures (default tests/conformance/baseline-SPEC_VERSION.yml),
#                 in the suite's --expected-failures format.
#
# Exit status is non-zero when a scored scenario fails that the baseline does not list, or
# when a baseline entry now passes (a stale entry: remove it), or when a baseline entry
# names something that is not a scored scenario of that revision. Results go under
# .tmp/conformance/ (ignored). Needs scripts/deps.sh to have run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 2 ]] || usage
URL="$1"
VERSION="$2"
shift 2
BASELINE="$ROOT/tests/conformance/baseline-$VERSION.yml"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --baseline) [[ $# -ge 2 ]] || usage; BASELINE="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "conformance.sh: unknown argument: $1" >&2; usage ;;
  esac
done

case "$VERSION" in
  2025-11-25|2026-07-28) ;;
  *) echo "conformance.sh: SPEC_VERSION must be 2025-11-25 or 2026-07-28, got '$VERSION'" >&2; exit 2 ;;
esac
[[ -f "$BASELINE" ]] || { echo "conformance.sh: baseline file not found: $BASELINE" >&2; exit 2; }
[[ -f "$ROOT/.deps/env.sh" ]] || { echo "conformance.sh: run scripts/deps.sh first" >&2; exit 2; }
# shellcheck source=/dev/null
. "$ROOT/.deps/env.sh"
command -v conformance >/dev/null || { echo "conformance.sh: conformance CLI missing; run scripts/deps.sh" >&2; exit 2; }

RUN_DIR="$ROOT/.tmp/conformance/$VERSION-$(date -u +%Y%m%dT%H%M%SZ)-$$"
mkdir -p "$RUN_DIR"

FIXTURE_PID=""
cleanup() {
  if [[ -n "$FIXTURE_PID" ]]; then
    kill -TERM -- "-$FIXTURE_PID" 2>/dev/null || true
    wait "$FIXTURE_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if [[ "$URL" == "fixture" ]]; then
  port="$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  # Own process group, so cleanup ends the fixture and anything it started.
  setsid python "$ROOT/tests/fixtures/conformance_server.py" --transport streamable-http --port "$port" \
    >"$RUN_DIR/fixture.log" 2>&1 &
  FIXTURE_PID=$!
  URL="http://127.0.0.1:$port/mcp"
  # Readiness: poll until the port accepts connections (bounded: 30 s).
  python - "$port" "$FIXTURE_PID" <<'EOF' || { cat "$RUN_DIR/fixture.log" >&2; exit 1; }
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("conformance.sh: fixture exited before it listened")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("conformance.sh: fixture did not listen within 30 s")
EOF
  echo "conformance.sh: started fixture at $URL (log: ${RUN_DIR#"$ROOT"/}/fixture.log)"
fi

REQUIREMENTS="$ROOT/tests/e2e/node_modules/@modelcontextprotocol/conformance/requirements/$VERSION.yaml"
[[ -f "$REQUIREMENTS" ]] || { echo "conformance.sh: $REQUIREMENTS missing" >&2; exit 2; }

echo "conformance.sh: running the $VERSION requirements against $URL (results: ${RUN_DIR#"$ROOT"/})"
set +e
conformance server --url "$URL" --requirements "$VERSION" --expected-failures "$BASELINE" \
  -o "$RUN_DIR/results" >"$RUN_DIR/run.log" 2>&1
suite_rc=$?
set -e
# The suite's own verdict block (expected / stale / unexpected), without the per-scenario noise.
sed -n '/=== SUMMARY ===/,$p' "$RUN_DIR/run.log"

# Our own reading of the results files: the summary line, plus the same two baseline rules
# checked independently (and entries the suite would silently ignore).
set +e
python - "$VERSION" "$REQUIREMENTS" "$BASELINE" "$RUN_DIR/results" "$suite_rc" <<'EOF'
import json, re, sys
from pathlib import Path

import yaml

version, req_path, baseline_path, results_dir, suite_rc = sys.argv[1:6]
suite_rc = int(suite_rc)
required = list(yaml.safe_load(Path(req_path).read_text())["server"])
baseline = (yaml.safe_load(Path(baseline_path).read_text()) or {}).get("server") or []
whole = {str(e) for e in baseline if ":" not in str(e)}
per_check: dict[str, set[str]] = {}
for e in baseline:
    if ":" in str(e):
        scenario, check = str(e).split(":", 1)
        per_check.setdefault(scenario, set()).add(check)

# results/server-<scenario>-<ISO timestamp>/checks.json
pattern = re.compile(r"^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")
checks_by_scenario: dict[str, list[dict]] = {}
for d in sorted(Path(results_dir).glob("server-*")):
    m = pattern.match(d.name)
    if m and (d / "checks.json").is_file():
        checks_by_scenario[m.group(1)] = json.loads((d / "checks.json").read_text())

BAD = ("FAILURE", "WARNING")  # the suite's baseline check counts both as failing
passed, failed, expected, unexpected, stale, problems = [], [], [], [], [], []
for scenario in required:
    checks = checks_by_scenario.get(scenario)
    if checks is None:
        checks = [{"id": scenario, "status": "FAILURE", "errorMessage": "no results written (scenario crashed?)"}]
    failing = [c for c in checks if c.get("status") in BAD]
    if failing:
        failed.append(scenario)
    else:
        passed.append(scenario)
    if scenario in whole:
        (expected if failing else stale).append(scenario)
        continue
    allowed = per_check.get(scenario, set())
    surprises = [c for c in failing if c.get("id") not in allowed]
    if failing and not surprises:
        expected.append(scenario)
    for c in surprises:
        unexpected.append(f"{scenario}:{c.get('id')} [{c.get('status')}] {c.get('errorMessage') or ''}".rstrip())
    for check_id in sorted(allowed):
        statuses = {c.get("status") for c in checks if c.get("id") == check_id}
        if statuses and statuses <= {"SUCCESS", "INFO"} and "SUCCESS" in statuses:
            stale.append(f"{scenario}:{check_id}")

for entry in sorted(whole | set(per_check)):
    if entry not in required:
        problems.append(f"{entry}: not a scored server scenario of {version}; the suite ignores it (remove it)")

not_scored_failing = sorted(
    s for s, checks in checks_by_scenario.items()
    if s not in required and any(c.get("status") in BAD for c in checks)
)

for line in unexpected:
    print(f"  unexpected failure: {line}")
for line in stale:
    print(f"  stale baseline entry (now passes; remove it from {Path(baseline_path).name}): {line}")
for line in problems:
    print(f"  bad baseline entry: {line}")
if not_scored_failing:
    print(f"  not scored (informational) but failing: {', '.join(not_scored_failing)}")
if failed:
    print(f"  failing scenarios: {', '.join(failed)}")
print(f"conformance {version}: {len(passed)} passed, {len(failed)} failed ({len(expected)} expected)")
ok = not unexpected and not stale and not problems
if ok and suite_rc != 0:
    print(f"  the conformance CLI exited {suite_rc} although the results files look fine; see run.log")
sys.exit(0 if ok and suite_rc == 0 else 1)
EOF
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  echo "conformance.sh: FAILED (details: ${RUN_DIR#"$ROOT"/}/run.log and results/)" >&2
fi
exit $rc

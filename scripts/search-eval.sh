#!/usr/bin/env bash
# Score `gantry search` on the tool-search benchmark in shared/data (beside the repository):
# builds the release binary, writes the run file into a temporary directory, prints the
# scorer's table (overall, per kind, per language), then the latency benchmark on 10,000
# tools (build time, index memory, p50/p90/p99 per query).
#
# Usage: scripts/search-eval.sh [--json]      (extra arguments go to score.py)
# Env:   SEARCH_DATA   benchmark folder (default: ../shared/data next to the repository)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${SEARCH_DATA:-$ROOT/../shared/data}"
CATALOG="$DATA/catalogs/livemcptool.json"
QUERIES="$DATA/queries/public.jsonl"
for f in "$CATALOG" "$QUERIES" "$DATA/queries/score.py"; do
  [[ -f "$f" ]] || { echo "missing $f (set SEARCH_DATA)" >&2; exit 2; }
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release -q -p gantry-cli --manifest-path "$ROOT/Cargo.toml"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$CARGO_TARGET_DIR/release/gantry" search --catalog "$CATALOG" --queries "$QUERIES" \
  --out "$TMP/run.jsonl"
python3 "$DATA/queries/score.py" "$QUERIES" "$TMP/run.jsonl" --catalog "$CATALOG" "$@"

# Latency and build time on a 10,000-tool catalog synthesised from the real one, and the
# index's memory (DESIGN.md §8: p50 ≤ 0.5 ms).
cargo run --release -q -p gantry-search --example search_bench --manifest-path "$ROOT/Cargo.toml"

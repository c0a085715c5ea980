#!/usr/bin/env bash
# The npm packages the tests drive against a served runner (tests/runner/test_openai_clients.py):
# the `openai` npm client, pinned, installed into a cache outside the repo (default
# ~/.cache/aiassistant-operator/npm, or $AIASSISTANT_NPM_CACHE). A no-op when that version is there.
# Without node/npm this says so and exits 0: the npm client's test then skips with that reason.
# openai 6.x: 7.x needs Node.js 22, and the machines have Node.js 20.
set -euo pipefail
OPENAI_NPM_VERSION=6.49.0
DIR="${AIASSISTANT_NPM_CACHE:-$HOME/.cache/aiassistant-operator/npm}"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "note: node/npm not found; the openai npm client's test will skip" >&2
  exit 0
fi
installed="$DIR/node_modules/openai/package.json"
if [ -f "$installed" ] && node -e "process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)" "$installed" "$OPENAI_NPM_VERSION"; then
  exit 0
fi
mkdir -p "$DIR"
cat >"$DIR/package.json" <<JSON
{"name": "aiassistant-operator-test-clients", "private": true, "dependencies": {"openai": "$OPENAI_NPM_VERSION"}}
JSON
npm install --prefix "$DIR" --no-audit --no-fund --omit=peer --loglevel=error
node -e "console.log('openai (npm)', require(process.argv[1]).version)" "$installed"

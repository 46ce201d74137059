#!/usr/bin/env bash
# The one test command (npm test): installs what a fresh machine lacks, then runs every layer
#   1. typecheck   2. unit (Vitest, Node)   3. gpu (WGSL on real WebGPU via Dawn)
#   4. e2e (Playwright driving the system Chromium against the production build)
# and ends with one summary line of counts. Exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-results
rm -f test-results/*.json test-results/layers.txt

source scripts/setup.sh

log() { printf '\n== %s ==\n' "$*"; }

# layer NAME COMMAND...: runs a layer; a layer that fails without writing its JSON report counts as one failure.
layer() {
  local name=$1; shift
  log "$name"
  "$@"
  local rc=$?
  echo "$name $rc" >> test-results/layers.txt
  return 0
}

ensure_chromium || { echo "setup: 0 passed, 1 failed"; exit 1; }
ensure_node_modules || { echo "setup: 0 passed, 1 failed"; exit 1; }
ensure_build_tools || { echo "setup: 0 passed, 1 failed"; exit 1; }
ensure_python_jinja2 || { echo "setup: 0 passed, 1 failed"; exit 1; }

layer typecheck npx tsc -p tsconfig.json --noEmit
layer unit npx vitest run --project unit --reporter=default --reporter=json --outputFile=test-results/unit.json
layer gpu npx vitest run --project gpu --reporter=default --reporter=json --outputFile=test-results/gpu.json
layer build npx vite build --logLevel warn
layer e2e npx playwright test

node scripts/test-summary.js

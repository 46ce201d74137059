#!/usr/bin/env bash
# npm start: install if needed, build the production app, serve it on http://localhost:4173.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
ensure_node_modules
npx vite build
echo "Hearth is at http://localhost:${PORT:-4173} (Ctrl+C to stop)"
exec npx vite preview --strictPort --host localhost --port "${PORT:-4173}"

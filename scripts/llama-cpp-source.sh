#!/usr/bin/env bash
# Extracts llama.cpp's source from the git bundle that node-llama-cpp ships
# (node_modules/node-llama-cpp/llama/gitRelease.bundle) into .cache/llama.cpp, once per bundle.
# Tests use its headers, tokenizer suites (models/ggml-vocab-*) and chat templates.
# Prints the source directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=node_modules/node-llama-cpp/llama/gitRelease.bundle
dest=.cache/llama.cpp
[ -f "$bundle" ] || { echo "missing $bundle: run npm ci" >&2; exit 1; }
mkdir -p .cache
# Parallel test processes may call this at once: one extraction at a time (its own lock file:
# build-llama-ref.sh holds .cache/llama-ref.lock while it calls this script).
if command -v flock >/dev/null; then
  exec 8>.cache/llama-cpp-source.lock
  flock -w 600 8 || { echo "llama-cpp-source: timed out waiting for the lock" >&2; exit 1; }
fi
stamp="$dest/.hearth-bundle-hash"
want=$(sha256sum "$bundle" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$dest"
  mkdir -p .cache
  git -c advice.detachedHead=false clone -q "$bundle" "$dest"
  echo "$want" > "$stamp"
fi
echo "$PWD/$dest"

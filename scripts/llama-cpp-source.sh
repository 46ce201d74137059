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
stamp="$dest/.hearth-bundle-hash"
want=$(sha256sum "$bundle" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  rm -rf "$dest"
  mkdir -p .cache
  git -c advice.detachedHead=false clone -q "$bundle" "$dest"
  echo "$want" > "$stamp"
fi
echo "$PWD/$dest"

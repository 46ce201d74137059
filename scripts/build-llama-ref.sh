#!/usr/bin/env bash
# Builds tools/llama-ref (llama.cpp as a command-line test oracle) into .cache/llama-ref/<hash>/llama-ref.
# It links against the prebuilt llama.cpp/ggml shared libraries that node-llama-cpp installs and
# compiles against the headers of the same llama.cpp source (scripts/llama-cpp-source.sh), so no
# llama.cpp build is needed. Rebuilds only when the sources, headers, libraries or compiler change
# (a hash stamp). Prints the binary path on stdout; everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

# Test files run in parallel processes and each may ask for the binary (and the source checkout):
# one build at a time.
mkdir -p .cache
if command -v flock >/dev/null; then
  exec 9>.cache/llama-ref.lock
  flock -w 600 9 || { echo "build-llama-ref: timed out waiting for .cache/llama-ref.lock" >&2; exit 1; }
fi

src_dir=$(bash scripts/llama-cpp-source.sh)
lib_dir=$PWD/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
cxx=${CXX:-g++}

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "build-llama-ref: only linux-x64 is supported (node-llama-cpp's prebuilt CPU libraries)" >&2
  exit 1
fi
for lib in libllama.v0.4.0.so libggml.v0.4.0.so libggml-base.so; do
  [ -f "$lib_dir/$lib" ] || { echo "build-llama-ref: missing $lib_dir/$lib: run npm ci" >&2; exit 1; }
done
command -v "$cxx" >/dev/null || { echo "build-llama-ref: no C++ compiler ($cxx); install g++" >&2; exit 1; }

sources=(tools/llama-ref/*.cpp)
stamp_input() {
  echo "$cxx $($cxx --version | head -1)"
  echo "$lib_dir"
  sha256sum tools/llama-ref/*.cpp tools/llama-ref/*.hpp scripts/build-llama-ref.sh
  sha256sum "$src_dir"/include/llama.h "$src_dir"/ggml/include/*.h
  sha256sum "$lib_dir"/libllama.v0.4.0.so "$lib_dir"/libggml.v0.4.0.so "$lib_dir"/libggml-base.so
}
want=$(stamp_input | sha256sum | cut -d' ' -f1)
# One build per source state: worktrees that share .cache with other sources of llama-ref (parallel
# branches) each keep their own binary instead of rebuilding over each other's.
out_dir=$PWD/.cache/llama-ref/${want:0:16}
bin=$out_dir/llama-ref
stamp=$out_dir/.stamp
if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$out_dir"
rm -f "$stamp"
# Compile the units in parallel, then link. -l: names the versioned files exactly; the rpath lets the
# binary find them (and ggml find its libggml-cpu-* variants) without LD_LIBRARY_PATH.
objs=()
pids=()
for s in "${sources[@]}"; do
  o=$out_dir/$(basename "${s%.cpp}").o
  objs+=("$o")
  "$cxx" -std=c++17 -O2 -Wall -Wextra -c "$s" -o "$o" \
    -I"$src_dir/include" -I"$src_dir/ggml/include" &
  pids+=($!)
done
for p in "${pids[@]}"; do
  wait "$p" || { echo "build-llama-ref: compiling tools/llama-ref failed" >&2; exit 1; }
done
"$cxx" -o "$bin.tmp" "${objs[@]}" \
  -L"$lib_dir" -l:libllama.v0.4.0.so -l:libggml.v0.4.0.so -l:libggml-base.so -ldl \
  -Wl,-rpath,"$lib_dir" \
  || { echo "build-llama-ref: linking llama-ref failed" >&2; exit 1; }
mv "$bin.tmp" "$bin"
echo "$want" > "$stamp"
echo "$bin"

#!/usr/bin/env bash
# npm run device-check:prepare: builds .device/carry/, everything scripts/device-check.sh needs on
# the real-GPU machine (Vulkan and an NVIDIA driver, but no Node, no npm and no network), compressed
# with xz (present on minimal Debian and Ubuntu):
#   node.xz          this machine's Node binary
#   webgpu.tar.xz    the `webgpu` package's JS wrapper and linux-x64 dawn.node
#   hearth.tar.xz    the engine, CLI and model generator in one file (hearth.mjs) and the kernel GPU
#                    tests with a Vitest shim (gpu-tests.mjs): scripts/device-check/bundle.mjs
#   llama.tar.xz     the peer: llama-bench compiled here against node-llama-cpp's prebuilt llama.cpp
#                    Vulkan libraries (the same release the repo's llama.cpp source comes from)
#   vulkan.tar.xz    a Vulkan loader (Chromium's libvulkan.so.1), used only where the machine has none
# The device tool carries the working tree plus the ignored paths it is told to (carry:
# [".device/carry"]), 64 MiB in all: the sizes are printed and the step fails above that.
# Big parts are cached by content hash, so a rerun only rebundles the engine.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=$((64 * 1024 * 1024))
build=.device/build
carry=.device/carry
mkdir -p "$build" "$carry"
t0=$(date +%s)

[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || { echo "device-check:prepare: linux-x64 only" >&2; exit 1; }
command -v xz >/dev/null || { echo "device-check:prepare: needs xz" >&2; exit 1; }

# pack NAME INPUT-HASH COMMAND...: runs COMMAND (which writes an xz stream to stdout) into
# $carry/NAME unless the stamp says the inputs are unchanged.
pack() {
  local name=$1 hash=$2; shift 2
  local stamp="$build/$name.stamp"
  if [ -f "$carry/$name" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    echo "  $name: unchanged"
    return
  fi
  echo "  $name: compressing ..."
  "$@" > "$carry/$name.partial"
  mv "$carry/$name.partial" "$carry/$name"
  echo "$hash" > "$stamp"
}
XZ=(xz -9 -T0 -c)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

echo "== Node"
node_bin=$(readlink -f "$(command -v node)")
echo "  $node_bin $(node --version)"
pack node.xz "$(sha256sum "$node_bin" | cut -d' ' -f1)" "${XZ[@]}" "$node_bin"
node --version > "$build/node-version.txt"

echo "== webgpu (Dawn)"
wg=node_modules/webgpu
wg_files=(index.js package.json dist/linux-x64/dawn.node)
pack webgpu.tar.xz "$(cd "$wg" && sha256sum "${wg_files[@]}" | sha256sum | cut -d' ' -f1)" \
  bash -c 'tar -C "$1" -cf - "${@:2}" | xz -9 -T0 -c' _ "$wg" "${wg_files[@]}"

echo "== llama-bench (llama.cpp Vulkan build)"
vk=node_modules/@node-llama-cpp/linux-x64-vulkan/bins/linux-x64-vulkan
[ -f "$vk/libggml-vulkan.so" ] || { echo "missing $vk: run npm ci" >&2; exit 1; }
src=$(bash scripts/llama-cpp-source.sh)
cxx=${CXX:-g++}
command -v "$cxx" >/dev/null || { echo "device-check:prepare: needs a C++ compiler ($cxx) to build llama-bench" >&2; exit 1; }
llama_dir="$build/llama"
bench_hash=$( { "$cxx" --version | head -1; sha256sum "$src"/tools/llama-bench/*.cpp "$vk"/*.so "$0"; } | sha256sum | cut -d' ' -f1)
if [ ! -x "$llama_dir/llama-bench" ] || [ "$(cat "$build/llama-bench.stamp" 2>/dev/null)" != "$bench_hash" ]; then
  echo "  compiling llama-bench from $src ..."
  rm -rf "$llama_dir"
  mkdir -p "$llama_dir"
  cp "$vk"/*.so "$llama_dir/"
  # Its tools/llama-bench/main.cpp calls llama_bench() from llama-bench.cpp; common (arg parsing,
  # logging) comes from the prebuilt libllama-common.so. The rpath finds the libraries beside it.
  "$cxx" -std=c++17 -O2 -DNDEBUG -o "$llama_dir/llama-bench" \
    "$src/tools/llama-bench/llama-bench.cpp" "$src/tools/llama-bench/main.cpp" \
    -I"$src/tools/llama-bench" -I"$src/common" -I"$src/include" -I"$src/ggml/include" -I"$src/vendor" \
    -L"$llama_dir" -l:libllama.vulkan.v0.4.0.so -l:libggml.vulkan.v0.4.0.so -l:libggml-base.so -l:libllama-common.so \
    -Wl,-rpath,'$ORIGIN' -pthread
  echo "$bench_hash" > "$build/llama-bench.stamp"
fi
pack llama.tar.xz "$bench_hash" bash -c 'tar -C "$1" -cf - . | xz -9 -T0 -c' _ "$llama_dir"

echo "== Vulkan loader (fallback)"
loader=""
for d in /usr/lib/chromium /usr/lib64/chromium /usr/lib/chromium-browser /opt/google/chrome; do
  [ -f "$d/libvulkan.so.1" ] && { loader="$d/libvulkan.so.1"; break; }
done
if [ -n "$loader" ]; then
  pack vulkan.tar.xz "$(sha256sum "$loader" | cut -d' ' -f1)" bash -c 'tar -C "$(dirname "$1")" -cf - libvulkan.so.1 | xz -9 -c' _ "$loader"
else
  echo "  none found here (install chromium): the device machine's own loader must do"
  rm -f "$carry/vulkan.tar.xz"
fi

echo "== libglvnd (fallback: NVIDIA's Vulkan ICD needs libEGL.so.1, which CUDA containers may lack)"
glvnd_libs=()
for f in libEGL.so.1 libGLdispatch.so.0; do
  p=$(ldconfig -p 2>/dev/null | awk -v n="$f" '$1 == n {print $NF; exit}')
  [ -n "$p" ] && glvnd_libs+=("$(readlink -f "$p")")
done
if [ "${#glvnd_libs[@]}" = 2 ]; then
  g="$build/glvnd"
  rm -rf "$g" && mkdir -p "$g"
  cp "${glvnd_libs[0]}" "$g/libEGL.so.1" && cp "${glvnd_libs[1]}" "$g/libGLdispatch.so.0"
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libEGL_nvidia.so.0"}}\n' > "$g/10_nvidia.json"
  pack glvnd.tar.xz "$(sha256sum "$g"/* | sha256sum | cut -d' ' -f1)" bash -c 'tar -C "$1" -cf - . | xz -9 -c' _ "$g"
else
  echo "  none found here (apt-get install libegl1): the device machine's own must do"
  rm -f "$carry/glvnd.tar.xz"
fi

echo "== engine bundle"
node scripts/device-check/bundle.mjs "$build/app" | sed 's/^/  /'
tar -C "$build/app" -cf - hearth.mjs gpu-tests.mjs | xz -9 -c > "$carry/hearth.tar.xz.partial"
mv "$carry/hearth.tar.xz.partial" "$carry/hearth.tar.xz"

echo "== what the device run generates there (not carried)"
(cd "$build/app" && mkdir -p node_modules && ln -sfn "$PWD/../../../node_modules/webgpu" node_modules/webgpu && node hearth.mjs device sizes) | sed 's/^/  /'

echo "== sizes"
total=0
for f in "$carry"/*; do
  s=$(stat -c %s "$f")
  total=$((total + s))
  printf '  %-16s %7s MiB\n' "$(basename "$f")" "$(mib "$s")"
done
tree=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
printf '  %-16s %7s MiB\n' "carry total" "$(mib "$total")"
printf '  %-16s %7s MiB (tracked and untracked files the tool copies as well)\n' "working tree" "$(mib $((tree + untracked)))"
all=$((total + tree + untracked))
printf '  %-16s %7s MiB of 64 MiB\n' "all" "$(mib "$all")"
echo "prepared in $(( $(date +%s) - t0 )) s; run there with carry [\".device/carry\"]: bash scripts/device-check.sh"
if [ "$all" -gt "$LIMIT" ]; then
  echo "device-check:prepare: over 64 MiB; run the peer in a second call (bash scripts/device-check.sh --peer-only, carrying only node.xz and llama.tar.xz)" >&2
  exit 1
fi

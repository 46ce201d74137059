#!/usr/bin/env bash
# npm run device-check: the real-GPU check, in one call on a machine with an NVIDIA GPU and Vulkan
# but no Node, no npm and no network (it needs glibc 2.34 and GCC 12's libstdc++, as dawn.node does). Needs .device/carry/ from `npm run device-check:prepare`
# (carry: [".device/carry"]). Unpacks into /tmp, points the Vulkan loader at the NVIDIA driver,
# then runs, each part under its own timeout inside an 8-minute budget (a part that fails or times
# out is recorded and the run goes on):
#   probe       adapter, driver, features, limits (hearth probe)
#   gpu-tests   every WGSL kernel against its float64 reference (src/**/*.gpu.test.ts)
#   kernels     hearth bench kernels: Q4_K and Q8_0 at 4096x4096 and 14336x4096, copy bandwidth
#   ssm-kernels hearth bench ssm: the Mamba2 scan sequential vs chunked and the convolution per token count
#   generate-*  random-weight Q4_K_M GGUFs shaped as Llama-3.2-1B, LFM2-1.2B and Llama-3.1-8B (in
#               the background from the start: it is CPU work; DEVICE_CHECK_SHAPES picks which)
#   ours-*      decode and prefill on each file (load, TTFT for 512 tokens, decode at 128 and 2048)
#   peer-*      llama.cpp's llama-bench (Vulkan) on the same file: pp512, tg32 at depth 128 and 2048
#   finetune-*  LoRA training on WebGPU (hearth finetune --backend webgpu) on the first shape's file:
#               two optimizer steps of one 128-token window, its tokens/s, device memory, dispatches
#               and submits (the train GPU tests run in gpu-tests, src/engine/train/*.gpu.test.ts)
# Results: $OUT/device-check/ (or .device/results/ when OUT is unset), device-check.json
# summarising all; `node scripts/device-results.mjs DIR` turns it into docs/device-check.json and
# the README table.
#   bash scripts/device-check.sh [--rehearse] [--no-peer] [--peer-only]
# --rehearse: on the software adapter (SwiftShader) with small stand-in shapes, fewer tokens;
# --peer-only: only generation and llama-bench (a second call, when everything does not fit in one).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
T0=$(date +%s)
BUDGET=${DEVICE_CHECK_BUDGET_S:-480}
REHEARSE=0 PEER=1 OURS=1
for a in "$@"; do
  case $a in
    --rehearse) REHEARSE=1 ;;
    --no-peer) PEER=0 ;;
    --peer-only) OURS=0 ;;
    *) echo "device-check: unknown argument $a" >&2; exit 2 ;;
  esac
done
CARRY=$REPO/.device/carry
RESULTS=${OUT:-$REPO/.device/results}/device-check
WORK=${DEVICE_CHECK_WORK:-/tmp/hearth-device}
rm -rf "$RESULTS" "$WORK/app" "$WORK/llama"
mkdir -p "$RESULTS" "$WORK/bin" "$WORK/app/node_modules/webgpu" "$WORK/llama" "$WORK/models"
exec > >(tee "$RESULTS/log.txt") 2>&1

elapsed() { echo $(( $(date +%s) - T0 )); }
say() { printf '[%4ss] %s\n' "$(elapsed)" "$*"; }
PARTS=$RESULTS/parts.tsv
printf 'part\tstatus\tseconds\trc\n' > "$PARTS"

# part NAME TIMEOUT_S COMMAND...: runs COMMAND with at most TIMEOUT_S seconds, fewer when the
# budget is short, and records ok / failed / timeout / skipped. DEVICE_CHECK_SKIP lists parts not
# to run (a second call that measures only the models, say).
SKIP=" ${DEVICE_CHECK_SKIP:-} "
part() {
  local name=$1 limit=$2; shift 2
  if [[ "$SKIP" == *" $name "* ]]; then
    say "$name: skipped (DEVICE_CHECK_SKIP)"
    printf '%s\tskipped\t0\t\n' "$name" >> "$PARTS"
    return
  fi
  local left=$(( BUDGET - $(elapsed) - 10 ))
  if [ "$left" -lt 5 ]; then
    say "$name: skipped, budget spent"
    printf '%s\tskipped\t0\t\n' "$name" >> "$PARTS"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "$name (limit ${limit}s): $*"
  local t=$(date +%s)
  timeout -k 5 "$limit" "$@" 2>&1 | tee "$RESULTS/$name.txt" | sed 's/^/    /'
  local rc=${PIPESTATUS[0]}
  local s=$(( $(date +%s) - t )) status=ok
  [ "$rc" -ne 0 ] && status=failed
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && status=timeout
  say "$name: $status in ${s}s (rc $rc)"
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$s" "$rc" >> "$PARTS"
}

say "unpacking $CARRY into $WORK"
for f in node.xz webgpu.tar.xz hearth.tar.xz llama.tar.xz; do
  [ -f "$CARRY/$f" ] || { [ "$f" = llama.tar.xz ] && [ "$PEER" = 0 ]; } || { echo "device-check: missing $CARRY/$f: run npm run device-check:prepare and carry .device/carry" >&2; exit 1; }
done
unpack_failed() { echo "device-check: could not unpack $1" >&2; exit 1; }
xz -dc "$CARRY/node.xz" > "$WORK/bin/node" && chmod +x "$WORK/bin/node" || unpack_failed node.xz
xz -dc "$CARRY/webgpu.tar.xz" | tar -C "$WORK/app/node_modules/webgpu" -xf - || unpack_failed webgpu.tar.xz
xz -dc "$CARRY/hearth.tar.xz" | tar -C "$WORK/app" -xf - || unpack_failed hearth.tar.xz
if [ -f "$CARRY/llama.tar.xz" ]; then xz -dc "$CARRY/llama.tar.xz" | tar -C "$WORK/llama" -xf - || unpack_failed llama.tar.xz; fi
NODE=$WORK/bin/node
HEARTH=$WORK/app/hearth.mjs
say "node $("$NODE" --version), unpacked $(du -sh "$WORK" | cut -f1)"

# --- Vulkan: the loader (libvulkan.so.1) and the driver's ICD manifest.
have_loader() { ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' || ls /usr/lib/x86_64-linux-gnu/libvulkan.so.1 /usr/lib64/libvulkan.so.1 >/dev/null 2>&1; }
if [ "$REHEARSE" = 1 ]; then
  for d in /usr/lib/chromium /usr/lib64/chromium /usr/lib/chromium-browser /opt/google/chrome; do
    if [ -f "$d/vk_swiftshader_icd.json" ]; then
      export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} VK_ICD_FILENAMES=$d/vk_swiftshader_icd.json HEARTH_SOFTWARE_GPU=applied
      break
    fi
  done
  [ -n "${VK_ICD_FILENAMES:-}" ] || { echo "device-check --rehearse: no SwiftShader (apt-get install chromium)" >&2; exit 1; }
  say "rehearsal on the software adapter: VK_ICD_FILENAMES=$VK_ICD_FILENAMES"
else
  icd=""
  for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d /usr/share/glvnd/egl_vendor.d; do
    for f in "$d"/nvidia*.json; do
      [ -f "$f" ] && grep -q '"ICD"' "$f" && { icd=$f; break 2; }
    done
  done
  if [ -z "$icd" ]; then
    # The driver without a manifest (some container set-ups mount only the libraries): write one.
    nv=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0 / {print $NF; exit}')
    [ -z "$nv" ] && nv=$(ls /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0 2>/dev/null | head -1)
    if [ -n "$nv" ]; then
      icd=$WORK/nvidia_icd.json
      printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$nv" > "$icd"
      say "no NVIDIA ICD manifest found; wrote $icd for $nv"
    fi
  fi
  if [ -n "$icd" ]; then
    export VK_ICD_FILENAMES=$icd VK_DRIVER_FILES=$icd
    say "NVIDIA Vulkan ICD: $icd: $(tr -d '\n ' < "$icd")"
  else
    say "no NVIDIA Vulkan ICD found (looked in /usr/share/vulkan/icd.d, /etc/vulkan/icd.d, ...); the loader searches its defaults"
  fi
  if have_loader; then
    say "Vulkan loader: the system's ($(ldconfig -p 2>/dev/null | awk '/libvulkan\.so\.1 / {print $NF; exit}'))"
  elif [ -f "$CARRY/vulkan.tar.xz" ]; then
    mkdir -p "$WORK/vulkan" && xz -dc "$CARRY/vulkan.tar.xz" | tar -C "$WORK/vulkan" -xf -
    export LD_LIBRARY_PATH=$WORK/vulkan${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    say "Vulkan loader: none on the system; using the carried one ($WORK/vulkan/libvulkan.so.1)"
  else
    say "Vulkan loader: none found"
  fi
  # NVIDIA's Vulkan ICD (libGLX_nvidia) loads libEGL.so.1 (libglvnd) to start headless; a CUDA
  # container mounts the driver but often not libglvnd, and then the ICD refuses to initialise
  # ("Could not get 'vkCreateInstance'", seen on an H200 with driver 580). Use the carried copy.
  if ! ldconfig -p 2>/dev/null | grep -q 'libEGL\.so\.1 ' && [ -f "$CARRY/glvnd.tar.xz" ]; then
    mkdir -p "$WORK/glvnd" && xz -dc "$CARRY/glvnd.tar.xz" | tar -C "$WORK/glvnd" -xf -
    export LD_LIBRARY_PATH=$WORK/glvnd${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} __EGL_VENDOR_LIBRARY_FILENAMES=$WORK/glvnd/10_nvidia.json
    say "libEGL.so.1: none on the system; using the carried libglvnd ($WORK/glvnd)"
  fi
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv > "$RESULTS/nvidia-smi.csv" 2>&1 && sed 's/^/    /' "$RESULTS/nvidia-smi.csv"
fi
{ uname -a; ldd --version 2>&1 | head -1; nproc; grep -m1 "model name" /proc/cpuinfo; free -g | head -2; } > "$RESULTS/host.txt" 2>&1

# --- What runs where.
if [ "$REHEARSE" = 1 ]; then
  SHAPE_FLAGS=(--rehearse)
  WORKLOAD=(--prompt 32 --contexts 16,64 --decode 4 --runs 1)
  PEER_PP=32 PEER_TG=4 PEER_DEPTHS=16,64 PEER_REPS=1
  # Full-size kernels take minutes each on SwiftShader: the same formats at an eighth of the rows and k.
  KERNEL_FLAGS=(--shapes 512x512,1792x512 --seconds 0.5 --prefill 64)
  SSM_FLAGS=(--shapes 8x16x32x1 --tokens 1,64 --seconds 0.2) LIMIT_SSM=60
  LIMIT_GPU_TESTS=300 LIMIT_KERNELS=150 LIMIT_GENERATE=120 LIMIT_OURS_1B=60 LIMIT_OURS_8B=60 LIMIT_PEER=60
  FINETUNE=(--steps 1 --window 16) LIMIT_FINETUNE=120
else
  SHAPE_FLAGS=()
  WORKLOAD=(--prompt 512 --contexts 128,2048 --decode 32 --runs 2)
  PEER_PP=512 PEER_TG=32 PEER_DEPTHS=128,2048 PEER_REPS=${DEVICE_CHECK_PEER_REPS:-3}
  KERNEL_FLAGS=(--shapes 4096x4096,14336x4096 --seconds 1 --prefill 512)
  SSM_FLAGS=(--tokens 1,16,64,512 --seconds 0.3) LIMIT_SSM=30
  LIMIT_GPU_TESTS=${DEVICE_CHECK_LIMIT_GPU_TESTS:-120} LIMIT_KERNELS=75 LIMIT_GENERATE=${DEVICE_CHECK_LIMIT_GENERATE:-300} LIMIT_OURS_1B=75 LIMIT_OURS_8B=120 LIMIT_PEER=60
  FINETUNE=(--steps 2 --window 128) LIMIT_FINETUNE=60
fi
cd "$WORK/app"
part sizes 30 "$NODE" "$HEARTH" device sizes "${SHAPE_FLAGS[@]}" --json "$RESULTS/sizes.json"

# Model generation is CPU work: start it now, beside the GPU parts, both shapes at once. Each file's
# largest tensor (token_embd, 525M values for the 8B) is quantized by one process and is its
# critical path, so the 8B gets most cores and starts at once rather than after the 1B.
# Rehearsal: two processes each (the GPU parts need the CPU too on SwiftShader).
CORES=$(nproc)
SHAPES=${DEVICE_CHECK_SHAPES:-llama-3.2-1b lfm2-1.2b llama-3.1-8b}
declare -A GEN_PID
N_SHAPES=$(wc -w <<< "$SHAPES")
for id in $SHAPES; do
  # The cores (two left for the GPU parts) shared out; the 8B, whose token_embd alone is the
  # critical path of any split, gets most of them.
  share=$(( (CORES - 2) / N_SHAPES )); [ "$share" -lt 1 ] && share=1
  [ "$id" = llama-3.1-8b ] && parts=$(( CORES > 3 ? CORES - 2 : 1 )) || parts=$share
  [ "$REHEARSE" = 1 ] && parts=2
  ( part "generate-$id" "$LIMIT_GENERATE" "$NODE" "$HEARTH" device generate "${SHAPE_FLAGS[@]}" --shapes "$id" --dir "$WORK/models" --parts "$parts" >/dev/null ) &
  GEN_PID[$id]=$!
done

if [ "$OURS" = 1 ]; then
  part probe 30 "$NODE" "$HEARTH" probe
  sed -n '/^{/,$p' "$RESULTS/probe.txt" > "$RESULTS/probe.json"
  part gpu-tests "$LIMIT_GPU_TESTS" "$NODE" "$WORK/app/gpu-tests.mjs" --json "$RESULTS/gpu-tests.json"
  part kernels "$LIMIT_KERNELS" "$NODE" "$HEARTH" bench kernels --types Q4_K,Q8_0 "${KERNEL_FLAGS[@]}" --json "$RESULTS/kernels.json"
  part ssm-kernels "$LIMIT_SSM" "$NODE" "$HEARTH" bench ssm "${SSM_FLAGS[@]}" --json "$RESULTS/ssm-kernels.json"
fi
if [ "$PEER" = 1 ] && [ -x "$WORK/llama/llama-bench" ]; then
  part peer-devices 20 "$WORK/llama/llama-bench" --list-devices
fi

wait_for() { # FILE PID: waits for the generator PID to finish FILE (or to end)
  while [ ! -f "$1" ] && kill -0 "$2" 2>/dev/null; do sleep 1; done
  [ -f "$1" ]
}
for id in $SHAPES; do
  model_id=$id; [ "$REHEARSE" = 1 ] && model_id=$id-rehearsal
  file=$WORK/models/$model_id-q4_k_m.gguf
  say "waiting for $file"
  if ! wait_for "$file" "${GEN_PID[$id]}"; then
    say "$model_id: no file (generation failed or timed out)"
    printf '%s\tskipped\t0\tno model file\n' "ours-$id" >> "$PARTS"
    continue
  fi
  if [ "$OURS" = 1 ]; then
    limit=$LIMIT_OURS_1B; [ "$id" = llama-3.1-8b ] && limit=$LIMIT_OURS_8B
    part "ours-$id" "$limit" "$NODE" "$HEARTH" device bench "${SHAPE_FLAGS[@]}" --shapes "$id" --file "$file" "${WORKLOAD[@]}" --json "$RESULTS/ours-$id.json"
    if [ "$id" = "${SHAPES%% *}" ]; then
      # Training text: any English will do (the generated model's weights are random).
      for i in $(seq 1 300); do echo "In the beginning the engine read the file, and the kernels ran on the device, line $i."; done > "$WORK/train.txt"
      part "finetune-$id" "$LIMIT_FINETUNE" "$NODE" "$HEARTH" finetune "$file" --data "$WORK/train.txt" --backend webgpu "${FINETUNE[@]}" --held-out 0 \
        --targets attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down --out "$WORK/finetune-$id.gguf"
    fi
  fi
  if [ "$PEER" = 1 ] && [ -x "$WORK/llama/llama-bench" ]; then
    # Prefill from an empty cache, then decode with 128 and 2048 tokens in the cache, as ours.
    part "peer-$id" "$LIMIT_PEER" bash -c '"$0" -m "$1" -ngl 99 -p "$2" -n 0 -r "$5" -o json > "$6.pp.json" && "$0" -m "$1" -ngl 99 -p 0 -n "$3" -d "$4" -r "$5" -o json > "$6.tg.json"' \
      "$WORK/llama/llama-bench" "$file" "$PEER_PP" "$PEER_TG" "$PEER_DEPTHS" "$PEER_REPS" "$RESULTS/peer-$id"
  fi
done
# The generators' own timeouts bound this (their limit was cut to the budget when they started).
wait "${GEN_PID[@]}" 2>/dev/null

say "collecting"
"$NODE" "$HEARTH" device collect --dir "$RESULTS" --mode "$([ "$REHEARSE" = 1 ] && echo rehearsal || echo device)" --seconds "$(elapsed)"
say "done in $(elapsed) s; results in $RESULTS (device-check.json)"

//#include kv
//#include qkv
// RoPE of q and k fused with the KV-cache write: one pass where rope.wgsl (twice) and
// kv_write.wgsl took three. q and k are rotated in place (exactly as rope.wgsl does it, through
// rope_common.wgsl), and the rotated k and the v rows are stored in the cache at their positions
// (layout as in kv_write.wgsl; positions >= capacity are not stored). q, k and v are row views:
// three buffers, or three slices of one fused qkv output (the `qkv` slot).
// One invocation per (token, head, pair of dims) over the q heads, then the kv heads of k, then
// those of v: pair p < n_rot/2 rotates its two dims; above, the pair is dims (2p, 2p + 1), which
// no rotation touches (head_dim is even).

struct Params {
  n_tokens: u32,
  n_head: u32,
  n_kv_head: u32,
  head_dim: u32,
  n_rot: u32,          // rotated dims per head (even, <= head_dim)
  q_stride: u32,
  q_offset: u32,
  k_stride: u32,
  k_offset: u32,
  v_stride: u32,
  v_offset: u32,
  neox: u32,
  has_freq_factors: u32,
  freq_base: f32,
  freq_scale: f32,
  ext_factor: f32,
  attn_factor: f32,
  corr_low: f32,       // YaRN correction dims, from ggml_rope_yarn_corr_dims on the host
  corr_high: f32,
  capacity: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read> freq_factors: array<f32>;
@group(0) @binding(6) var<storage, read_write> k_cache: array<kv_t>;
@group(0) @binding(7) var<storage, read_write> v_cache: array<kv_t>;

//#include "rope_common.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let pairs = params.head_dim / 2u;
  let heads = params.n_head + 2u * params.n_kv_head;
  let index = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (index >= params.n_tokens * heads * pairs) {
    return;
  }
  let p = index % pairs;
  let head = (index / pairs) % heads;
  let t = index / (pairs * heads);
  let pos = positions[t];
  let rotated = p < params.n_rot / 2u;
  var pair = vec2u(2u * p, 2u * p + 1u);
  var cs = vec2f(1.0, 0.0);
  if (rotated) {
    pair = rope_pair(p, params.neox != 0u);
    cs = rope_cos_sin(pos, p);
  }

  if (head < params.n_head) {
    if (rotated) {
      let base = params.q_offset + t * params.q_stride + head * params.head_dim;
      let x0 = load_q(base + pair.x);
      let x1 = load_q(base + pair.y);
      store_q(base + pair.x, x0 * cs.x - x1 * cs.y);
      store_q(base + pair.y, x0 * cs.y + x1 * cs.x);
    }
    return;
  }
  let row = params.n_kv_head * params.head_dim;
  if (head < params.n_head + params.n_kv_head) {
    let kh = head - params.n_head;
    let base = params.k_offset + t * params.k_stride + kh * params.head_dim;
    var x0 = load_k(base + pair.x);
    var x1 = load_k(base + pair.y);
    if (rotated) {
      let r0 = x0 * cs.x - x1 * cs.y;
      let r1 = x0 * cs.y + x1 * cs.x;
      x0 = r0;
      x1 = r1;
      store_k(base + pair.x, x0);
      store_k(base + pair.y, x1);
    }
    if (pos < params.capacity) {
      k_cache[pos * row + kh * params.head_dim + pair.x] = kv_t(x0);
      k_cache[pos * row + kh * params.head_dim + pair.y] = kv_t(x1);
    }
    return;
  }
  let vh = head - params.n_head - params.n_kv_head;
  if (pos < params.capacity) {
    let base = params.v_offset + t * params.v_stride + vh * params.head_dim;
    v_cache[pos * row + vh * params.head_dim + 2u * p] = kv_t(load_v(base + 2u * p));
    v_cache[pos * row + vh * params.head_dim + 2u * p + 1u] = kv_t(load_v(base + 2u * p + 1u));
  }
}

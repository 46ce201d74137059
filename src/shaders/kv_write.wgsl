//#include kv
// Writes the new tokens' k and v rows into the KV cache at their positions. Cache layout (one K
// and one V buffer per layer): element (position, kv_head, d) at (position * n_kv_head + kv_head)
// * head_dim + d, stored as kv_t (the `kv` slot: f32, or f16 where the device has shader-f16).
// The sources are row views, typically the k and v slices of a fused qkv output.
// One invocation per (token, kv_head, d).

struct Params {
  n_tokens: u32,
  n_kv_head: u32,
  head_dim: u32,
  k_stride: u32,
  k_offset: u32,
  v_stride: u32,
  v_offset: u32,
  capacity: u32,   // positions the cache holds; rows at or past it are not written
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read> k_src: array<f32>;
@group(0) @binding(3) var<storage, read> v_src: array<f32>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<kv_t>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<kv_t>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = params.n_kv_head * params.head_dim;
  let index = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (index >= params.n_tokens * row) {
    return;
  }
  let t = index / row;
  let e = index % row; // kv_head * head_dim + d
  let pos = positions[t];
  if (pos >= params.capacity) {
    return;
  }
  k_cache[pos * row + e] = kv_t(k_src[params.k_offset + t * params.k_stride + e]);
  v_cache[pos * row + e] = kv_t(v_src[params.v_offset + t * params.v_stride + e]);
}

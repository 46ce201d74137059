// Training: rotary embedding in place from a table of cos and sin per position and pair
// (table[t * half + i] = cos, table[(n + t) * half + i] = sin), forward or inverse (sign -1: the
// rotation's transpose, rope's backward). Normal rope pairs (2i, 2i + 1), neox pairs (i, i + half).
// One invocation per rotated pair.

struct Params {
  n: u32,
  n_heads: u32,
  head_dim: u32,
  half: u32,
  neox: u32,
  sign: f32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (e >= params.n * params.n_heads * params.half) {
    return;
  }
  let i = e % params.half;
  let th = e / params.half; // t * n_heads + h
  let t = th / params.n_heads;
  let base = th * params.head_dim;
  var ia = base + 2u * i;
  var ib = ia + 1u;
  if (params.neox != 0u) {
    ia = base + i;
    ib = ia + params.half;
  }
  let c = table[t * params.half + i];
  let s = params.sign * table[(params.n + t) * params.half + i];
  let x0 = x[ia];
  let x1 = x[ib];
  x[ia] = x0 * c - x1 * s;
  x[ib] = x0 * s + x1 * c;
}

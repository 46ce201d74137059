// Prefill product for software adapters: out[t, out_offset + r] = sum_k x[t, k] * W[r, k] (+ bias).
// One invocation per (row, group of 8 tokens), no workgroup memory and no barrier (on SwiftShader a
// barrier costs more than the arithmetic; the tiled matmul.wgsl is for GPUs). Each w4 is decoded
// once and used for all 8 tokens. A group past the last token repeats the last token's reads and
// does not store them, so the loop has no per-token branch.

struct Params {
  k: u32,
  rows: u32,
  tokens: u32,
  out_stride: u32,
  out_offset: u32,
  x_stride: u32,
  has_bias: u32,
  groups_x: u32, // workgroups in x (they fold into x and y past the per-dimension limit)
}

override ROWS_PER_WORKGROUP: u32 = 64u;
const TOKENS: u32 = 8u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
//#include x
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

//#include weights

fn store(row: u32, t: u32, sum: f32) {
  if (t >= params.tokens) {
    return;
  }
  var value = sum;
  if (params.has_bias != 0u) {
    value += bias[params.out_offset + row];
  }
  out[t * params.out_stride + params.out_offset + row] = value;
}

@compute @workgroup_size(ROWS_PER_WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * params.groups_x) * ROWS_PER_WORKGROUP + lid;
  if (row >= params.rows) {
    return;
  }
  let t0 = wid.z * TOKENS;
  let last = params.tokens - 1u;
  let s = params.x_stride;
  let xa = vec4u(min(t0, last), min(t0 + 1u, last), min(t0 + 2u, last), min(t0 + 3u, last)) * s;
  let xb = vec4u(min(t0 + 4u, last), min(t0 + 5u, last), min(t0 + 6u, last), min(t0 + 7u, last)) * s;
  var acc_a = vec4f(0.0); // tokens t0 .. t0 + 3
  var acc_b = vec4f(0.0); // tokens t0 + 4 .. t0 + 7
  let k4 = params.k / 4u;
  for (var i = 0u; i < k4; i++) {
    let k = i * 4u;
    let w = w4(row, k);
    acc_a += vec4f(dot(w, x4(xa.x + k)), dot(w, x4(xa.y + k)), dot(w, x4(xa.z + k)), dot(w, x4(xa.w + k)));
    acc_b += vec4f(dot(w, x4(xb.x + k)), dot(w, x4(xb.y + k)), dot(w, x4(xb.z + k)), dot(w, x4(xb.w + k)));
  }
  for (var k = k4 * 4u; k < params.k; k++) {
    let w = w1(row, k);
    acc_a += w * vec4f(x1(xa.x + k), x1(xa.y + k), x1(xa.z + k), x1(xa.w + k));
    acc_b += w * vec4f(x1(xb.x + k), x1(xb.y + k), x1(xb.z + k), x1(xb.w + k));
  }
  for (var j = 0u; j < 4u; j++) {
    store(row, t0 + j, acc_a[j]);
    store(row, t0 + 4u + j, acc_b[j]);
  }
}

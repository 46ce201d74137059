// Tiled matrix-matrix product for prefill: out[t, out_offset + r] = sum_k x[t, k] * W[r, k] (+ bias).
// Each workgroup computes a TILE x TILE block of (tokens x rows); W tiles are dequantized into
// workgroup memory once and reused by all tokens of the tile, which is where prefill's speed-up
// over repeated matrix-vector products comes from.

struct Params {
  k: u32,
  rows: u32,
  tokens: u32,
  out_stride: u32,
  out_offset: u32,
  x_stride: u32,
  has_bias: u32,
}

const TILE: u32 = 32u;     // tokens and rows per workgroup
const TILE_K: u32 = 32u;   // k per step (a multiple of 4)
const THREADS: u32 = 16u;  // per side: 16 x 16 invocations, 2 x 2 outputs each

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

//#include weights

var<workgroup> w_tile: array<f32, TILE * TILE_K>; // [row][k]
var<workgroup> x_tile: array<f32, TILE * TILE_K>; // [token][k]

@compute @workgroup_size(THREADS, THREADS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row0 = wid.x * TILE;
  let t0 = wid.y * TILE;
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);

  // Each invocation loads 4 consecutive k of one row (and of one token) per step.
  let load_r = lid / (TILE_K / 4u);
  let load_k = (lid % (TILE_K / 4u)) * 4u;

  for (var k0 = 0u; k0 < params.k; k0 += TILE_K) {
    let kk = k0 + load_k;
    let row = row0 + load_r;
    var wv = vec4f(0.0);
    if (row < params.rows) {
      if (kk + 3u < params.k) {
        wv = w4(row, kk);
      } else {
        for (var j = 0u; j < 4u; j++) {
          if (kk + j < params.k) { wv[j] = w1(row, kk + j); }
        }
      }
    }
    let t = t0 + load_r;
    var xv = vec4f(0.0);
    if (t < params.tokens) {
      let xb = t * params.x_stride;
      for (var j = 0u; j < 4u; j++) {
        if (kk + j < params.k) { xv[j] = x[xb + kk + j]; }
      }
    }
    for (var j = 0u; j < 4u; j++) {
      w_tile[load_r * TILE_K + load_k + j] = wv[j];
      x_tile[load_r * TILE_K + load_k + j] = xv[j];
    }
    workgroupBarrier();

    let tr = lid3.y * 2u; // token rows of this invocation within the tile
    let rr = lid3.x * 2u; // weight rows
    for (var k = 0u; k < TILE_K; k++) {
      let x0 = x_tile[tr * TILE_K + k];
      let x1 = x_tile[(tr + 1u) * TILE_K + k];
      let w0 = w_tile[rr * TILE_K + k];
      let w1v = w_tile[(rr + 1u) * TILE_K + k];
      acc[0] += x0 * w0;
      acc[1] += x0 * w1v;
      acc[2] += x1 * w0;
      acc[3] += x1 * w1v;
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let t = t0 + lid3.y * 2u + i / 2u;
    let row = row0 + lid3.x * 2u + i % 2u;
    if (t < params.tokens && row < params.rows) {
      var value = acc[i];
      if (params.has_bias != 0u) {
        value += bias[params.out_offset + row];
      }
      out[t * params.out_stride + params.out_offset + row] = value;
    }
  }
}

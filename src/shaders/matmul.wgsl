// Tiled matrix-matrix product for prefill: out[t, out_offset + r] = sum_k x[t, k] * W[r, k] (+ bias).
// Each workgroup computes a TILE x TILE block of (tokens x rows); W tiles are dequantized into
// workgroup memory once and reused by all tokens of the tile, which is where prefill's speed-up
// over repeated matrix-vector products comes from. Each invocation keeps a 4 x 4 block of sums in
// registers: 8 workgroup-memory reads per 16 multiply-adds.

//#include "matmul_io.wgsl"

const TILE: u32 = 64u;     // tokens and rows per workgroup
const TILE_K: u32 = 16u;   // k per step (a multiple of 4)
const THREADS: u32 = 16u;  // per side: 16 x 16 invocations, 4 rows x 4 tokens each
const PER: u32 = TILE / THREADS;


// Stored k-major ([k][row], [k][token]): in the product loop, neighbouring invocations (lid.x)
// read neighbouring rows, so the reads of w_tile hit distinct banks, and x_tile reads broadcast.
var<workgroup> w_tile: array<f32, TILE_K * TILE>;
var<workgroup> x_tile: array<f32, TILE_K * TILE>;

@compute @workgroup_size(THREADS, THREADS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row0 = wid.x * TILE;
  let t0 = wid.y * TILE;
  // acc[i][j]: row lid.x + 16 i, token lid.y + 16 j (interleaved, for the bank-free reads above).
  var acc: array<vec4f, 4>;

  // Each invocation loads 4 consecutive k of one row and of one token per step.
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
        if (kk + j < params.k) { xv[j] = x1(xb + kk + j); }
      }
    }
    for (var j = 0u; j < 4u; j++) {
      w_tile[(load_k + j) * TILE + load_r] = wv[j];
      x_tile[(load_k + j) * TILE + load_r] = xv[j];
    }
    workgroupBarrier();

    for (var k = 0u; k < TILE_K; k++) {
      let wb = k * TILE + lid3.x;
      let xb = k * TILE + lid3.y;
      let w = vec4f(w_tile[wb], w_tile[wb + THREADS], w_tile[wb + 2u * THREADS], w_tile[wb + 3u * THREADS]);
      let xs = vec4f(x_tile[xb], x_tile[xb + THREADS], x_tile[xb + 2u * THREADS], x_tile[xb + 3u * THREADS]);
      acc[0] += w.x * xs;
      acc[1] += w.y * xs;
      acc[2] += w.z * xs;
      acc[3] += w.w * xs;
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < PER; i++) {
    let row = row0 + lid3.x + i * THREADS;
    if (row >= params.rows) {
      continue;
    }
    for (var j = 0u; j < PER; j++) {
      let t = t0 + lid3.y + j * THREADS;
      if (t < params.tokens) {
        store_output(row, t, acc[i][j]);
      }
    }
  }
}

// Prefill product for software adapters: out[t, out_offset + r] = sum_k x[t, k] * W[r, k] (+ bias).
// One invocation per (4 rows, 8 tokens), no workgroup memory and no barrier (on SwiftShader a
// barrier costs more than the arithmetic; the tiled matmul.wgsl is for GPUs). Each step decodes
// four weights of each row once and loads four activations of each token once, for 32 dot
// products. Rows and tokens past the last repeat the last one's reads and are not stored, so the
// loop has no per-row or per-token branch.

//#include "matmul_io.wgsl"

override WORKGROUP_SIZE: u32 = 64u;
const TOKENS: u32 = 8u; // per invocation
const ROWS: u32 = 4u;   // per invocation

// Sums for four rows and four tokens: component j of r<i> is row i's sum for token j.
struct Tile {
  r0: vec4f,
  r1: vec4f,
  r2: vec4f,
  r3: vec4f,
}

// Adds four weights of each row (w0..w3) times four activations of each token (column j of xs is
// token j's): w * xs is the vector of w's dot products with the columns.
fn tile_add(t: Tile, w0: vec4f, w1: vec4f, w2: vec4f, w3: vec4f, xs: mat4x4f) -> Tile {
  return Tile(t.r0 + w0 * xs, t.r1 + w1 * xs, t.r2 + w2 * xs, t.r3 + w3 * xs);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row0 = ((wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid) * ROWS;
  if (row0 >= params.rows) {
    return;
  }
  let rl = params.rows - 1u;
  let rows = vec4u(row0, min(row0 + 1u, rl), min(row0 + 2u, rl), min(row0 + 3u, rl));
  let t0 = wid.z * TOKENS;
  let last = params.tokens - 1u;
  let s = params.x_stride;
  let xa = vec4u(min(t0, last), min(t0 + 1u, last), min(t0 + 2u, last), min(t0 + 3u, last)) * s;
  let xb = vec4u(min(t0 + 4u, last), min(t0 + 5u, last), min(t0 + 6u, last), min(t0 + 7u, last)) * s;
  var a = Tile(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0)); // tokens t0 .. t0 + 3
  var b = Tile(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0)); // tokens t0 + 4 .. t0 + 7
  let k4 = params.k / 4u;
  for (var i = 0u; i < k4; i++) {
    let k = i * 4u;
    let wa = w4(rows.x, k);
    let wb = w4(rows.y, k);
    let wc = w4(rows.z, k);
    let wd = w4(rows.w, k);
    a = tile_add(a, wa, wb, wc, wd, mat4x4f(x4(xa.x + k), x4(xa.y + k), x4(xa.z + k), x4(xa.w + k)));
    b = tile_add(b, wa, wb, wc, wd, mat4x4f(x4(xb.x + k), x4(xb.y + k), x4(xb.z + k), x4(xb.w + k)));
  }
  for (var k = k4 * 4u; k < params.k; k++) {
    let w = vec4f(w1(rows.x, k), w1(rows.y, k), w1(rows.z, k), w1(rows.w, k));
    let x_a = vec4f(x1(xa.x + k), x1(xa.y + k), x1(xa.z + k), x1(xa.w + k));
    let x_b = vec4f(x1(xb.x + k), x1(xb.y + k), x1(xb.z + k), x1(xb.w + k));
    a = Tile(a.r0 + w.x * x_a, a.r1 + w.y * x_a, a.r2 + w.z * x_a, a.r3 + w.w * x_a);
    b = Tile(b.r0 + w.x * x_b, b.r1 + w.y * x_b, b.r2 + w.z * x_b, b.r3 + w.w * x_b);
  }
  store_tile(row0, t0, a);
  store_tile(row0, t0 + 4u, b);
}

fn store_tile(row0: u32, t0: u32, tile: Tile) {
  let r = array<vec4f, 4>(tile.r0, tile.r1, tile.r2, tile.r3);
  for (var i = 0u; i < ROWS; i++) {
    if (row0 + i < params.rows) {
      for (var j = 0u; j < 4u; j++) {
        if (t0 + j < params.tokens) {
          store_output(row0 + i, t0 + j, r[i][j]);
        }
      }
    }
  }
}

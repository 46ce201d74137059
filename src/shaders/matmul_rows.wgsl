// Prefill product for software adapters: out[t, out_offset + r] = sum_k x[t, k] * W[r, k] (+ bias).
// One invocation per (4 rows, 8 tokens), no workgroup memory and no barrier (on SwiftShader a
// barrier costs more than the arithmetic; the tiled matmul.wgsl is for GPUs); the product itself is
// matmul_rows_tile.wgsl's. Rows and tokens past the last repeat the last one's reads and are not stored, so the
// loop has no per-row or per-token branch.

//#include "matmul_io.wgsl"

override WORKGROUP_SIZE: u32 = 64u;
const TOKENS: u32 = 8u; // per invocation
const ROWS: u32 = 4u;   // per invocation

//#include "matmul_rows_tile.wgsl"

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
  let tiles = rows_tile(rows, xa, xb);
  store_tile(row0, t0, tiles.a);
  store_tile(row0, t0 + 4u, tiles.b);
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

// Expert-grouped products of a mixture-of-experts prefill: W stacks n_expert matrices of `rows` rows
// (GGUF [k, rows, n_expert]). moe_sort.wgsl has bucketed one chunk's (token, expert) pairs by expert
// into `order` and cut each expert's run into tiles of up to 8 pairs (`tiles[z]` = expert, first,
// end in `order`; an empty tile has first == end and exits). Workgroup (x, y, z) takes 256 rows of
// tile z's expert; each invocation 4 rows x the tile's 8 pairs (matmul_rows_tile.wgsl), so the
// expert's rows are read once per 8 pairs that chose it, not once per pair (matvec_indexed.wgsl):
//   out[out_base + p * out_stride + r] = sum_k x[((pair_base + p) / used - x_row_base) * x_stride + k] * W[e * rows + r, k]
// for each pair p (chunk-relative) of the tile. The grid is sized for any routing (the number of
// tiles is at most pairs / 8 + n_expert), so nothing depends on reading the routing back. A
// tensor split into parts dispatches once per part; each computes only the rows it holds.

struct Params {
  k: u32,          // row length of W
  rows: u32,       // rows of one expert's matrix (output rows)
  used: u32,       // experts per token (1 for per-pair activations)
  pair_base: u32,  // first pair of the chunk (ids index)
  row_start: u32,  // first stacked row this part holds
  part_rows: u32,  // rows this part holds
  out_stride: u32,
  out_base: u32,
  x_stride: u32,
  x_row_base: u32, // subtracted from the activation row: 0 for the tokens' rows, pair_base for per-pair rows
  groups_x: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> order: array<u32>;
@group(0) @binding(5) var<storage, read> tiles: array<vec4u>;

//#include x
//#include weights

override WORKGROUP_SIZE: u32 = 64u;
const PAIRS: u32 = 8u; // per tile (moe_sort.wgsl's TILE)
const ROWS: u32 = 4u;  // per invocation

//#include "matmul_rows_tile.wgsl"

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tile = tiles[wid.z];
  let e = tile.x;
  let first = tile.y;
  let n = tile.z - first;
  if (n == 0u) {
    return;
  }
  // The stacked rows of expert e that this part holds: [lo, hi).
  let lo = max(e * params.rows, params.row_start);
  let hi = min((e + 1u) * params.rows, params.row_start + params.part_rows);
  let s0 = lo + ((wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid) * ROWS;
  if (s0 >= hi) {
    return;
  }
  // Rows past the last repeat its reads and are not stored (no per-row branch in the loop).
  let r0 = s0 - params.row_start;
  let rl = hi - 1u - params.row_start;
  let rows = vec4u(r0, min(r0 + 1u, rl), min(r0 + 2u, rl), min(r0 + 3u, rl));
  var pair: array<u32, PAIRS>;
  var xo: array<u32, PAIRS>;
  for (var j = 0u; j < PAIRS; j++) {
    pair[j] = order[first + min(j, n - 1u)];
    xo[j] = ((params.pair_base + pair[j]) / params.used - params.x_row_base) * params.x_stride;
  }
  let t = rows_tile(rows, vec4u(xo[0], xo[1], xo[2], xo[3]), vec4u(xo[4], xo[5], xo[6], xo[7]));
  let sums = array<vec4f, 8>(t.a.r0, t.a.r1, t.a.r2, t.a.r3, t.b.r0, t.b.r1, t.b.r2, t.b.r3);
  let r = s0 - e * params.rows;
  for (var i = 0u; i < ROWS; i++) {
    if (s0 + i < hi) {
      for (var j = 0u; j < min(n, PAIRS); j++) {
        out[params.out_base + pair[j] * params.out_stride + r + i] = sums[(j / 4u) * 4u + i][j % 4u];
      }
    }
  }
}

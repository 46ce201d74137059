// Matrix-vector products with a chosen matrix per output row: the expert products of a
// mixture-of-experts FFN. W stacks n_expert matrices of `rows` rows each (GGUF [k, rows, n_expert]);
// pair p (wid.z, token p / used of the chunk, its (p % used)-th expert) computes
//   out[out_base + p * out_stride + r] = sum_k x[((pair_base + p) / used - x_row_base) * x_stride + k] * W[ids[pair_base + p] * rows + r, k]
// for r < rows. The expert id comes from a GPU buffer (moe_route.wgsl), so decode reads only the
// chosen experts' rows and nothing is read back. A tensor split into parts (larger than one
// binding) dispatches once per part; a part computes only the rows it holds (row_start ..<
// row_start + part_rows of the stacked tensor), so any split is covered exactly once.
// Weight formats through the `weights` and `dot` slots, as matvec.wgsl.

struct Params {
  k: u32,          // row length of W
  rows: u32,       // rows of one expert's matrix (output rows)
  used: u32,       // experts per token
  pair_base: u32,  // first pair of this chunk in `ids`
  row_start: u32,  // first stacked row this part holds
  part_rows: u32,  // rows this part holds
  out_stride: u32,
  out_base: u32,
  x_stride: u32,
  x_row_base: u32, // subtracted from the activation row: 0 for the tokens' rows, pair_base for per-pair rows (used = 1)
  groups_x: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> ids: array<u32>;

//#include x
//#include weights

override THREADS_PER_ROW: u32 = 16u; // power of two
override ROWS_PER_WORKGROUP: u32 = 4u;

//#include dot

//#include "matvec_row_dot.wgsl"

var<workgroup> partial: array<f32, THREADS_PER_ROW * ROWS_PER_WORKGROUP>;

@compute @workgroup_size(THREADS_PER_ROW * ROWS_PER_WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % THREADS_PER_ROW;
  let r = (wid.x + wid.y * params.groups_x) * ROWS_PER_WORKGROUP + lid / THREADS_PER_ROW;
  let p = wid.z;
  let pair = params.pair_base + p;
  let stacked = ids[pair] * params.rows + r;
  let valid = r < params.rows && stacked >= params.row_start && stacked - params.row_start < params.part_rows;
  var acc = 0.0;
  if (valid) {
    acc = row_dot(stacked - params.row_start, lane, (pair / params.used - params.x_row_base) * params.x_stride);
  }
  if (THREADS_PER_ROW == 1u) {
    if (valid) {
      out[params.out_base + p * params.out_stride + r] = acc;
    }
    return;
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var stride = THREADS_PER_ROW / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  if (lane == 0u && valid) {
    out[params.out_base + p * params.out_stride + r] = partial[lid];
  }
}

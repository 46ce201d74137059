// Matrix-vector product for decode: out[t, out_offset + r] = sum_k x[t, k] * W[r, k] (+ bias),
// W dequantized on the fly. A workgroup computes ROWS_PER_WORKGROUP rows of one token; a row's
// THREADS_PER_ROW invocations reduce in workgroup memory. With THREADS_PER_ROW = 1 there is no
// reduction and no barrier at all: what CPU-emulated adapters (SwiftShader) want, where a barrier
// costs more than the arithmetic. GPUs want 16-64 invocations per row, so that neighbouring
// invocations read neighbouring blocks.
//#include "matvec_common.wgsl"

override ROWS_PER_WORKGROUP: u32 = 4u;

var<workgroup> partial: array<f32, THREADS_PER_ROW * ROWS_PER_WORKGROUP>;
var<workgroup> partial_up: array<f32, THREADS_PER_ROW * ROWS_PER_WORKGROUP>;

@compute @workgroup_size(THREADS_PER_ROW * ROWS_PER_WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % THREADS_PER_ROW;
  let row = (wid.x + wid.y * params.groups_x) * ROWS_PER_WORKGROUP + lid / THREADS_PER_ROW;
  let t = wid.z;
  var acc = 0.0;
  var acc_up = 0.0;
  if (row < params.rows) {
    acc = row_dot(row, lane, t * params.x_stride);
    acc_up = up_dot(row, lane, t * params.x_stride);
  }
  if (THREADS_PER_ROW == 1u) {
    if (row < params.rows) {
      store_row(row, t, acc, acc_up);
    }
    return;
  }
  partial[lid] = acc;
  partial_up[lid] = acc_up;
  workgroupBarrier();
  for (var stride = THREADS_PER_ROW / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) {
      partial[lid] += partial[lid + stride];
      if (GLU != 0u) {
        partial_up[lid] += partial_up[lid + stride];
      }
    }
    workgroupBarrier();
  }
  if (lane == 0u && row < params.rows) {
    store_row(row, t, partial[lid], partial_up[lid]);
  }
}

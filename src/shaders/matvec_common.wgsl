// Shared by matvec.wgsl and matvec_subgroup.wgsl: the bindings (matmul_io.wgsl) and one
// invocation's share of a row's dot product. THREADS_PER_ROW invocations share a row; each takes
// every THREADS_PER_ROW-th chunk of CHUNK weights through `chunk_dot` (the `dot` slot, written for
// its weight format: one whole quantization block per call, so its scales are decoded once).

//
// With GLU != 0 the weight is [gate; up] (2 * params.rows rows): output row r takes the dots of
// rows r and params.rows + r and stores act(gate) * up (GLU 1: SiLU, 2: GELU), so the gate/up
// projection and the GLU are one dispatch.

//#include "matmul_io.wgsl"
//#include "glu_common.wgsl"

override THREADS_PER_ROW: u32 = 16u; // power of two
override GLU: u32 = 0u;

//#include dot

//#include "matvec_row_dot.wgsl"

// Stores output row `row` of token t: the plain sum (store_output), or with GLU act(gate) * up.
fn store_row(row: u32, t: u32, gate: f32, up: f32) {
  if (GLU == 0u) {
    store_output(row, t, gate);
    return;
  }
  var g = gate;
  var u = up;
  if (params.has_bias != 0u) {
    g += bias[params.out_offset + row];
    u += bias[params.out_offset + params.rows + row];
  }
  var a: f32;
  if (GLU == 1u) {
    a = silu(g);
  } else {
    a = gelu(g);
  }
  out[params.out_base + t * params.out_stride + params.out_offset + row] = a * u;
}

// The up row's share of the dot (GLU only; 0 otherwise).
fn up_dot(row: u32, lane: u32, xb: u32) -> f32 {
  if (GLU == 0u) {
    return 0.0;
  }
  return row_dot(params.rows + row, lane, xb);
}

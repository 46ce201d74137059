// Mamba2's selective scan (ggml_ssm_scan with a scalar A per head) of one sequence, plus the D skip:
// per token t and head h (group g = h / heads_per_group),
//   delta = softplus(dt[t][h] + dt_bias[h]);  s[h] = s[h] * exp(delta * A[h]) + delta * x[t][h] (outer) B[t][g]
//   y[t][h] = s[h] . C[t][g] + D[h] * x[t][h]
// x and y are [heads][head_dim] per row, B and C [groups][state_size], dt [heads]; the state is
// [heads][head_dim][state_size] at state_offset, read and written back.
//
// Sequential in time, parallel over the state: LANES invocations share one state row (h, p), each
// holding state_size / LANES of its values in registers (at most PER_LANE) for the whole step, so
// the state is read and written once per dispatch whatever the token count; WORKGROUP_SIZE / LANES
// rows per workgroup. Each token's y needs the sum over a row's lanes: the lanes leave partial
// sums for TOKEN_BLOCK tokens in workgroup memory, then one lane per token adds them up (two
// barriers per TOKEN_BLOCK tokens). The inputs x, B and C come through the `inputs` slot (one
// binding when they are slices of one buffer, as Mamba2's conv output, else three).

struct Params {
  heads: u32,
  head_dim: u32,
  state_size: u32,
  heads_per_group: u32,
  tokens: u32,
  x_stride: u32,
  x_offset: u32,
  dt_stride: u32,
  dt_offset: u32,
  b_stride: u32,
  b_offset: u32,
  c_stride: u32,
  c_offset: u32,
  y_stride: u32,
  y_offset: u32,
  state_offset: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 128;
override LANES: u32 = 32u; // power of two, <= WORKGROUP_SIZE
const PER_LANE: u32 = 8u;
const TOKEN_BLOCK: u32 = 8u;

@group(0) @binding(0) var<uniform> params: Params;
//#include "ssm_scan_common.wgsl"

//#include inputs

var<workgroup> partials: array<f32, TOKEN_BLOCK * WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let rows = params.heads * params.head_dim;
  let S = params.state_size;
  let row_in_group = lid / LANES;
  let lane = lid % LANES;
  let wanted = (wid.x + wid.y * params.groups_x) * (WORKGROUP_SIZE / LANES) + row_in_group;
  // Every invocation reaches every barrier; a row past the end computes row rows - 1 and writes nothing.
  let live = wanted < rows;
  let row = min(wanted, rows - 1u);
  let h = row / params.head_dim;
  let p = row % params.head_dim;
  let g = h / params.heads_per_group;
  let a = A[h];
  let skip = D[h];
  let bias = dt_bias[h];
  let so = params.state_offset + row * S;

  var s: array<f32, PER_LANE>;
  for (var j = 0u; j < PER_LANE; j++) {
    let k = lane + j * LANES;
    s[j] = select(0.0, state[so + min(k, S - 1u)], k < S);
  }

  for (var t0 = 0u; t0 < params.tokens; t0 += TOKEN_BLOCK) {
    let count = min(TOKEN_BLOCK, params.tokens - t0);
    for (var i = 0u; i < count; i++) {
      let t = t0 + i;
      let delta = softplus(dt[params.dt_offset + t * params.dt_stride + h] + bias);
      let decay = exp(delta * a);
      let xd = load_x(params.x_offset + t * params.x_stride + row) * delta;
      let bb = params.b_offset + t * params.b_stride + g * S;
      let cb = params.c_offset + t * params.c_stride + g * S;
      var sum = 0.0;
      for (var j = 0u; j < PER_LANE; j++) {
        let k = lane + j * LANES;
        if (k < S) {
          let v = s[j] * decay + load_b(bb + k) * xd;
          s[j] = v;
          sum += v * load_c(cb + k);
        }
      }
      partials[i * WORKGROUP_SIZE + lid] = sum;
    }
    workgroupBarrier();
    if (live) {
      let first = lid - lane;
      for (var i = lane; i < count; i += LANES) {
        var total = 0.0;
        for (var l = 0u; l < LANES; l++) {
          total += partials[i * WORKGROUP_SIZE + first + l];
        }
        let t = t0 + i;
        y[params.y_offset + t * params.y_stride + row] = total + skip * load_x(params.x_offset + t * params.x_stride + row);
      }
    }
    workgroupBarrier();
  }

  if (live) {
    for (var j = 0u; j < PER_LANE; j++) {
      let k = lane + j * LANES;
      if (k < S) {
        state[so + k] = s[j];
      }
    }
  }
}

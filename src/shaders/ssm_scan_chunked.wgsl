// Mamba2's selective scan for a prefill in the chunked, state-space dual form: the same result as
// ssm_scan.wgsl (see there for the recurrence) up to rounding, with no loop over tokens. Within a
// chunk of CHUNK tokens, with delta_t = softplus(dt_t + dt_bias) and the cumulative log decay
// L_t = sum_{u <= t} delta_u A (per head),
//   y_t = exp(L_t) (C_t . s_in) + sum_{u <= t} exp(L_t - L_u) (C_t . B_u) delta_u x_u + D x_t
//   s_out = exp(L_last) s_in + sum_u exp(L_last - L_u) delta_u x_u (outer) B_u
// Five dispatches, each parallel over everything but the chunks' order:
//   chunk_decay    per (chunk, head): delta and L of its tokens
//   chunk_cb       per (chunk, group, t, u): C_t . B_u (u <= t)
//   chunk_states   per (chunk, head, p, k): the chunk's own contribution to its end state (from 0)
//   chunk_carry    per state value: walks the chunks in order, leaving each chunk's entering state
//                  in place of its contribution, and writes the final state
//   chunk_outputs  per (token, head, p): y from the entering state, the chunk's earlier tokens, D x
// x, B and C are slices of one buffer (`xbc`, Mamba2's conv output). Scratch (one buffer, floats):
//   delta [tokens][heads] at 0, L [tokens][heads] at tokens * heads,
//   CB [chunks][groups][CHUNK][CHUNK] at cb_offset, chunk states [chunks][heads][head_dim][state] at states_offset.

struct Params {
  heads: u32,
  head_dim: u32,
  state_size: u32,
  heads_per_group: u32,
  groups: u32,
  tokens: u32,
  chunks: u32,
  x_stride: u32,
  x_offset: u32,
  dt_stride: u32,
  dt_offset: u32,
  b_offset: u32, // B and C use x_stride (one buffer)
  c_offset: u32,
  y_stride: u32,
  y_offset: u32,
  state_offset: u32,
  cb_offset: u32,
  states_offset: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;
override CHUNK: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> xbc: array<f32>;
//#include "ssm_scan_common.wgsl"
@group(0) @binding(8) var<storage, read_write> scratch: array<f32>;

fn invocation(wid: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
}

fn chunk_end(c: u32) -> u32 {
  return min((c + 1u) * CHUNK, params.tokens);
}

fn delta_at(t: u32, h: u32) -> f32 {
  return scratch[t * params.heads + h];
}

fn decay_at(t: u32, h: u32) -> f32 {
  return scratch[(params.tokens + t) * params.heads + h];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn chunk_decay(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= params.chunks * params.heads) {
    return;
  }
  let c = i / params.heads;
  let h = i % params.heads;
  let a = A[h];
  let bias = dt_bias[h];
  var acc = 0.0;
  for (var t = c * CHUNK; t < chunk_end(c); t++) {
    let delta = softplus(dt[params.dt_offset + t * params.dt_stride + h] + bias);
    acc += delta * a;
    scratch[t * params.heads + h] = delta;
    scratch[(params.tokens + t) * params.heads + h] = acc;
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn chunk_cb(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = invocation(wid, lid);
  if (i >= params.chunks * params.groups * CHUNK * CHUNK) {
    return;
  }
  let u = i % CHUNK;
  let t = (i / CHUNK) % CHUNK;
  let g = (i / (CHUNK * CHUNK)) % params.groups;
  let c = i / (CHUNK * CHUNK * params.groups);
  let tt = c * CHUNK + t;
  let tu = c * CHUNK + u;
  var dot = 0.0;
  if (u <= t && tt < params.tokens) {
    let cb = params.c_offset + tt * params.x_stride + g * params.state_size;
    let bb = params.b_offset + tu * params.x_stride + g * params.state_size;
    for (var k = 0u; k < params.state_size; k++) {
      dot += xbc[cb + k] * xbc[bb + k];
    }
  }
  scratch[params.cb_offset + i] = dot;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn chunk_states(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let per_chunk = params.heads * params.head_dim * params.state_size;
  let i = invocation(wid, lid);
  if (i >= params.chunks * per_chunk) {
    return;
  }
  let c = i / per_chunk;
  let e = i % per_chunk;
  let k = e % params.state_size;
  let row = e / params.state_size;
  let h = row / params.head_dim;
  let g = h / params.heads_per_group;
  let end = chunk_end(c);
  let last = decay_at(end - 1u, h);
  var sum = 0.0;
  for (var u = c * CHUNK; u < end; u++) {
    let xu = xbc[params.x_offset + u * params.x_stride + row];
    let bu = xbc[params.b_offset + u * params.x_stride + g * params.state_size + k];
    sum += exp(last - decay_at(u, h)) * delta_at(u, h) * xu * bu;
  }
  scratch[params.states_offset + i] = sum;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn chunk_carry(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let per_chunk = params.heads * params.head_dim * params.state_size;
  let e = invocation(wid, lid);
  if (e >= per_chunk) {
    return;
  }
  let h = e / (params.head_dim * params.state_size);
  var s = state[params.state_offset + e];
  for (var c = 0u; c < params.chunks; c++) {
    let at = params.states_offset + c * per_chunk + e;
    let own = scratch[at];
    scratch[at] = s;
    s = exp(decay_at(chunk_end(c) - 1u, h)) * s + own;
  }
  state[params.state_offset + e] = s;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn chunk_outputs(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let rows = params.heads * params.head_dim;
  let i = invocation(wid, lid);
  if (i >= params.tokens * rows) {
    return;
  }
  let t = i / rows;
  let row = i % rows;
  let h = row / params.head_dim;
  let g = h / params.heads_per_group;
  let c = t / CHUNK;
  let lt = decay_at(t, h);
  // From the state entering the chunk.
  let enter = params.states_offset + (c * rows + row) * params.state_size;
  let cb = params.c_offset + t * params.x_stride + g * params.state_size;
  var from_state = 0.0;
  for (var k = 0u; k < params.state_size; k++) {
    from_state += xbc[cb + k] * scratch[enter + k];
  }
  var sum = exp(lt) * from_state;
  // From the chunk's tokens up to t.
  let cbm = params.cb_offset + ((c * params.groups + g) * CHUNK + (t - c * CHUNK)) * CHUNK;
  for (var u = c * CHUNK; u <= t; u++) {
    let xu = xbc[params.x_offset + u * params.x_stride + row];
    sum += exp(lt - decay_at(u, h)) * scratch[cbm + (u - c * CHUNK)] * delta_at(u, h) * xu;
  }
  let xt = xbc[params.x_offset + t * params.x_stride + row];
  y[params.y_offset + t * params.y_stride + row] = sum + D[h] * xt;
}

// Embedding lookup: out[t, c] = scale * W[ids[t], c], the row of token ids[t] dequantized by the
// `weights` include (w4/w1) of the table's format. A table split into several buffers is looked up
// with one dispatch per part; a part writes the tokens whose id falls in its rows and skips the
// others. Ids past the end of the table (total_rows) are written as zeros by the dispatch with
// write_missing set, so a bad id never reads out of bounds and never leaves stale values behind.

struct Params {
  k: u32,             // row length (embedding size)
  rows: u32,          // rows of the table in this part
  row_start: u32,     // first row of this part in the whole table
  total_rows: u32,    // rows of the whole table (the vocabulary size)
  write_missing: u32, // 1: this dispatch writes zeros for ids >= total_rows
  tokens: u32,
  out_stride: u32,    // floats per token in `out`
  groups_y: u32,      // workgroups in y (tokens fold into y and z past the per-dimension limit)
  scale: f32,         // e.g. sqrt(k) for Gemma; 1 leaves the weights exact
}

override WORKGROUP_SIZE: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

//#include weights

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = wid.y + wid.z * params.groups_y;
  let c = (wid.x * WORKGROUP_SIZE + lid) * 4u; // each invocation writes 4 consecutive columns
  if (t >= params.tokens || c >= params.k) {
    return;
  }
  let id = ids[t];
  let local = id - params.row_start; // wraps to a huge value for ids below this part
  let o = t * params.out_stride + c;
  if (local < params.rows) {
    if (c + 3u < params.k) {
      let v = w4(local, c) * params.scale;
      out[o] = v.x;
      out[o + 1u] = v.y;
      out[o + 2u] = v.z;
      out[o + 3u] = v.w;
    } else {
      for (var j = 0u; c + j < params.k; j++) {
        out[o + j] = w1(local, c + j) * params.scale;
      }
    }
  } else if (params.write_missing != 0u && id >= params.total_rows) {
    for (var j = 0u; j < 4u && c + j < params.k; j++) {
      out[o + j] = 0.0;
    }
  }
}

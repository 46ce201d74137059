// Training: rows of a frozen GGUF matrix dequantized to f32, for the f32 products of the LoRA
// training step (forward y = x W^T and backward dx = dy W read the same rows). The `weights` slot is
// the format's weights_*.wgsl (w4 / w1 over the raw file bytes). out[r * k + i] = w(row0 + r, i).
// Four values per invocation (w4) when k is a multiple of 4 (every block format), else one (w1).

struct Params {
  k: u32,        // values per row
  row0: u32,     // first row, counted in the bound weights buffer
  rows: u32,
  groups_x: u32,
  quads: u32,    // 1: four values per invocation
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

//#include weights

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let index = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (params.quads != 0u) {
    let e = index * 4u;
    if (e >= params.rows * params.k) {
      return;
    }
    let v = w4(params.row0 + e / params.k, e % params.k);
    out[e] = v.x;
    out[e + 1u] = v.y;
    out[e + 2u] = v.z;
    out[e + 3u] = v.w;
    return;
  }
  if (index >= params.rows * params.k) {
    return;
  }
  out[index] = w1(params.row0 + index / params.k, index % params.k);
}

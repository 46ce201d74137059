// Training: rows of a frozen GGUF matrix dequantized to f32, for the f32 products of the LoRA
// training step (forward y = x W^T and backward dx = dy W read the same rows). The `weights` slot is
// the format's weights_*.wgsl (w1 over the raw file bytes). out[r * k + i] = w(row0 + r, i).

struct Params {
  k: u32,        // values per row
  row0: u32,     // first row, counted in the bound weights buffer
  rows: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

//#include weights

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (e >= params.rows * params.k) {
    return;
  }
  out[e] = w1(params.row0 + e / params.k, e % params.k);
}

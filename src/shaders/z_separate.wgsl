// The `z` slot of gated_norm.wgsl: z in its own buffer.

@group(0) @binding(3) var<storage, read> z: array<f32>;

fn load_z(i: u32) -> f32 {
  return z[i];
}

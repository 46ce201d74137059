// The `b` slot of elementwise.wgsl: the second operand in its own binding.

@group(0) @binding(2) var<storage, read> b: array<f32>;

fn load_b(i: u32) -> f32 {
  return b[i];
}

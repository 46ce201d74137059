// The `inputs` slot of ssm_scan.wgsl when x, B and C live in different buffers: three bindings.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(8) var<storage, read> b: array<f32>;
@group(0) @binding(9) var<storage, read> c: array<f32>;

fn load_x(i: u32) -> f32 {
  return x[i];
}

fn load_b(i: u32) -> f32 {
  return b[i];
}

fn load_c(i: u32) -> f32 {
  return c[i];
}

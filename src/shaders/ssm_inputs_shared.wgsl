// The `inputs` slot of ssm_scan.wgsl when x, B and C are slices of one buffer (Mamba2's conv
// output [x | B | C] per row): one binding for the three.

@group(0) @binding(1) var<storage, read> xbc: array<f32>;

fn load_x(i: u32) -> f32 {
  return xbc[i];
}

fn load_b(i: u32) -> f32 {
  return xbc[i];
}

fn load_c(i: u32) -> f32 {
  return xbc[i];
}

// The `z` slot of gated_norm.wgsl: z in y's buffer (another slice of the same activation), read
// through y's binding (WebGPU forbids a second, read-only binding of a written buffer).

fn load_z(i: u32) -> f32 {
  return y[i];
}

// The `qkv` slot of rope_kv_write.wgsl for q, k and v as slices of one buffer (a fused qkv
// projection): WebGPU forbids binding one buffer twice where one binding is writable, so it is
// bound once.

@group(0) @binding(3) var<storage, read_write> qkv: array<f32>;

fn load_q(i: u32) -> f32 {
  return qkv[i];
}
fn store_q(i: u32, value: f32) {
  qkv[i] = value;
}
fn load_k(i: u32) -> f32 {
  return qkv[i];
}
fn store_k(i: u32, value: f32) {
  qkv[i] = value;
}
fn load_v(i: u32) -> f32 {
  return qkv[i];
}

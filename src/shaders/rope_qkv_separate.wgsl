// The `qkv` slot of rope_kv_write.wgsl for q, k and v in three buffers.

@group(0) @binding(3) var<storage, read_write> q: array<f32>;
@group(0) @binding(4) var<storage, read_write> k: array<f32>;
@group(0) @binding(5) var<storage, read> v: array<f32>;

fn load_q(i: u32) -> f32 {
  return q[i];
}
fn store_q(i: u32, value: f32) {
  q[i] = value;
}
fn load_k(i: u32) -> f32 {
  return k[i];
}
fn store_k(i: u32, value: f32) {
  k[i] = value;
}
fn load_v(i: u32) -> f32 {
  return v[i];
}

// Input/output slot for kernels that may run in place: this variant reads `src` and writes `dst`,
// two different buffers. (WebGPU forbids binding one buffer to two bindings when one is
// writable, so the in-place variant, io_in_place.wgsl, declares only `dst`.)

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(15) var<storage, read_write> dst: array<f32>;

fn load_src(i: u32) -> f32 {
  return src[i];
}

fn store_dst(i: u32, value: f32) {
  dst[i] = value;
}

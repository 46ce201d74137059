// Input/output slot for kernels that may run in place: this variant reads and writes `dst` (see
// io_separate.wgsl). Each invocation must read only the elements it writes, or read everything
// before a barrier and write after it.

@group(0) @binding(15) var<storage, read_write> dst: array<f32>;

fn load_src(i: u32) -> f32 {
  return dst[i];
}

fn store_dst(i: u32, value: f32) {
  dst[i] = value;
}

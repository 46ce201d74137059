// The `b` slot of elementwise.wgsl when the second operand is in the output's buffer (with
// io_in_place.wgsl): read through dst, since WebGPU forbids a read-only binding of a written buffer.

fn load_b(i: u32) -> f32 {
  return dst[i];
}

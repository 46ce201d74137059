// chunk_dot for any weight format, through its w4: 32 weights a chunk. The formats that matter
// most for speed have a dot_<format>.wgsl that decodes each block's scales once, not once per w4.
const CHUNK: u32 = 32u;

fn chunk_dot(row: u32, c: u32, xb: u32) -> f32 {
  let k0 = c * CHUNK;
  var acc = 0.0;
  for (var i = 0u; i < CHUNK; i += 4u) {
    acc += dot(w4(row, k0 + i), x4(xb + k0 + i));
  }
  return acc;
}

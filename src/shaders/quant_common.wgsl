// Byte-level reads from a `weights: array<u32>` binding holding GGUF blocks as stored in the file.
// GGUF blocks are not 4-byte aligned (Q8_0 is 34 bytes), so weights are addressed by byte.
// Little-endian, like GGUF.

fn read_u8(b: u32) -> u32 {
  return (weights[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

// b must be even: a 16-bit value never straddles two words then.
fn read_u16(b: u32) -> u32 {
  return (weights[b >> 2u] >> ((b & 2u) * 8u)) & 0xffffu;
}

// b must be even (2-byte aligned); reads 4 bytes that may straddle two words.
fn read_u32_at_even(b: u32) -> u32 {
  let word = b >> 2u;
  if ((b & 2u) == 0u) {
    return weights[word];
  }
  return (weights[word] >> 16u) | (weights[word + 1u] << 16u);
}

// Any alignment.
fn read_u32_unaligned(b: u32) -> u32 {
  let word = b >> 2u;
  let shift = (b & 3u) * 8u;
  if (shift == 0u) {
    return weights[word];
  }
  return (weights[word] >> shift) | (weights[word + 1u] << (32u - shift));
}

// The four signed bytes of a word, lowest byte first.
fn unpack_i8x4(w: u32) -> vec4f {
  return vec4f(bitcast<vec4i>(vec4u(w << 24u, w << 16u, w << 8u, w)) >> vec4u(24u));
}

// The four unsigned bytes of a word, lowest byte first.
fn unpack_u8x4(w: u32) -> vec4u {
  return (vec4u(w) >> vec4u(0u, 8u, 16u, 24u)) & vec4u(0xffu);
}

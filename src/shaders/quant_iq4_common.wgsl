// The 16 non-linear levels of IQ4_NL and IQ4_XS (llama.cpp's kvalues_iq4nl), as signed bytes packed
// four to a word, so a lookup is a vector element and a shift: no array indexed at run time.
const IQ4_LEVELS = vec4u(0xbfad9881u, 0xf6eaddcfu, 0x26190d01u, 0x71594535u);

fn iq4_level(n: u32) -> f32 {
  return f32(bitcast<i32>(IQ4_LEVELS[n >> 2u] << (24u - 8u * (n & 3u))) >> 24u);
}

// The levels of four nibbles, one per byte of q (each byte < 16).
fn iq4_levels4(q: u32) -> vec4f {
  return vec4f(iq4_level(q & 0xfu), iq4_level((q >> 8u) & 0xfu), iq4_level((q >> 16u) & 0xfu), iq4_level(q >> 24u));
}

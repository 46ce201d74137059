// Second pass of flash-decoding (attention_decode.wgsl): merges the per-chunk softmax states of
// one (token, head): M = max m_c, L = sum l_c exp(m_c - M), out = sum o_c exp(m_c - M) / L.
// One workgroup per (head, token); invocations own dims. The chunks merged are those the decode
// pass ran: the count attention_chunks.wgsl wrote for its indirect dispatch.

struct Params {
  n_head: u32,
  n_chunks: u32,     // chunk stride of the partial states (the most chunks)
  out_stride: u32,   // floats between tokens; head h of token t at out_offset + t * out_stride + h * HEAD_DIM
  out_offset: u32,
}

override HEAD_DIM: u32 = 128;
override WORKGROUP_SIZE: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial_o: array<f32>;
@group(0) @binding(2) var<storage, read> partial_stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dispatch: array<u32>; // decode's workgroups: chunks, heads, tokens

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let t = wid.y;
  let first = (t * params.n_head + h) * params.n_chunks;
  let n_chunks = min(dispatch[0], params.n_chunks);
  var big_m = -3.0e38;
  for (var c = 0u; c < n_chunks; c++) {
    big_m = max(big_m, partial_stats[(first + c) * 2u]);
  }
  var big_l = 0.0;
  for (var c = 0u; c < n_chunks; c++) {
    big_l += partial_stats[(first + c) * 2u + 1u] * exp(partial_stats[(first + c) * 2u] - big_m);
  }
  let inv_l = select(0.0, 1.0 / big_l, big_l > 0.0);
  for (var d = lid; d < HEAD_DIM; d += WORKGROUP_SIZE) {
    var acc = 0.0;
    for (var c = 0u; c < n_chunks; c++) {
      acc += partial_o[(first + c) * HEAD_DIM + d] * exp(partial_stats[(first + c) * 2u] - big_m);
    }
    out[params.out_offset + t * params.out_stride + h * HEAD_DIM + d] = acc * inv_l;
  }
}

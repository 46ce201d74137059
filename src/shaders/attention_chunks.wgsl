// Flash-decoding's chunk count, on the GPU: the decode pass (attention_decode.wgsl) runs one
// workgroup per CHUNK keys that some query can see, which follows from the query positions alone
// (a query at qp sees keys [0, qp] inside [0, kv_len); not CAUSAL, every query sees [0, kv_len)).
// Writes the decode dispatch's workgroup counts (chunks, heads, tokens) for
// dispatchWorkgroupsIndirect; attention_combine.wgsl reads the chunk count from the same words. So
// a recorded decode step stays valid as the cache grows: nothing that changes per token is a
// uniform or a host-side workgroup count.

struct Params {
  n_tokens: u32,
  n_head: u32,
  kv_len: u32,    // cache positions [0, kv_len) hold keys
  n_chunks: u32,  // the most chunks (the scratch's chunk stride)
}

override CHUNK: u32 = 256;
override CAUSAL: bool = true;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read_write> dispatch: array<u32>; // x, y, z

@compute @workgroup_size(1)
fn main() {
  var seen = 1u;
  if (!CAUSAL) {
    seen = max(seen, params.kv_len);
  } else {
    for (var t = 0u; t < params.n_tokens; t++) {
      seen = max(seen, min(positions[t] + 1u, params.kv_len));
    }
  }
  dispatch[0] = clamp((seen + CHUNK - 1u) / CHUNK, 1u, params.n_chunks);
  dispatch[1] = params.n_head;
  dispatch[2] = params.n_tokens;
}

//#include kv
//#include bias
// Attention for a few query tokens over a long KV cache, split across workgroups
// (flash-decoding). Workgroup (chunk, head, token) scores the keys of cache positions
// [chunk * CHUNK, (chunk + 1) * CHUNK) that the query may see, and writes its partial softmax
// state: m (max score), l (sum of exp(score - m)) and o = sum exp(score - m) * v. The combine pass
// (attention_combine.wgsl) merges the chunks of each (token, head).
//
// score = scale * q.k, then softcap * tanh(score / softcap) when softcap > 0 (Gemma 2), then
// add_bias (the `bias` slot: none, or T5's relative position bias). CAUSAL: key position p is
// visible to a query at position qp when p <= qp and, with a sliding window w, qp - p < w; not
// CAUSAL (T5's encoder and cross-attention): every key below kv_len is. Cache layout as in
// kv_write.wgsl; query head h reads kv head h / (n_head / n_kv_head).

struct Params {
  n_head: u32,
  n_kv_head: u32,
  q_stride: u32,     // floats between query tokens; head h of token t at q_offset + t * q_stride + h * HEAD_DIM
  q_offset: u32,
  kv_len: u32,       // cache positions [0, kv_len) hold keys
  n_chunks: u32,     // chunk stride of the partial states; the dispatch runs the chunks attention_chunks.wgsl counted
  window: u32,       // 0: no sliding window
  scale: f32,
  softcap: f32,      // 0: none
  bias_offset: u32,  // the `bias` slot's index of relative position 0 (unused without a bias)
}

override HEAD_DIM: u32 = 128;
override WORKGROUP_SIZE: u32 = 64;  // power of two
override CHUNK: u32 = 256;          // keys per workgroup
override CAUSAL: bool = true;       // false: no mask (T5); a pipeline constant, folded at compile time

const NEG: f32 = -3.0e38; // "no score"; WGSL does not promise infinities

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> k_cache: array<kv_t>;
@group(0) @binding(4) var<storage, read> v_cache: array<kv_t>;
@group(0) @binding(5) var<storage, read_write> partial_o: array<f32>;     // [token][head][chunk][HEAD_DIM]
@group(0) @binding(6) var<storage, read_write> partial_stats: array<f32>; // [token][head][chunk][m, l]

var<workgroup> q_s: array<f32, HEAD_DIM>;
var<workgroup> p_s: array<f32, CHUNK>;
var<workgroup> red: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let chunk = wid.x;
  let h = wid.y;
  let t = wid.z;
  let kvh = h / (params.n_head / params.n_kv_head);
  let qpos = positions[t];
  let start = chunk * CHUNK;
  var lo = start;
  var hi = min(start + CHUNK, params.kv_len);
  if (CAUSAL) {
    if (params.window > 0u && qpos + 1u > params.window) {
      lo = max(lo, qpos + 1u - params.window);
    }
    hi = min(hi, qpos + 1u);
  }
  let slot = (t * params.n_head + h) * params.n_chunks + chunk;
  if (lo >= hi) {
    // Nothing visible in this chunk: an empty partial state.
    for (var d = lid; d < HEAD_DIM; d += WORKGROUP_SIZE) {
      partial_o[slot * HEAD_DIM + d] = 0.0;
    }
    if (lid == 0u) {
      partial_stats[slot * 2u] = NEG;
      partial_stats[slot * 2u + 1u] = 0.0;
    }
    return;
  }

  let qb = params.q_offset + t * params.q_stride + h * HEAD_DIM;
  for (var d = lid; d < HEAD_DIM; d += WORKGROUP_SIZE) {
    q_s[d] = q[qb + d];
  }
  workgroupBarrier();

  var m = NEG;
  for (var j = lid; j < CHUNK; j += WORKGROUP_SIZE) {
    let key = start + j;
    var score = NEG;
    if (key >= lo && key < hi) {
      let kb = (key * params.n_kv_head + kvh) * HEAD_DIM;
      var dot = 0.0;
      for (var d = 0u; d < HEAD_DIM; d++) {
        dot += q_s[d] * f32(k_cache[kb + d]);
      }
      score = dot * params.scale;
      if (params.softcap > 0.0) {
        score = params.softcap * tanh(score / params.softcap);
      }
      score = add_bias(score, h, qpos, key);
      m = max(m, score);
    }
    p_s[j] = score;
  }
  red[lid] = m;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      red[lid] = max(red[lid], red[lid + stride]);
    }
    workgroupBarrier();
  }
  let chunk_max = red[0];
  workgroupBarrier();

  var l = 0.0;
  for (var j = lid; j < CHUNK; j += WORKGROUP_SIZE) {
    let key = start + j;
    var p = 0.0;
    if (key >= lo && key < hi) {
      p = exp(p_s[j] - chunk_max);
    }
    p_s[j] = p;
    l += p;
  }
  red[lid] = l;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      red[lid] += red[lid + stride];
    }
    workgroupBarrier();
  }

  // Output: invocations own dims, so each reads v rows contiguously.
  for (var d = lid; d < HEAD_DIM; d += WORKGROUP_SIZE) {
    var acc = 0.0;
    for (var key = lo; key < hi; key++) {
      acc += p_s[key - start] * f32(v_cache[(key * params.n_kv_head + kvh) * HEAD_DIM + d]);
    }
    partial_o[slot * HEAD_DIM + d] = acc;
  }
  if (lid == 0u) {
    partial_stats[slot * 2u] = chunk_max;
    partial_stats[slot * 2u + 1u] = red[0];
  }
}

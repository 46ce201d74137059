//#include kv
//#include bias
// Attention for many query tokens at once (prefill), tiled: workgroup (query tile, head) holds BQ
// queries and walks the KV cache in tiles of BK keys with an online softmax (running max m, sum l,
// and output o rescaled by exp(m_old - m_new) whenever the max grows), so scores never go to
// global memory. Same scores, masking (CAUSAL or not), bias slot and layouts as attention_decode.wgsl.
//
// Tiles live in workgroup memory: q_s (BQ x HEAD_DIM), kv_s (BK x HEAD_DIM, K then V of the same
// keys), s (BQ x BK). Each invocation owns up to MAX_O_PER_INVOCATION output elements of the
// BQ x HEAD_DIM tile in registers; the host picks BQ and BK to fit.

struct Params {
  n_tokens: u32,
  n_head: u32,
  n_kv_head: u32,
  q_stride: u32,
  q_offset: u32,
  out_stride: u32,
  out_offset: u32,
  kv_len: u32,
  window: u32,
  scale: f32,
  softcap: f32,
  bias_offset: u32,
}

override HEAD_DIM: u32 = 128;
override BQ: u32 = 8;
override BK: u32 = 8;
override WORKGROUP_SIZE: u32 = 128;
override CAUSAL: bool = true;
const MAX_O_PER_INVOCATION: u32 = 16u; // BQ * HEAD_DIM <= 16 * WORKGROUP_SIZE

const NEG: f32 = -3.0e38;
const MASKED: f32 = -1.0e38; // scores at or below this are masked

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> k_cache: array<kv_t>;
@group(0) @binding(4) var<storage, read> v_cache: array<kv_t>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> q_s: array<f32, BQ * HEAD_DIM>;
var<workgroup> kv_s: array<f32, BK * HEAD_DIM>;
var<workgroup> s: array<f32, BQ * BK>;
var<workgroup> m_s: array<f32, BQ>;
var<workgroup> l_s: array<f32, BQ>;
var<workgroup> alpha_s: array<f32, BQ>;
var<workgroup> qpos_s: array<u32, BQ>;
var<workgroup> range_lo: u32;
var<workgroup> range_hi: u32;

fn load_kv_tile(from_v: bool, first_key: u32, hi: u32, kvh: u32, lid: u32) {
  for (var e = lid; e < BK * HEAD_DIM; e += WORKGROUP_SIZE) {
    let key = first_key + e / HEAD_DIM;
    var value = 0.0;
    if (key < hi) {
      let at = (key * params.n_kv_head + kvh) * HEAD_DIM + e % HEAD_DIM;
      if (from_v) {
        value = f32(v_cache[at]);
      } else {
        value = f32(k_cache[at]);
      }
    }
    kv_s[e] = value;
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tile = wid.x;
  let h = wid.y;
  let kvh = h / (params.n_head / params.n_kv_head);
  let t0 = tile * BQ;

  for (var e = lid; e < BQ * HEAD_DIM; e += WORKGROUP_SIZE) {
    let t = t0 + e / HEAD_DIM;
    var value = 0.0;
    if (t < params.n_tokens) {
      value = q[params.q_offset + t * params.q_stride + h * HEAD_DIM + e % HEAD_DIM];
    }
    q_s[e] = value;
  }
  for (var i = lid; i < BQ; i += WORKGROUP_SIZE) {
    m_s[i] = NEG;
    l_s[i] = 0.0;
    if (t0 + i < params.n_tokens) {
      qpos_s[i] = positions[t0 + i];
    }
  }
  if (lid == 0u && !CAUSAL) {
    range_lo = 0u;
    range_hi = params.kv_len;
  } else if (lid == 0u) {
    // The keys any query of the tile can see: [min window start, max position + 1).
    var lo = 0xffffffffu;
    var hi = 0u;
    for (var i = 0u; i < BQ && t0 + i < params.n_tokens; i++) {
      let qp = positions[t0 + i];
      var first = 0u;
      if (params.window > 0u && qp + 1u > params.window) {
        first = qp + 1u - params.window;
      }
      lo = min(lo, first);
      hi = max(hi, qp + 1u);
    }
    range_lo = lo;
    range_hi = min(hi, params.kv_len);
  }
  let lo = workgroupUniformLoad(&range_lo);
  let hi = workgroupUniformLoad(&range_hi);

  var o: array<f32, MAX_O_PER_INVOCATION>;
  for (var r = 0u; r < MAX_O_PER_INVOCATION; r++) {
    o[r] = 0.0;
  }

  for (var kt = (lo / BK) * BK; kt < hi; kt += BK) {
    load_kv_tile(false, kt, hi, kvh, lid);
    workgroupBarrier();

    for (var e = lid; e < BQ * BK; e += WORKGROUP_SIZE) {
      let i = e / BK;
      let key = kt + e % BK;
      var score = NEG;
      if (t0 + i < params.n_tokens && key < hi) {
        let qp = qpos_s[i];
        if (!CAUSAL || (key <= qp && (params.window == 0u || qp - key < params.window))) {
          var dot = 0.0;
          for (var d = 0u; d < HEAD_DIM; d++) {
            dot += q_s[i * HEAD_DIM + d] * kv_s[(e % BK) * HEAD_DIM + d];
          }
          score = dot * params.scale;
          if (params.softcap > 0.0) {
            score = params.softcap * tanh(score / params.softcap);
          }
          score = add_bias(score, h, qp, key);
        }
      }
      s[e] = score;
    }
    workgroupBarrier();

    for (var i = lid; i < BQ; i += WORKGROUP_SIZE) {
      let m_old = m_s[i];
      var m_new = m_old;
      for (var j = 0u; j < BK; j++) {
        m_new = max(m_new, s[i * BK + j]);
      }
      var sum = 0.0;
      for (var j = 0u; j < BK; j++) {
        let score = s[i * BK + j];
        var p = 0.0;
        if (score > MASKED) {
          p = exp(score - m_new);
        }
        s[i * BK + j] = p;
        sum += p;
      }
      let alpha = exp(m_old - m_new);
      alpha_s[i] = alpha;
      l_s[i] = l_s[i] * alpha + sum;
      m_s[i] = m_new;
    }
    load_kv_tile(true, kt, hi, kvh, lid); // K is no longer read: the score loop ended at the barrier
    workgroupBarrier();

    for (var r = 0u; r < MAX_O_PER_INVOCATION; r++) {
      let e = lid + r * WORKGROUP_SIZE;
      if (e < BQ * HEAD_DIM) {
        let i = e / HEAD_DIM;
        let d = e % HEAD_DIM;
        var acc = o[r] * alpha_s[i];
        for (var j = 0u; j < BK; j++) {
          acc += s[i * BK + j] * kv_s[j * HEAD_DIM + d];
        }
        o[r] = acc;
      }
    }
    workgroupBarrier();
  }

  for (var r = 0u; r < MAX_O_PER_INVOCATION; r++) {
    let e = lid + r * WORKGROUP_SIZE;
    let i = e / HEAD_DIM;
    if (e < BQ * HEAD_DIM && t0 + i < params.n_tokens) {
      let l = l_s[i];
      out[params.out_offset + (t0 + i) * params.out_stride + h * HEAD_DIM + e % HEAD_DIM] = select(0.0, o[r] / l, l > 0.0);
    }
  }
}

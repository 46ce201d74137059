// Training: the f32 matrix product every LoRA training matmul reduces to, over strided views so
// one kernel covers x W^T, dy W, x A^T, dy^T u and the rest without transposing anything:
//   C[m][n] = alpha * sum_k A(m, k) B(k, n) (+ bias[n]) (+ C[m][n] when accumulating)
// with A(m, k) = a[a_off + m * a_sm + k * a_sk], B(k, n) = b[b_off + k * b_sk + n * b_sn],
// C[m][n] = c[c_off + m * c_sm + n]. 64 x 64 output tiles per workgroup, 4 x 4 per invocation (each
// value read from workgroup memory feeds 4 products), K in steps of 16 through workgroup memory.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  a_off: u32,
  a_sm: u32,
  a_sk: u32,
  b_off: u32,
  b_sk: u32,
  b_sn: u32,
  c_off: u32,
  c_sm: u32,
  bias_off: u32,
  alpha: f32,
  accumulate: u32,
  has_bias: u32,
}

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

var<workgroup> ta: array<f32, 1024>; // [TK][TM]
var<workgroup> tb: array<f32, 1024>; // [TK][TN]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let m0 = wid.y * TM;
  let n0 = wid.x * TN;
  var acc = array<vec4f, 4>(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
  for (var k0 = 0u; k0 < params.k; k0 += TK) {
    for (var e = 0u; e < 4u; e++) {
      let idx = li + e * 256u;
      // Tile loads: consecutive invocations read consecutive memory along whichever of A's (B's)
      // two indices has stride 1, e.g. along k for x W^T's transposed W.
      var am = idx / TK;
      var ak = idx % TK;
      if (params.a_sk != 1u) {
        am = idx % TM;
        ak = idx / TM;
      }
      var va = 0.0;
      if (m0 + am < params.m && k0 + ak < params.k) {
        va = a[params.a_off + (m0 + am) * params.a_sm + (k0 + ak) * params.a_sk];
      }
      ta[ak * TM + am] = va;
      var bk = idx / TN;
      var bn = idx % TN;
      if (params.b_sn != 1u) {
        bk = idx % TK;
        bn = idx / TK;
      }
      var vb = 0.0;
      if (n0 + bn < params.n && k0 + bk < params.k) {
        vb = b[params.b_off + (k0 + bk) * params.b_sk + (n0 + bn) * params.b_sn];
      }
      tb[bk * TN + bn] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let ra = kk * TM + lid.y * 4u;
      let rb = kk * TN + lid.x * 4u;
      let av = vec4f(ta[ra], ta[ra + 1u], ta[ra + 2u], ta[ra + 3u]);
      let bv = vec4f(tb[rb], tb[rb + 1u], tb[rb + 2u], tb[rb + 3u]);
      acc[0] += av.x * bv;
      acc[1] += av.y * bv;
      acc[2] += av.z * bv;
      acc[3] += av.w * bv;
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let row = m0 + lid.y * 4u + i;
    if (row >= params.m) {
      break;
    }
    for (var j = 0u; j < 4u; j++) {
      let col = n0 + lid.x * 4u + j;
      if (col >= params.n) {
        break;
      }
      var v = params.alpha * acc[i][j];
      if (params.has_bias != 0u) {
        v += bias[params.bias_off + col];
      }
      let ci = params.c_off + row * params.c_sm + col;
      if (params.accumulate != 0u) {
        v += c[ci];
      }
      c[ci] = v;
    }
  }
}

// Training: the f32 matrix product every LoRA training matmul reduces to, over strided views so
// one kernel covers x W^T, dy W, x A^T, dy^T u and the rest without transposing anything:
//   C[m][n] = alpha * sum_k A(m, k) B(k, n) (+ bias[n]) (+ C[m][n] when accumulating)
// with A(m, k) = a[a_off + m * a_sm + k * a_sk], B(k, n) = b[b_off + k * b_sk + n * b_sn],
// C[m][n] = c[c_off + m * c_sm + n]. 16 x 16 output tiles, K in steps of 16 through workgroup memory.

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

const T: u32 = 16u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

var<workgroup> ta: array<f32, 256>; // [m][k] of the tile
var<workgroup> tb: array<f32, 256>; // [k][n] of the tile

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.y * T + lid.y;
  let col = wid.x * T + lid.x;
  var acc = 0.0;
  for (var k0 = 0u; k0 < params.k; k0 += T) {
    let ka = k0 + lid.x;
    var va = 0.0;
    if (row < params.m && ka < params.k) {
      va = a[params.a_off + row * params.a_sm + ka * params.a_sk];
    }
    ta[lid.y * T + lid.x] = va;
    let kb = k0 + lid.y;
    var vb = 0.0;
    if (col < params.n && kb < params.k) {
      vb = b[params.b_off + kb * params.b_sk + col * params.b_sn];
    }
    tb[lid.y * T + lid.x] = vb;
    workgroupBarrier();
    for (var kk = 0u; kk < T; kk++) {
      acc += ta[lid.y * T + kk] * tb[kk * T + lid.x];
    }
    workgroupBarrier();
  }
  if (row < params.m && col < params.n) {
    var v = params.alpha * acc;
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

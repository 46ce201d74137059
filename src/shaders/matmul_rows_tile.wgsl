// The inner product of matmul_rows.wgsl, shared with matmul_grouped.wgsl: four weight rows times
// eight activation rows, one invocation, no workgroup memory. Needs the `weights` slot's w4/w1, the
// `x` slot's x4/x1 and params.k. Each step decodes four weights of each row once and loads four
// activations of each token once, for 32 dot products.

// Sums for four rows and four tokens: component j of r<i> is row i's sum for token j.
struct Tile {
  r0: vec4f,
  r1: vec4f,
  r2: vec4f,
  r3: vec4f,
}

// Tokens 0..3 (a) and 4..7 (b) of the eight.
struct Tiles {
  a: Tile,
  b: Tile,
}

// Adds four weights of each row (w0..w3) times four activations of each token (column j of xs is
// token j's): w * xs is the vector of w's dot products with the columns.
fn tile_add(t: Tile, w0: vec4f, w1: vec4f, w2: vec4f, w3: vec4f, xs: mat4x4f) -> Tile {
  return Tile(t.r0 + w0 * xs, t.r1 + w1 * xs, t.r2 + w2 * xs, t.r3 + w3 * xs);
}

// sum_k W[rows[i], k] * x[xa[j] + k] (a) and x[xb[j] + k] (b): xa, xb are the eight tokens' first floats.
fn rows_tile(rows: vec4u, xa: vec4u, xb: vec4u) -> Tiles {
  var a = Tile(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
  var b = Tile(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
  let k4 = params.k / 4u;
  for (var i = 0u; i < k4; i++) {
    let k = i * 4u;
    let wa = w4(rows.x, k);
    let wb = w4(rows.y, k);
    let wc = w4(rows.z, k);
    let wd = w4(rows.w, k);
    a = tile_add(a, wa, wb, wc, wd, mat4x4f(x4(xa.x + k), x4(xa.y + k), x4(xa.z + k), x4(xa.w + k)));
    b = tile_add(b, wa, wb, wc, wd, mat4x4f(x4(xb.x + k), x4(xb.y + k), x4(xb.z + k), x4(xb.w + k)));
  }
  for (var k = k4 * 4u; k < params.k; k++) {
    let w = vec4f(w1(rows.x, k), w1(rows.y, k), w1(rows.z, k), w1(rows.w, k));
    let x_a = vec4f(x1(xa.x + k), x1(xa.y + k), x1(xa.z + k), x1(xa.w + k));
    let x_b = vec4f(x1(xb.x + k), x1(xb.y + k), x1(xb.z + k), x1(xb.w + k));
    a = Tile(a.r0 + w.x * x_a, a.r1 + w.y * x_a, a.r2 + w.z * x_a, a.r3 + w.w * x_a);
    b = Tile(b.r0 + w.x * x_b, b.r1 + w.y * x_b, b.r2 + w.z * x_b, b.r3 + w.w * x_b);
  }
  return Tiles(a, b);
}

// Buckets one chunk of a mixture-of-experts batch's (token, expert) pairs by expert, on the device
// (no readback): pairs pair_base ..< pair_base + pairs of `ids` (moe_route.wgsl). One workgroup:
//   1. starts[e] = how many of the chunk's pairs chose expert e (each invocation counts its experts);
//   2. invocation 0 turns the counts into offsets and cuts each expert's run into tiles of up to
//      `tile` pairs: tiles[i] = (expert, first, end, 0) in `order`; tiles up to max_tiles are
//      written empty (first == end) so the grouped product (matmul_grouped.wgsl) can size its grid
//      for any routing;
//   3. order[starts[e] ..] = the chunk-relative pairs that chose e, ascending (stable, no atomics).
// Work is pairs x n_expert / WORKGROUP_SIZE comparisons per invocation: small next to the products.

struct Params {
  pair_base: u32,
  pairs: u32,
  n_expert: u32,
  tile: u32,
  max_tiles: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> starts: array<u32>;
@group(0) @binding(3) var<storage, read_write> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> tiles: array<vec4u>;

override WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(local_invocation_index) lid: u32) {
  for (var e = lid; e < params.n_expert; e += WORKGROUP_SIZE) {
    var count = 0u;
    for (var p = 0u; p < params.pairs; p++) {
      count += select(0u, 1u, ids[params.pair_base + p] == e);
    }
    starts[e] = count;
  }
  storageBarrier();
  if (lid == 0u) {
    var start = 0u;
    var n_tiles = 0u;
    for (var e = 0u; e < params.n_expert; e++) {
      let count = starts[e];
      starts[e] = start;
      for (var s = 0u; s < count; s += params.tile) {
        tiles[n_tiles] = vec4u(e, start + s, start + min(s + params.tile, count), 0u);
        n_tiles++;
      }
      start += count;
    }
    for (var i = n_tiles; i < params.max_tiles; i++) {
      tiles[i] = vec4u(0u);
    }
  }
  storageBarrier();
  for (var e = lid; e < params.n_expert; e += WORKGROUP_SIZE) {
    var at = starts[e];
    for (var p = 0u; p < params.pairs; p++) {
      if (ids[params.pair_base + p] == e) {
        order[at] = p;
        at++;
      }
    }
  }
}

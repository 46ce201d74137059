// Top-k selection by radix select, shared by the two sampling passes (an include). The including
// shader defines WORKGROUP_SIZE, INVALID and:
//   fn item_count() -> u32           items this workgroup selects from
//   fn item_value(i: u32) -> f32     item i's logit
//   fn item_id(i: u32) -> u32        item i's token id, INVALID when the slot is empty
// `top_k_cut(lid, k)` finds the k-th best item by (higher value, then lower id) with 4 histogram
// passes over the bytes of an order-preserving key (plus 4 over ids, only when the cut falls
// inside a run of equal values), i.e. a fixed ~20 barriers whatever k is. An item is in the top k
// when `in_top_k(value, id, cut)`. Logits must not be NaN.

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> sel_digit: u32;
var<workgroup> sel_above: u32;
var<workgroup> sel_equal: u32;

// f32 -> u32 with the same order (negatives flipped entirely, positives get the sign bit).
fn order_key(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// Radix select over the items that pass the filter: the k-th largest of their keys (by_id: of
// ~id among the items whose key equals key_filter, i.e. the k-th smallest id). Returns (that key,
// how many items equal to it are among the k largest, how many items equal it).
fn radix_select(lid: u32, k: u32, by_id: bool, key_filter: u32) -> vec3u {
  var prefix = 0u;
  var mask = 0u;
  var remaining = k;
  var equal = 0u;
  for (var round = 0u; round < 4u; round++) {
    let shift = 24u - 8u * round;
    for (var b = lid; b < 256u; b += WORKGROUP_SIZE) {
      atomicStore(&hist[b], 0u);
    }
    workgroupBarrier();
    let n = item_count();
    for (var i = lid; i < n; i += WORKGROUP_SIZE) {
      let id = item_id(i);
      if (id != INVALID) {
        let key = order_key(item_value(i));
        var v = key;
        var take = true;
        if (by_id) {
          v = ~id;
          take = key == key_filter;
        }
        if (take && (v & mask) == prefix) {
          atomicAdd(&hist[(v >> shift) & 255u], 1u);
        }
      }
    }
    workgroupBarrier();
    if (lid == 0u) {
      var cum = 0u;
      var b = 255u;
      loop {
        let c = atomicLoad(&hist[b]);
        if (cum + c >= remaining || b == 0u) {
          sel_equal = c;
          break;
        }
        cum += c;
        b -= 1u;
      }
      sel_digit = b;
      sel_above = cum;
    }
    let digit = workgroupUniformLoad(&sel_digit);
    let above = workgroupUniformLoad(&sel_above);
    equal = workgroupUniformLoad(&sel_equal);
    remaining -= above;
    prefix |= digit << shift;
    mask |= 255u << shift;
  }
  return vec3u(prefix, remaining, equal);
}

// The cut of the top k (k >= 1, at most the number of present items): (key, largest id taken
// among items with that key).
fn top_k_cut(lid: u32, k: u32) -> vec2u {
  let by_key = radix_select(lid, k, false, 0u);
  if (by_key.y == by_key.z) {
    return vec2u(by_key.x, INVALID); // every item with the cut value is in
  }
  let by_id = radix_select(lid, by_key.y, true, by_key.x);
  return vec2u(by_key.x, ~by_id.x);
}

fn in_top_k(value: f32, id: u32, cut: vec2u) -> bool {
  let key = order_key(value);
  return id != INVALID && (key > cut.x || (key == cut.x && id <= cut.y));
}

// Copies or clears a region of floats (a recurrent state, a snapshot of one):
//   ZERO 0: dst[dst_offset + i] = src[src_offset + i], i < floats (the `io` slot: io_separate.wgsl,
//           or io_in_place.wgsl for two disjoint regions of one buffer)
//   ZERO 1: dst[dst_offset + i] = 0 (io_in_place.wgsl)
// A dispatch rather than copyBufferToBuffer / clearBuffer: it orders with the step's other
// dispatches inside one compute pass, is captured and replayed like them, and works within one
// buffer (copyBufferToBuffer forbids the same source and destination).

struct Params {
  floats: u32,
  src_offset: u32,
  dst_offset: u32,
  groups_x: u32,
}

override WORKGROUP_SIZE: u32 = 256;
override ZERO: u32 = 0u;

@group(0) @binding(0) var<uniform> params: Params;

//#include io

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * params.groups_x) * WORKGROUP_SIZE + lid;
  if (i >= params.floats) {
    return;
  }
  var value = 0.0;
  if (ZERO == 0u) {
    value = load_src(params.src_offset + i);
  }
  store_dst(params.dst_offset + i, value);
}

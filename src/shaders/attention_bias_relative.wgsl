// The `bias` slot of attention_decode.wgsl and attention_prefill.wgsl with T5's relative position
// bias: the score of query head h at position qp for the key at position key gains
// bias_table[bucket * n_head + h], bucket = bias_buckets[key - qp + params.bias_offset]. The bucket
// of every relative position is computed once on the host (T5's bucket function, t5-config.ts);
// bias_offset makes the most negative relative position the caller can meet index 0, so the u32
// index never wraps.

@group(0) @binding(10) var<storage, read> bias_table: array<f32>;   // [buckets][n_head] (GGUF attn_rel_b)
@group(0) @binding(11) var<storage, read> bias_buckets: array<u32>; // bucket per relative position + bias_offset

fn add_bias(score: f32, h: u32, qp: u32, key: u32) -> f32 {
  return score + bias_table[bias_buckets[key + params.bias_offset - qp] * params.n_head + h];
}

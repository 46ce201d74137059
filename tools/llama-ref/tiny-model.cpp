// tiny-model: a small random-weight llama-architecture GGUF written with ggml's own gguf writer, with
// the vocabulary (every tokenizer.* key) copied from a vocab-only GGUF such as llama.cpp's
// models/ggml-vocab-llama-spm.gguf. It exists so that llama-ref's own tests have weights to run
// without network access or Python; Hearth's parity fixtures come from the project's generator.
#include <cmath>
#include <cstring>
#include <memory>
#include <strings.h>

#include "common.hpp"
#include "ggml.h"
#include "gguf.h"

namespace ref {

namespace {

struct Rng {  // splitmix64: tiny, seedable, identical everywhere
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return (float)((next() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }  // [-1, 1)
};

struct Writer {
  ggml_context *ggml = nullptr;
  gguf_context *gguf = nullptr;
  Rng rng;
  ~Writer() {
    if (gguf) gguf_free(gguf);
    if (ggml) ggml_free(ggml);
  }

  /** A [ne1][ne0] tensor (ne0 contiguous) of `type` from uniform(-scale, scale) + offset values. */
  void add(const std::string &name, ggml_type type, int64_t ne0, int64_t ne1, float scale, float offset = 0) {
    if (ne0 % ggml_blck_size(type) != 0) {
      throw Error(name + ": row length " + std::to_string(ne0) + " is not a multiple of the " + ggml_type_name(type) +
                  " block size " + std::to_string(ggml_blck_size(type)));
    }
    std::vector<float> v((size_t)(ne0 * ne1));
    for (auto &x : v) x = offset + scale * rng.uniform();
    ggml_tensor *t = ne1 == 1 ? ggml_new_tensor_1d(ggml, type, ne0) : ggml_new_tensor_2d(ggml, type, ne0, ne1);
    ggml_set_name(t, name.c_str());
    size_t n = ggml_quantize_chunk(type, v.data(), t->data, 0, ne1, ne0, nullptr);
    if (n != ggml_nbytes(t)) throw Error(name + ": quantized size mismatch");
    gguf_add_tensor(gguf, t);
  }
};

ggml_type type_by_name(const std::string &name) {
  for (int t = 0; t < GGML_TYPE_COUNT; t++) {
    const char *n = ggml_type_name((ggml_type)t);
    if (n && ggml_blck_size((ggml_type)t) > 0 && strcasecmp(n, name.c_str()) == 0) return (ggml_type)t;
  }
  throw Error("unknown ggml type '" + name + "'");
}

}  // namespace

int cmd_tiny_model(Args &a) {
  a.expect_positionals(0, "llama-ref tiny-model --vocab VOCAB.gguf --out OUT.gguf [--layers 2] [--dim 64] ...");
  const std::string vocab_path = a.str("--vocab");
  const std::string out_path = a.str("--out");
  const int64_t n_layer = a.int_or("--layers", 2);
  const int64_t dim = a.int_or("--dim", 64);
  const int64_t n_head = a.int_or("--heads", 4);
  const int64_t n_head_kv = a.int_or("--kv-heads", 2);
  const int64_t n_ff = a.int_or("--ff", 128);
  const int64_t n_ctx = a.int_or("--ctx", 256);
  const ggml_type wtype = type_by_name(a.str_or("--type", "f32"));
  const uint64_t seed = (uint64_t)a.int_or("--seed", 1);
  a.reject_unused();
  if (n_layer < 1 || dim < 1 || n_head < 1 || n_head_kv < 1 || n_ff < 1 || n_ctx < 1) throw Error("sizes must be positive");
  if (dim % n_head != 0 || n_head % n_head_kv != 0) throw Error("need dim % heads == 0 and heads % kv-heads == 0");
  const int64_t head_dim = dim / n_head;
  if (head_dim % 2 != 0) throw Error("head size must be even for RoPE");

  gguf_init_params vp{/*no_alloc=*/true, /*ctx=*/nullptr};
  std::unique_ptr<gguf_context, void (*)(gguf_context *)> vocab(gguf_init_from_file(vocab_path.c_str(), vp), gguf_free);
  if (!vocab) throw Error("cannot read vocabulary file " + vocab_path);
  const int64_t tok_key = gguf_find_key(vocab.get(), "tokenizer.ggml.tokens");
  if (tok_key < 0) throw Error(vocab_path + " has no tokenizer.ggml.tokens");
  const int64_t n_vocab = (int64_t)gguf_get_arr_n(vocab.get(), tok_key);

  Writer w;
  w.rng.s = seed;
  w.gguf = gguf_init_empty();
  // Copy the tokenizer only: the vocab files also carry their source model's hyperparameters.
  for (int64_t i = 0; i < gguf_get_n_kv(vocab.get()); i++) {
    const char *key = gguf_get_key(vocab.get(), i);
    if (std::strncmp(key, "tokenizer.", 10) != 0) continue;
    gguf_type t = gguf_get_kv_type(vocab.get(), i);
    if (t == GGUF_TYPE_STRING) {
      gguf_set_val_str(w.gguf, key, gguf_get_val_str(vocab.get(), i));
    } else if (t == GGUF_TYPE_ARRAY && gguf_get_arr_type(vocab.get(), i) == GGUF_TYPE_STRING) {
      size_t n = gguf_get_arr_n(vocab.get(), i);
      std::vector<const char *> s(n);
      for (size_t k = 0; k < n; k++) s[k] = gguf_get_arr_str(vocab.get(), i, k);
      gguf_set_arr_str(w.gguf, key, s.data(), n);
    } else if (t == GGUF_TYPE_ARRAY) {
      gguf_set_arr_data(w.gguf, key, gguf_get_arr_type(vocab.get(), i), gguf_get_arr_data(vocab.get(), i), gguf_get_arr_n(vocab.get(), i));
    } else {
      // Scalars: gguf_set_kv copies a whole context, so copy through a one-key context.
      gguf_context *one = gguf_init_empty();
      switch (t) {
        case GGUF_TYPE_UINT32: gguf_set_val_u32(one, key, gguf_get_val_u32(vocab.get(), i)); break;
        case GGUF_TYPE_INT32: gguf_set_val_i32(one, key, gguf_get_val_i32(vocab.get(), i)); break;
        case GGUF_TYPE_BOOL: gguf_set_val_bool(one, key, gguf_get_val_bool(vocab.get(), i)); break;
        case GGUF_TYPE_FLOAT32: gguf_set_val_f32(one, key, gguf_get_val_f32(vocab.get(), i)); break;
        case GGUF_TYPE_UINT64: gguf_set_val_u64(one, key, gguf_get_val_u64(vocab.get(), i)); break;
        default: gguf_free(one); throw Error(std::string("unsupported tokenizer key type for ") + key);
      }
      gguf_set_kv(w.gguf, one);
      gguf_free(one);
    }
  }
  gguf_set_val_str(w.gguf, "general.architecture", "llama");
  gguf_set_val_str(w.gguf, "general.name", "llama-ref tiny random llama");
  gguf_set_val_u32(w.gguf, "llama.context_length", (uint32_t)n_ctx);
  gguf_set_val_u32(w.gguf, "llama.embedding_length", (uint32_t)dim);
  gguf_set_val_u32(w.gguf, "llama.block_count", (uint32_t)n_layer);
  gguf_set_val_u32(w.gguf, "llama.feed_forward_length", (uint32_t)n_ff);
  gguf_set_val_u32(w.gguf, "llama.attention.head_count", (uint32_t)n_head);
  gguf_set_val_u32(w.gguf, "llama.attention.head_count_kv", (uint32_t)n_head_kv);
  gguf_set_val_u32(w.gguf, "llama.rope.dimension_count", (uint32_t)head_dim);
  gguf_set_val_f32(w.gguf, "llama.rope.freq_base", 10000.0f);
  gguf_set_val_f32(w.gguf, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  gguf_set_val_u32(w.gguf, "llama.vocab_size", (uint32_t)n_vocab);

  const int64_t kv_dim = head_dim * n_head_kv;
  size_t bytes = 0;
  auto plan = [&](ggml_type t, int64_t ne0, int64_t ne1) { bytes += ggml_row_size(t, ne0) * ne1 + ggml_tensor_overhead() + 64; };
  plan(wtype, dim, n_vocab);
  plan(wtype, dim, n_vocab);
  plan(GGML_TYPE_F32, dim, 1);
  for (int64_t l = 0; l < n_layer; l++) {
    plan(GGML_TYPE_F32, dim, 1);
    plan(GGML_TYPE_F32, dim, 1);
    plan(wtype, dim, dim);
    plan(wtype, dim, kv_dim);
    plan(wtype, dim, kv_dim);
    plan(wtype, dim, dim);
    plan(wtype, dim, n_ff);
    plan(wtype, dim, n_ff);
    plan(wtype, n_ff, dim);
  }
  ggml_init_params gp{bytes + 1024 * 1024, nullptr, /*no_alloc=*/false};
  w.ggml = ggml_init(gp);
  if (!w.ggml) throw Error("ggml_init failed");

  // Scales near 1/sqrt(fan_in) keep activations O(1), so logits are spread out but finite.
  const float s_dim = 1.0f / std::sqrt((float)dim);
  const float s_ff = 1.0f / std::sqrt((float)n_ff);
  w.add("token_embd.weight", wtype, dim, n_vocab, 1.0f);
  for (int64_t l = 0; l < n_layer; l++) {
    const std::string p = "blk." + std::to_string(l) + ".";
    w.add(p + "attn_norm.weight", GGML_TYPE_F32, dim, 1, 0.1f, 1.0f);
    w.add(p + "attn_q.weight", wtype, dim, dim, s_dim);
    w.add(p + "attn_k.weight", wtype, dim, kv_dim, s_dim);
    w.add(p + "attn_v.weight", wtype, dim, kv_dim, s_dim);
    w.add(p + "attn_output.weight", wtype, dim, dim, s_dim);
    w.add(p + "ffn_norm.weight", GGML_TYPE_F32, dim, 1, 0.1f, 1.0f);
    w.add(p + "ffn_gate.weight", wtype, dim, n_ff, s_dim);
    w.add(p + "ffn_up.weight", wtype, dim, n_ff, s_dim);
    w.add(p + "ffn_down.weight", wtype, n_ff, dim, s_ff);
  }
  w.add("output_norm.weight", GGML_TYPE_F32, dim, 1, 0.1f, 1.0f);
  w.add("output.weight", wtype, dim, n_vocab, s_dim * 4.0f);
  if (!gguf_write_to_file(w.gguf, out_path.c_str(), false)) throw Error("cannot write " + out_path);
  return 0;
}

}  // namespace ref

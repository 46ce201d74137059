// encdec: llama.cpp's logits for an encoder-decoder model (T5): llama_encode over the input tokens,
// then llama_decode of the decoder tokens, every decoder position's logits.
#include <algorithm>
#include <memory>
#include <strings.h>

#include "common.hpp"
#include "llama.h"

namespace ref {

static ggml_type encdec_kv_type(const std::string &name) {
  for (int t = 0; t < GGML_TYPE_COUNT; t++) {
    const char *n = ggml_type_name((ggml_type)t);
    if (n && ggml_blck_size((ggml_type)t) > 0 && strcasecmp(n, name.c_str()) == 0) return (ggml_type)t;
  }
  throw Error("unknown KV cache type '" + name + "'");
}

/** Fills `b` with `ids[start, start + n)` at positions start.. in sequence 0, every one an output. */
static void fill_batch(llama_batch &b, const std::vector<int64_t> &ids, int64_t start, int64_t n) {
  b.n_tokens = (int32_t)n;
  for (int64_t i = 0; i < n; i++) {
    b.token[i] = (llama_token)ids[start + i];
    b.pos[i] = (llama_pos)(start + i);
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = 0;
    b.logits[i] = 1;
  }
}

int cmd_encdec(Args &a) {
  a.expect_positionals(1,
                       "llama-ref encdec MODEL.gguf --input-file IDS.json --decoder-file IDS.json --out OUT.f32 [--threads T] "
                       "[--decoder-batch N] [--kv-type f16|f32]");
  const std::string model_path = a.positional[0];
  auto input = parse_int_list(read_file(a.str("--input-file")), "--input-file");
  auto dec = parse_int_list(read_file(a.str("--decoder-file")), "--decoder-file");
  const std::string out_path = a.str("--out");
  const int64_t threads = a.int_or("--threads", 1);
  const int64_t dec_batch = a.int_or("--decoder-batch", std::max<int64_t>(1, (int64_t)dec.size()));
  const ggml_type kv_type = encdec_kv_type(a.str_or("--kv-type", "f16"));
  a.reject_unused();
  if (input.empty()) throw Error("--input-file holds no tokens");
  if (dec.empty()) throw Error("--decoder-file holds no tokens");
  if (threads < 1 || dec_batch < 1) throw Error("need --threads >= 1 and --decoder-batch >= 1");

  load_backends();
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  std::unique_ptr<llama_model, void (*)(llama_model *)> model(llama_model_load_from_file(model_path.c_str(), mp), llama_model_free);
  if (!model) throw Error("llama.cpp could not load " + model_path);
  if (!llama_model_has_encoder(model.get()) || !llama_model_has_decoder(model.get())) {
    throw Error(model_path + " is not an encoder-decoder model");
  }
  const llama_vocab *vocab = llama_model_get_vocab(model.get());
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);
  for (const auto *list : {&input, &dec}) {
    for (int64_t id : *list) {
      if (id < 0 || id >= n_vocab) throw Error("token id " + std::to_string(id) + " out of range [0, " + std::to_string(n_vocab) + ")");
    }
  }

  // The encoder takes the whole input in one micro-batch (llama_encode asserts it).
  const int64_t n_batch = std::max<int64_t>((int64_t)input.size(), dec_batch);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)std::max<int64_t>((int64_t)input.size(), (int64_t)dec.size());
  cp.n_batch = (uint32_t)n_batch;
  cp.n_ubatch = (uint32_t)n_batch;
  cp.n_seq_max = 1;
  cp.n_threads = (int32_t)threads;
  cp.n_threads_batch = (int32_t)threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = kv_type;
  cp.type_v = kv_type;
  cp.no_perf = true;
  cp.embeddings = false;
  cp.offload_kqv = false;
  cp.op_offload = false;
  std::unique_ptr<llama_context, void (*)(llama_context *)> ctx(llama_init_from_model(model.get(), cp), llama_free);
  if (!ctx) throw Error("llama_init_from_model failed");

  llama_batch b = llama_batch_init((int32_t)n_batch, 0, 1);
  std::unique_ptr<llama_batch, void (*)(llama_batch *)> guard(&b, [](llama_batch *p) { llama_batch_free(*p); });
  fill_batch(b, input, 0, (int64_t)input.size());
  int32_t rc = llama_encode(ctx.get(), b);
  if (rc != 0) throw Error("llama_encode returned " + std::to_string(rc));

  std::vector<float> logits(dec.size() * (size_t)n_vocab);
  for (int64_t start = 0; start < (int64_t)dec.size(); start += dec_batch) {
    const int64_t n = std::min<int64_t>(dec_batch, (int64_t)dec.size() - start);
    fill_batch(b, dec, start, n);
    rc = llama_decode(ctx.get(), b);
    if (rc != 0) throw Error("llama_decode returned " + std::to_string(rc) + " at decoder token " + std::to_string(start));
    for (int64_t i = 0; i < n; i++) {
      const float *row = llama_get_logits_ith(ctx.get(), (int32_t)i);
      if (!row) throw Error("no logits for decoder position " + std::to_string(start + i));
      std::copy(row, row + n_vocab, logits.begin() + (start + i) * n_vocab);
    }
  }
  write_file(out_path, logits.data(), logits.size() * sizeof(float));
  out("{\"nVocab\":" + std::to_string(n_vocab) + ",\"decoderStart\":" + std::to_string(llama_model_decoder_start_token(model.get())) + "}\n");
  return 0;
}

}  // namespace ref

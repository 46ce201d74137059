// logits: llama.cpp's CPU logits for every position of one sequence; encdec: the same for an
// encoder-decoder model (llama_encode, then llama_decode); info: which CPU backend runs them.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <strings.h>

#include "common.hpp"
#include "ggml-backend.h"
#include "llama.h"

namespace ref {

static ggml_type kv_type_by_name(const std::string &name) {
  for (int t = 0; t < GGML_TYPE_COUNT; t++) {
    const char *n = ggml_type_name((ggml_type)t);
    if (n && ggml_blck_size((ggml_type)t) > 0 && strcasecmp(n, name.c_str()) == 0) return (ggml_type)t;
  }
  throw Error("unknown KV cache type '" + name + "'");
}

/** One sequence on the CPU: no flash attention, no offload, logits rather than embeddings. */
static llama_context_params cpu_context_params(int64_t n_ctx, int64_t batch, int64_t ubatch, int64_t threads, ggml_type kv_type) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)n_ctx;
  cp.n_batch = (uint32_t)batch;
  cp.n_ubatch = (uint32_t)ubatch;
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
  return cp;
}

/** One `--lora` entry: an adapter file and its scale (llama.cpp's --lora-scaled FILE SCALE). */
struct LoraArg {
  std::string path;
  float scale;
};

/** "FILE[:SCALE][,FILE[:SCALE]...]": the scale is what follows the last ':' when it is a number (default 1). */
static std::vector<LoraArg> parse_loras(const std::string &spec) {
  std::vector<LoraArg> out;
  size_t start = 0;
  while (start <= spec.size() && !spec.empty()) {
    size_t comma = spec.find(',', start);
    std::string item = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    LoraArg arg{item, 1.0f};
    size_t colon = item.rfind(':');
    if (colon != std::string::npos) {
      const std::string tail = item.substr(colon + 1);
      char *end = nullptr;
      float v = std::strtof(tail.c_str(), &end);
      if (!tail.empty() && end && *end == '\0') arg = {item.substr(0, colon), v};
    }
    if (arg.path.empty()) throw Error("--lora: empty file name in '" + spec + "'");
    out.push_back(arg);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
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

int cmd_logits(Args &a) {
  a.expect_positionals(1, "llama-ref logits MODEL.gguf --tokens-file IDS.json --out OUT.f32 [--n-ctx N] [--threads T] [--batch N] [--lora FILE[:SCALE],...]");
  const std::string model_path = a.positional[0];
  auto ids = parse_int_list(read_file(a.str("--tokens-file")), "--tokens-file");
  const std::string out_path = a.str("--out");
  const int64_t n_ctx_opt = a.int_or("--n-ctx", 0);
  const int64_t threads = a.int_or("--threads", 1);
  const int64_t batch = a.int_or("--batch", std::max<int64_t>(1, std::min<int64_t>((int64_t)ids.size(), 512)));
  const int64_t ubatch = a.int_or("--ubatch", batch);
  // llama.cpp's default KV cache type is f16; f32 removes that rounding for tight comparisons.
  const ggml_type kv_type = kv_type_by_name(a.str_or("--kv-type", "f16"));
  const bool no_repack = a.flag("--no-repack");
  const std::vector<LoraArg> loras = parse_loras(a.str_or("--lora", ""));
  a.reject_unused();

  const int64_t n_tokens = (int64_t)ids.size();
  if (n_tokens == 0) throw Error("--tokens-file holds no tokens");
  if (threads < 1 || batch < 1 || ubatch < 1 || ubatch > batch) throw Error("need threads >= 1 and 1 <= ubatch <= batch");
  if (n_ctx_opt != 0 && n_ctx_opt < n_tokens) {
    throw Error("--n-ctx " + std::to_string(n_ctx_opt) + " is smaller than the " + std::to_string(n_tokens) + " tokens");
  }

  load_backends();
  llama_backend_init();

  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  // Weight repacking (e.g. Q4_0 into interleaved blocks for AVX2/AVX-512) picks other kernels; on by
  // default in llama.cpp, so on by default here.
  mp.use_extra_bufts = !no_repack;
  std::unique_ptr<llama_model, void (*)(llama_model *)> model(llama_model_load_from_file(model_path.c_str(), mp), llama_model_free);
  if (!model) throw Error("llama.cpp could not load " + model_path);
  const llama_vocab *vocab = llama_model_get_vocab(model.get());
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);
  for (int64_t id : ids) {
    if (id < 0 || id >= n_vocab) throw Error("token id " + std::to_string(id) + " out of range [0, " + std::to_string(n_vocab) + ")");
  }

  llama_context_params cp = cpu_context_params(n_ctx_opt ? n_ctx_opt : n_tokens, batch, ubatch, threads, kv_type);
  std::unique_ptr<llama_context, void (*)(llama_context *)> ctx(llama_init_from_model(model.get(), cp), llama_free);
  if (!ctx) throw Error("llama_init_from_model failed");

  // Adapters as llama.cpp's --lora / --lora-scaled: loaded for the model, set on the context.
  std::vector<llama_adapter_lora *> adapters;
  std::vector<float> scales;
  for (const auto &l : loras) {
    llama_adapter_lora *adapter = llama_adapter_lora_init(model.get(), l.path.c_str());
    if (!adapter) throw Error("llama.cpp could not load the LoRA adapter " + l.path);
    adapters.push_back(adapter);
    scales.push_back(l.scale);
  }
  if (!adapters.empty() && llama_set_adapters_lora(ctx.get(), adapters.data(), adapters.size(), scales.data()) != 0) {
    throw Error("llama_set_adapters_lora failed");
  }

  // The logits row width is the model's output size, which equals the vocabulary for causal LMs.
  std::vector<float> logits((size_t)n_tokens * n_vocab);
  llama_batch b = llama_batch_init((int32_t)batch, 0, 1);
  std::unique_ptr<llama_batch, void (*)(llama_batch *)> guard(&b, [](llama_batch *p) { llama_batch_free(*p); });
  for (int64_t start = 0; start < n_tokens; start += batch) {
    const int64_t n = std::min(batch, n_tokens - start);
    fill_batch(b, ids, start, n);
    int32_t rc = llama_decode(ctx.get(), b);
    if (rc != 0) throw Error("llama_decode returned " + std::to_string(rc) + " at token " + std::to_string(start));
    for (int64_t i = 0; i < n; i++) {
      const float *row = llama_get_logits_ith(ctx.get(), (int32_t)i);
      if (!row) throw Error("no logits for position " + std::to_string(start + i));
      std::copy(row, row + n_vocab, logits.begin() + (start + i) * n_vocab);
    }
  }
  write_file(out_path, logits.data(), logits.size() * sizeof(float));
  return 0;
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
  const ggml_type kv_type = kv_type_by_name(a.str_or("--kv-type", "f16"));
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
  llama_context_params cp = cpu_context_params(std::max<int64_t>((int64_t)input.size(), (int64_t)dec.size()), n_batch, n_batch, threads, kv_type);
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

int cmd_info(Args &a) {
  a.expect_positionals(0, "llama-ref info");
  a.reject_unused();
  load_backends();
  llama_backend_init();
  std::string j = "{\"libDir\":" + json_string(ggml_lib_dir()) + ",\"cpuVariant\":" + json_string(loaded_cpu_variant()) +
                  ",\"backends\":[";
  for (size_t i = 0; i < ggml_backend_reg_count(); i++) {
    ggml_backend_reg_t reg = ggml_backend_reg_get(i);
    j += (i ? "," : "") + std::string("{\"name\":") + json_string(ggml_backend_reg_name(reg)) + ",\"features\":{";
    auto get_features = (ggml_backend_get_features_t)ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features");
    if (get_features) {
      bool first = true;
      for (ggml_backend_feature *f = get_features(reg); f && f->name; f++) {
        j += (first ? "" : ",") + json_string(f->name) + ":" + json_string(f->value);
        first = false;
      }
    }
    j += "}}";
  }
  j += "],\"systemInfo\":" + json_string(llama_print_system_info()) + "}\n";
  out(j);
  return 0;
}

}  // namespace ref

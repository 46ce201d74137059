// quantize-model: llama-quantize itself (llama_model_quantize from libllama), as the oracle for
// Hearth's streamed quantizer. Same defaults as the llama-quantize tool, plus allow_requantize when
// asked (for sources that are already quantized).
#include <cstring>
#include <strings.h>

#include "common.hpp"
#include "llama.h"

namespace ref {

/** The llama_ftype for a mix name, as llama-quantize's command line spells them. */
static llama_ftype ftype_by_name(const std::string &name) {
  static const std::pair<const char *, llama_ftype> kTypes[] = {
      {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},     {"Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1},     {"Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},
      {"Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},     {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},     {"Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S},
      {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M}, {"Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S}, {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M},
      {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},     {"F16", LLAMA_FTYPE_MOSTLY_F16},       {"BF16", LLAMA_FTYPE_MOSTLY_BF16},
      {"F32", LLAMA_FTYPE_ALL_F32},
  };
  for (const auto &t : kTypes) {
    if (strcasecmp(t.first, name.c_str()) == 0) return t.second;
  }
  throw Error("unknown file type '" + name + "'");
}

/**
 * Importance weights as named float arrays: u32 count, then per entry u32 name length, the name,
 * u32 value count and the float32 values (all little-endian).
 */
struct Imatrix {
  std::vector<std::string> names;
  std::vector<std::vector<float>> values;
  std::vector<llama_model_imatrix_data> entries;
};

static void read_imatrix(const std::string &path, Imatrix &m) {
  std::vector<uint8_t> b = read_file(path);
  size_t at = 0;
  auto u32 = [&]() {
    if (at + 4 > b.size()) throw Error("--imatrix file is truncated");
    uint32_t v;
    std::memcpy(&v, b.data() + at, 4);
    at += 4;
    return v;
  };
  uint32_t n = u32();
  for (uint32_t i = 0; i < n; i++) {
    uint32_t len = u32();
    if (at + len > b.size()) throw Error("--imatrix file is truncated");
    m.names.emplace_back((const char *)b.data() + at, len);
    at += len;
    uint32_t count = u32();
    if (at + 4ull * count > b.size()) throw Error("--imatrix file is truncated");
    std::vector<float> v(count);
    if (count) std::memcpy(v.data(), b.data() + at, 4ull * count);
    at += 4ull * count;
    m.values.push_back(std::move(v));
  }
  if (at != b.size()) throw Error("--imatrix file has trailing bytes");
  for (size_t i = 0; i < m.names.size(); i++) m.entries.push_back({m.names[i].c_str(), m.values[i].data(), m.values[i].size()});
  m.entries.push_back({nullptr, nullptr, 0});
}

int cmd_quantize_model(Args &a) {
  a.expect_positionals(3, "llama-ref quantize-model IN.gguf OUT.gguf TYPE [--imatrix NAMED.bin] [--allow-requantize] [--threads N]");
  const std::string in = a.positional[0], out_path = a.positional[1];
  llama_ftype ftype = ftype_by_name(a.positional[2]);
  std::string imatrix_path = a.str_or("--imatrix", "");
  bool requant = a.flag("--allow-requantize");
  int64_t threads = a.int_or("--threads", 1);
  a.reject_unused();

  Imatrix im;
  if (!imatrix_path.empty()) read_imatrix(imatrix_path, im);

  load_backends();
  llama_backend_init();
  llama_model_quantize_params p = llama_model_quantize_default_params();
  p.ftype = ftype;
  p.nthread = (int32_t)threads;
  p.allow_requantize = requant;
  if (!imatrix_path.empty()) p.imatrix = im.entries.data();
  if (llama_model_quantize(in.c_str(), out_path.c_str(), &p) != 0) throw Error("llama_model_quantize failed");
  return 0;
}

}  // namespace ref

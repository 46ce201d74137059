// quantize / quantize-chunk / dequantize / types: ggml's own block formats, as the oracle for ours.
#include <cstring>
#include <strings.h>

#include "common.hpp"
#include "ggml.h"

namespace ref {

/** A ggml type by its name (case-insensitive: "q4_K", "Q4_K", "f16", "iq4_nl"). */
static ggml_type type_by_name(const std::string &name) {
  for (int t = 0; t < GGML_TYPE_COUNT; t++) {
    const char *n = ggml_type_name((ggml_type)t);
    // Removed types keep their slot with a zero block size.
    if (n && ggml_blck_size((ggml_type)t) > 0 && strcasecmp(n, name.c_str()) == 0) return (ggml_type)t;
  }
  throw Error("unknown ggml type '" + name + "' (see: llama-ref types)");
}

/** Types that ggml_quantize_chunk handles (its switch asserts on the others, e.g. Q8_K, I32). */
static bool chunk_supports(ggml_type t) {
  switch (t) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16:
      return true;
    case GGML_TYPE_Q8_1: case GGML_TYPE_Q8_K:
      return false;
    default:
      return ggml_is_quantized(t);
  }
}

struct Shape {
  int64_t n_per_row, nrows;
};

static Shape check_shape(ggml_type type, size_t n, Args &a) {
  int64_t k = a.int_required("--n-per-row");
  int64_t blck = ggml_blck_size(type);
  if (k <= 0) throw Error("--n-per-row must be positive");
  if (k % blck != 0) {
    throw Error("--n-per-row " + std::to_string(k) + " is not a multiple of the " + ggml_type_name(type) +
                " block size " + std::to_string(blck));
  }
  if (n % k != 0) throw Error("input has " + std::to_string(n) + " values, not a multiple of --n-per-row " + std::to_string(k));
  int64_t nrows = a.int_or("--nrows", (int64_t)n / k);
  if (nrows * k != (int64_t)n) {
    throw Error("input has " + std::to_string(n) + " values but --nrows * --n-per-row = " + std::to_string(nrows * k));
  }
  return {k, nrows};
}

int cmd_quantize(Args &a, bool chunk) {
  a.expect_positionals(1, chunk ? "llama-ref quantize-chunk TYPE --in IN.f32 --out OUT.bin --n-per-row K [--nrows R] [--imatrix W.f32]"
                                : "llama-ref quantize TYPE --in IN.f32 --out OUT.bin --n-per-row K [--nrows R]");
  ggml_type type = type_by_name(a.positional[0]);
  std::vector<float> src = read_f32_file(a.str("--in"));
  std::string out_path = a.str("--out");
  Shape s = check_shape(type, src.size(), a);
  std::vector<float> imatrix;
  if (chunk) {
    if (!chunk_supports(type)) throw Error(std::string("ggml_quantize_chunk does not handle ") + ggml_type_name(type));
    std::string im = a.str_or("--imatrix", "");
    if (!im.empty()) {
      imatrix = read_f32_file(im);
      if ((int64_t)imatrix.size() != s.n_per_row) {
        throw Error("--imatrix has " + std::to_string(imatrix.size()) + " values, expected n-per-row " + std::to_string(s.n_per_row));
      }
    } else if (ggml_quantize_requires_imatrix(type)) {
      throw Error(std::string(ggml_type_name(type)) + " requires an importance matrix (--imatrix)");
    }
  }
  a.reject_unused();

  const size_t row_size = ggml_row_size(type, s.n_per_row);
  std::vector<uint8_t> dst(row_size * s.nrows);
  if (chunk) {
    size_t n = ggml_quantize_chunk(type, src.data(), dst.data(), 0, s.nrows, s.n_per_row,
                                   imatrix.empty() ? nullptr : imatrix.data());
    if (n != dst.size()) throw Error("ggml_quantize_chunk wrote " + std::to_string(n) + " bytes, expected " + std::to_string(dst.size()));
  } else {
    const ggml_type_traits *tr = ggml_get_type_traits(type);
    if (!tr->from_float_ref) throw Error(std::string("ggml has no reference quantizer for ") + ggml_type_name(type) + " (try quantize-chunk)");
    for (int64_t r = 0; r < s.nrows; r++) {
      tr->from_float_ref(src.data() + r * s.n_per_row, dst.data() + r * row_size, s.n_per_row);
    }
  }
  write_file(out_path, dst.data(), dst.size());
  return 0;
}

int cmd_dequantize(Args &a) {
  a.expect_positionals(1, "llama-ref dequantize TYPE --in IN.bin --out OUT.f32 --n N");
  ggml_type type = type_by_name(a.positional[0]);
  std::vector<uint8_t> src = read_file(a.str("--in"));
  std::string out_path = a.str("--out");
  int64_t n = a.int_required("--n");
  a.reject_unused();
  if (n < 0 || n % ggml_blck_size(type) != 0) {
    throw Error("--n " + std::to_string(n) + " is not a multiple of the " + ggml_type_name(type) + " block size " +
                std::to_string(ggml_blck_size(type)));
  }
  size_t want = ggml_row_size(type, n);
  if (src.size() != want) {
    throw Error("input has " + std::to_string(src.size()) + " bytes; " + std::to_string(n) + " " + ggml_type_name(type) +
                " values take " + std::to_string(want));
  }
  const ggml_type_traits *tr = ggml_get_type_traits(type);
  std::vector<float> dst(n);
  if (type == GGML_TYPE_F32) {
    if (n) std::memcpy(dst.data(), src.data(), want);
  } else {
    if (!tr->to_float) throw Error(std::string("ggml has no dequantizer for ") + ggml_type_name(type));
    tr->to_float(src.data(), dst.data(), n);
  }
  write_file(out_path, dst.data(), dst.size() * sizeof(float));
  return 0;
}

int cmd_types(Args &a) {
  a.expect_positionals(0, "llama-ref types");
  a.reject_unused();
  std::string j = "[";
  bool first = true;
  for (int t = 0; t < GGML_TYPE_COUNT; t++) {
    ggml_type type = (ggml_type)t;
    const char *n = ggml_type_name(type);
    if (!n || ggml_blck_size(type) == 0) continue;
    const ggml_type_traits *tr = ggml_get_type_traits(type);
    j += first ? "" : ",";
    first = false;
    j += "\n{\"id\":" + std::to_string(t) + ",\"name\":" + json_string(n) +
         ",\"blockSize\":" + std::to_string(ggml_blck_size(type)) +
         ",\"typeSize\":" + std::to_string(ggml_type_size(type)) +
         ",\"isQuantized\":" + (ggml_is_quantized(type) ? "true" : "false") +
         ",\"hasRefQuantizer\":" + (tr->from_float_ref ? "true" : "false") +
         ",\"hasDequantizer\":" + (tr->to_float || type == GGML_TYPE_F32 ? "true" : "false") +
         ",\"chunkQuantizer\":" + (chunk_supports(type) ? "true" : "false") +
         ",\"requiresImatrix\":" + (ggml_quantize_requires_imatrix(type) ? "true" : "false") + "}";
  }
  out(j + "\n]\n");
  return 0;
}

}  // namespace ref

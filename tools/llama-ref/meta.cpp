// meta: a GGUF file's header as ggml's own gguf reader sees it, as JSON (the oracle for our reader).
#include <cstring>
#include <memory>

#include "common.hpp"
#include "ggml.h"
#include "gguf.h"

namespace ref {

static const int64_t kMaxSafeInt = 9007199254740991;  // 2^53 - 1: above this a JSON number loses digits

static std::string json_i64(int64_t v) {
  return (v > kMaxSafeInt || v < -kMaxSafeInt) ? "\"" + std::to_string(v) + "\"" : std::to_string(v);
}

static std::string json_u64(uint64_t v) {
  return v > (uint64_t)kMaxSafeInt ? "\"" + std::to_string(v) + "\"" : std::to_string(v);
}

static std::string json_cstr(const char *s) { return json_bytes_or_string(s, std::strlen(s)); }

/** One scalar of type t at p (array element or single value). */
static std::string scalar_json(gguf_type t, const void *p) {
  switch (t) {
    case GGUF_TYPE_UINT8: return std::to_string(*(const uint8_t *)p);
    case GGUF_TYPE_INT8: return std::to_string(*(const int8_t *)p);
    case GGUF_TYPE_UINT16: { uint16_t v; std::memcpy(&v, p, 2); return std::to_string(v); }
    case GGUF_TYPE_INT16: { int16_t v; std::memcpy(&v, p, 2); return std::to_string(v); }
    case GGUF_TYPE_UINT32: { uint32_t v; std::memcpy(&v, p, 4); return std::to_string(v); }
    case GGUF_TYPE_INT32: { int32_t v; std::memcpy(&v, p, 4); return std::to_string(v); }
    case GGUF_TYPE_FLOAT32: { float v; std::memcpy(&v, p, 4); return json_double(v, 9); }
    case GGUF_TYPE_UINT64: { uint64_t v; std::memcpy(&v, p, 8); return json_u64(v); }
    case GGUF_TYPE_INT64: { int64_t v; std::memcpy(&v, p, 8); return json_i64(v); }
    case GGUF_TYPE_FLOAT64: { double v; std::memcpy(&v, p, 8); return json_double(v, 17); }
    case GGUF_TYPE_BOOL: return *(const int8_t *)p ? "true" : "false";
    default: throw Error("unexpected GGUF scalar type " + std::to_string((int)t));
  }
}

static size_t scalar_size(gguf_type t) {
  switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: throw Error("unexpected GGUF scalar type " + std::to_string((int)t));
  }
}

static const char *type_name(gguf_type t) {
  const char *n = gguf_type_name(t);
  return n ? n : "unknown";
}

int cmd_meta(Args &a) {
  a.expect_positionals(1, "llama-ref meta MODEL.gguf");
  a.reject_unused();
  const std::string path = a.positional[0];
  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  std::unique_ptr<gguf_context, void (*)(gguf_context *)> g(gguf_init_from_file(path.c_str(), params), gguf_free);
  if (!g) throw Error("gguf_init_from_file rejected " + path);
  gguf_context *ctx = g.get();

  std::string j = "{\"version\":" + std::to_string(gguf_get_version(ctx)) +
                  ",\"alignment\":" + std::to_string(gguf_get_alignment(ctx)) +
                  ",\"dataOffset\":" + std::to_string(gguf_get_data_offset(ctx)) + ",\n\"kv\":[";
  const int64_t n_kv = gguf_get_n_kv(ctx);
  for (int64_t i = 0; i < n_kv; i++) {
    gguf_type t = gguf_get_kv_type(ctx, i);
    j += i ? ",\n" : "\n";
    j += "{\"key\":" + json_cstr(gguf_get_key(ctx, i)) + ",\"type\":\"" + type_name(t) + "\"";
    if (t == GGUF_TYPE_ARRAY) {
      gguf_type at = gguf_get_arr_type(ctx, i);
      size_t n = gguf_get_arr_n(ctx, i);
      j += ",\"arrayType\":\"" + std::string(type_name(at)) + "\",\"value\":[";
      if (at == GGUF_TYPE_STRING) {
        for (size_t k = 0; k < n; k++) j += (k ? "," : "") + json_cstr(gguf_get_arr_str(ctx, i, k));
      } else if (at == GGUF_TYPE_ARRAY) {
        throw Error("nested GGUF arrays are not supported (key " + std::string(gguf_get_key(ctx, i)) + ")");
      } else {
        const auto *p = static_cast<const uint8_t *>(gguf_get_arr_data(ctx, i));
        size_t sz = scalar_size(at);
        for (size_t k = 0; k < n; k++) j += (k ? "," : "") + scalar_json(at, p + k * sz);
      }
      j += "]}";
    } else if (t == GGUF_TYPE_STRING) {
      j += ",\"value\":" + json_cstr(gguf_get_val_str(ctx, i)) + "}";
    } else {
      j += ",\"value\":" + scalar_json(t, gguf_get_val_data(ctx, i)) + "}";
    }
  }
  j += "],\n\"tensors\":[";
  const int64_t n_t = gguf_get_n_tensors(ctx);
  for (int64_t i = 0; i < n_t; i++) {
    ggml_type tt = gguf_get_tensor_type(ctx, i);
    const int64_t *ne = gguf_get_tensor_ne(ctx, i);
    int n_dims = GGML_MAX_DIMS;  // as ggml_n_dims: trailing dimensions of size 1 are not counted
    while (n_dims > 1 && ne[n_dims - 1] == 1) n_dims--;
    j += i ? ",\n" : "\n";
    j += "{\"name\":" + json_cstr(gguf_get_tensor_name(ctx, i)) + ",\"type\":" + json_string(ggml_type_name(tt)) +
         ",\"typeId\":" + std::to_string((int)tt) + ",\"ne\":[";
    for (int d = 0; d < GGML_MAX_DIMS; d++) j += (d ? "," : "") + json_i64(ne[d]);
    j += "],\"nDims\":" + std::to_string(n_dims) + ",\"offset\":" + json_u64(gguf_get_tensor_offset(ctx, i)) +
         ",\"size\":" + json_u64(gguf_get_tensor_size(ctx, i)) + "}";
  }
  out(j + "]}\n");
  return 0;
}

}  // namespace ref

#include "common.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <dlfcn.h>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

namespace ref {

// ---------------------------------------------------------------- arguments

Args parse_args(int argc, char **argv, int first, const std::vector<std::string> &switches) {
  Args a;
  for (int i = first; i < argc; i++) {
    std::string s = argv[i];
    if (s.size() > 2 && s.compare(0, 2, "--") == 0) {
      bool is_switch = false;
      for (const auto &w : switches) is_switch = is_switch || w == s;
      if (a.options.count(s)) throw Error("option " + s + " given twice");
      if (is_switch) {
        a.options[s] = "";
      } else {
        if (i + 1 >= argc) throw Error("option " + s + " needs a value");
        a.options[s] = argv[++i];
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

void Args::expect_positionals(size_t n, const char *usage) const {
  if (positional.size() != n) throw Error(std::string("usage: ") + usage);
}

bool Args::flag(const std::string &name) {
  used[name] = true;
  return options.count(name) > 0;
}

std::string Args::str(const std::string &name) {
  used[name] = true;
  auto it = options.find(name);
  if (it == options.end()) throw Error("missing required option " + name);
  return it->second;
}

std::string Args::str_or(const std::string &name, const std::string &dflt) {
  used[name] = true;
  auto it = options.find(name);
  return it == options.end() ? dflt : it->second;
}

static int64_t parse_int(const std::string &s, const std::string &what) {
  errno = 0;
  char *end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || errno != 0 || *end != '\0') throw Error("bad integer for " + what + ": '" + s + "'");
  return v;
}

int64_t Args::int_or(const std::string &name, int64_t dflt) {
  used[name] = true;
  auto it = options.find(name);
  return it == options.end() ? dflt : parse_int(it->second, name);
}

int64_t Args::int_required(const std::string &name) { return parse_int(str(name), name); }

void Args::reject_unused() const {
  for (const auto &kv : options) {
    if (!used.count(kv.first)) throw Error("unknown option " + kv.first + " for this command");
  }
}

// ---------------------------------------------------------------- files

std::vector<uint8_t> read_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + path + ": " + std::strerror(errno));
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw Error("cannot read " + path);
  return data;
}

void write_file(const std::string &path, const void *data, size_t size) {
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error("cannot create " + path + ": " + std::strerror(errno));
  size_t w = size ? std::fwrite(data, 1, size, f) : 0;
  bool ok = w == size && std::fclose(f) == 0;
  if (!ok) throw Error("cannot write " + path);
}

std::vector<float> read_f32_file(const std::string &path) {
  auto bytes = read_file(path);
  if (bytes.size() % 4 != 0) throw Error(path + ": size " + std::to_string(bytes.size()) + " is not a multiple of 4");
  std::vector<float> v(bytes.size() / 4);
  if (!bytes.empty()) std::memcpy(v.data(), bytes.data(), bytes.size());  // x86-64: little-endian
  return v;
}

std::vector<int64_t> parse_int_list(const std::vector<uint8_t> &text, const std::string &what) {
  std::string s(text.begin(), text.end());
  std::vector<int64_t> out;
  size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && (std::isspace((unsigned char)s[i]) || s[i] == ',' || s[i] == '[' || s[i] == ']')) i++;
  };
  skip();
  while (i < s.size()) {
    size_t j = i;
    if (s[j] == '-') j++;
    while (j < s.size() && std::isdigit((unsigned char)s[j])) j++;
    if (j == i || (s[i] == '-' && j == i + 1)) throw Error(what + ": unexpected character at byte " + std::to_string(i));
    out.push_back(parse_int(s.substr(i, j - i), what));
    i = j;
    skip();
  }
  return out;
}

std::vector<std::string> parse_records(const std::vector<uint8_t> &data, const std::string &what) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < data.size()) {
    if (data.size() - i < 4) throw Error(what + ": truncated length prefix at byte " + std::to_string(i));
    uint32_t n = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | ((uint32_t)data[i + 3] << 24);
    i += 4;
    if (n > data.size() - i) throw Error(what + ": record at byte " + std::to_string(i - 4) + " exceeds the file");
    out.emplace_back(reinterpret_cast<const char *>(data.data() + i), n);
    i += n;
  }
  return out;
}

// ---------------------------------------------------------------- JSON

std::string base64(const uint8_t *d, size_t n) {
  static const char *tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string r;
  r.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = d[i] << 16;
    if (i + 1 < n) v |= d[i + 1] << 8;
    if (i + 2 < n) v |= d[i + 2];
    r += tbl[(v >> 18) & 63];
    r += tbl[(v >> 12) & 63];
    r += i + 1 < n ? tbl[(v >> 6) & 63] : '=';
    r += i + 2 < n ? tbl[v & 63] : '=';
  }
  return r;
}

bool valid_utf8(const char *s, size_t n) {
  const auto *p = reinterpret_cast<const unsigned char *>(s);
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) { i++; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += len;
  }
  return true;
}

std::string json_string(const char *s, size_t n) {
  std::string r = "\"";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    switch (c) {
      case '"': r += "\\\""; break;
      case '\\': r += "\\\\"; break;
      case '\n': r += "\\n"; break;
      case '\r': r += "\\r"; break;
      case '\t': r += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          r += buf;
        } else {
          r += (char)c;
        }
    }
  }
  return r + "\"";
}

std::string json_bytes_or_string(const char *s, size_t n) {
  if (valid_utf8(s, n)) return json_string(s, n);
  return "{\"bytesBase64\":\"" + base64(reinterpret_cast<const uint8_t *>(s), n) + "\"}";
}

std::string json_double(double v, int digits) {
  if (std::isnan(v)) return "\"NaN\"";
  if (std::isinf(v)) return v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

void out(const std::string &s) { out_bytes(s.data(), s.size()); }

void out_bytes(const void *data, size_t n) {
  if (n && std::fwrite(data, 1, n, stdout) != n) throw Error("cannot write to stdout");
}

// ---------------------------------------------------------------- logging

static std::mutex g_log_mutex;
static std::deque<std::string> g_log_lines;
static bool g_verbose = false;

static bool g_keep_cont = false;

static void log_callback(ggml_log_level level, const char *text, void *) {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  if (g_verbose) {
    std::fputs(text, stderr);
    return;
  }
  // Keep warnings and errors (and their continuation lines): the reasons a load or decode failed.
  bool keep = level == GGML_LOG_LEVEL_CONT ? g_keep_cont : level >= GGML_LOG_LEVEL_WARN;
  if (level != GGML_LOG_LEVEL_CONT) g_keep_cont = keep;
  if (!keep) return;
  g_log_lines.emplace_back(text);
  if (g_log_lines.size() > 200) g_log_lines.pop_front();
}

void install_log_capture(bool verbose) {
  g_verbose = verbose;
  // llama.cpp keeps its own logger beside ggml's; llama_log_set sets both.
  llama_log_set(log_callback, nullptr);
}

void replay_captured_log() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  if (g_log_lines.empty()) return;
  std::fputs("--- llama.cpp log (last lines) ---\n", stderr);
  for (const auto &l : g_log_lines) std::fputs(l.c_str(), stderr);
  std::fputs("--- end of log ---\n", stderr);
}

// ---------------------------------------------------------------- backends

std::string ggml_lib_dir() {
  Dl_info info{};
  // Any symbol of libggml (the backend registry) locates the directory of the prebuilt libraries.
  if (!dladdr(reinterpret_cast<void *>(&ggml_backend_load_all_from_path), &info) || !info.dli_fname) {
    throw Error("cannot locate the ggml shared library (dladdr failed)");
  }
  return std::filesystem::path(info.dli_fname).parent_path().string();
}

std::string g_cpu_variant;

void load_backends() {
  const std::string &cpu_variant = g_cpu_variant;
  if (ggml_backend_reg_count() > 0) return;
  std::string dir = ggml_lib_dir();
  if (cpu_variant.empty()) {
    // Scores every libggml-cpu-*.so in the directory against this CPU and loads the best one,
    // as llama.cpp's own tools do.
    ggml_backend_load_all_from_path(dir.c_str());
  } else {
    std::string path = dir + "/libggml-cpu-" + cpu_variant + ".so";
    if (!std::filesystem::exists(path)) throw Error("no CPU backend variant " + path);
    if (!ggml_backend_load(path.c_str())) throw Error("cannot load " + path + " (not supported by this CPU?)");
  }
  if (!ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) throw Error("no CPU backend could be loaded from " + dir);
}

std::string loaded_cpu_variant() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto pos = line.find("libggml-cpu-");
    if (pos != std::string::npos) {
      auto slash = line.rfind('/');
      return line.substr(slash == std::string::npos ? pos : slash + 1);
    }
  }
  return "";
}

}  // namespace ref

// Shared helpers for llama-ref: argument parsing, file I/O, JSON output, logging capture.
// llama-ref is a test oracle: every failure must be loud (non-zero exit, message on stderr),
// never a silently wrong answer.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ref {

/** Any user-facing failure: main() prints it on stderr and exits with status 1. */
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/** Parsed command line: positionals and --flags (a flag followed by a non-flag takes it as value). */
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;  // "--name" -> value ("" for switches)
  std::map<std::string, bool> used;

  /** Throws unless exactly `n` positionals were given. */
  void expect_positionals(size_t n, const char *usage) const;
  bool flag(const std::string &name);
  std::string str(const std::string &name);  // required
  std::string str_or(const std::string &name, const std::string &dflt);
  int64_t int_or(const std::string &name, int64_t dflt);
  int64_t int_required(const std::string &name);
  /** Throws if an option was given that no command read (catches typos such as --add-specail). */
  void reject_unused() const;
};

/**
 * Parses argv[first..] into Args. `switches` names the flags that never take a value, so that
 * `--add-special FILE` is not misread.
 */
Args parse_args(int argc, char **argv, int first, const std::vector<std::string> &switches);

std::vector<uint8_t> read_file(const std::string &path);
void write_file(const std::string &path, const void *data, size_t size);
std::vector<float> read_f32_file(const std::string &path);

/** Parses a JSON array of integers (or whitespace/comma separated integers). */
std::vector<int64_t> parse_int_list(const std::vector<uint8_t> &text, const std::string &what);

/** Length-prefixed records: repeated [u32 little-endian byte length][bytes]. */
std::vector<std::string> parse_records(const std::vector<uint8_t> &data, const std::string &what);

std::string base64(const uint8_t *data, size_t n);
bool valid_utf8(const char *s, size_t n);
/** A JSON string literal for valid UTF-8 input (caller checks validity). */
std::string json_string(const char *s, size_t n);
inline std::string json_string(const std::string &s) { return json_string(s.data(), s.size()); }
/** A JSON string if valid UTF-8, otherwise {"bytesBase64": "..."}. */
std::string json_bytes_or_string(const char *s, size_t n);
std::string json_double(double v, int digits);  // NaN/Infinity become the strings "NaN", "Infinity", "-Infinity"

/** Writes all of `s` to stdout or throws. */
void out(const std::string &s);
void out_bytes(const void *data, size_t n);

/**
 * Captures llama.cpp / ggml log output. Quiet by default: warnings and errors are kept (the last
 * ~200 lines) and replayed on stderr only if the command fails, so an error from the library is not lost.
 */
void install_log_capture(bool verbose);
void replay_captured_log();

/**
 * Loads ggml backends from the directory holding the prebuilt ggml libraries: the best-scoring
 * libggml-cpu-*.so for this CPU, or the variant named by the global --cpu-variant option.
 */
void load_backends();
/** Set from the global --cpu-variant option (e.g. "haswell", "x64") before any command runs. */
extern std::string g_cpu_variant;
/** Directory of the loaded libggml shared library. */
std::string ggml_lib_dir();
/** File name of the libggml-cpu-*.so mapped into this process, or "" if none. */
std::string loaded_cpu_variant();

// Commands. Each returns the process exit status (0) or throws ref::Error.
int cmd_tokenize(Args &a);
int cmd_detokenize(Args &a);
int cmd_piece(Args &a);
int cmd_vocab_info(Args &a);
int cmd_logits(Args &a);
int cmd_encdec(Args &a);
int cmd_quantize(Args &a, bool chunk);
int cmd_dequantize(Args &a);
int cmd_types(Args &a);
int cmd_meta(Args &a);
int cmd_info(Args &a);
int cmd_tiny_model(Args &a);
int cmd_quantize_model(Args &a);

}  // namespace ref

// tokenize / detokenize / piece / vocab-info: llama.cpp's tokenizer, loaded vocab-only.
#include <memory>

#include "common.hpp"
#include "llama.h"

namespace ref {

struct ModelDeleter {
  void operator()(llama_model *m) const { llama_model_free(m); }
};
using ModelPtr = std::unique_ptr<llama_model, ModelDeleter>;

static ModelPtr load_vocab(const std::string &path) {
  load_backends();
  llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  mp.n_gpu_layers = 0;
  ModelPtr m(llama_model_load_from_file(path.c_str(), mp));
  if (!m) throw Error("llama.cpp could not load the vocabulary of " + path);
  return m;
}

static std::vector<llama_token> tokenize(const llama_vocab *vocab, const std::string &text, bool add_special, bool parse_special) {
  if (text.size() > INT32_MAX) throw Error("text too long");
  std::vector<llama_token> toks(text.size() + 16);
  int32_t n = llama_tokenize(vocab, text.data(), (int32_t)text.size(), toks.data(), (int32_t)toks.size(), add_special, parse_special);
  if (n == INT32_MIN) throw Error("llama_tokenize: token count overflows int32");
  if (n < 0) {
    toks.resize(-n);
    n = llama_tokenize(vocab, text.data(), (int32_t)text.size(), toks.data(), (int32_t)toks.size(), add_special, parse_special);
    if (n < 0) throw Error("llama_tokenize failed twice");
  }
  toks.resize(n);
  return toks;
}

static std::string ids_json(const std::vector<llama_token> &t) {
  std::string j = "[";
  for (size_t i = 0; i < t.size(); i++) j += (i ? "," : "") + std::to_string(t[i]);
  return j + "]";
}

int cmd_tokenize(Args &a) {
  a.expect_positionals(1, "llama-ref tokenize MODEL.gguf (--text-file F | --texts-file RECORDS) [--add-special] [--parse-special]");
  bool add_special = a.flag("--add-special");
  bool parse_special = a.flag("--parse-special");
  std::string text_file = a.str_or("--text-file", "");
  std::string texts_file = a.str_or("--texts-file", "");
  if (text_file.empty() == texts_file.empty()) throw Error("give exactly one of --text-file and --texts-file");
  a.reject_unused();
  ModelPtr m = load_vocab(a.positional[0]);
  const llama_vocab *vocab = llama_model_get_vocab(m.get());
  if (!text_file.empty()) {
    auto bytes = read_file(text_file);
    out(ids_json(tokenize(vocab, std::string(bytes.begin(), bytes.end()), add_special, parse_special)) + "\n");
  } else {
    // Many texts in one process: loading a 150k-token vocabulary costs more than tokenizing a line.
    auto texts = parse_records(read_file(texts_file), texts_file);
    std::string j = "[";
    for (size_t i = 0; i < texts.size(); i++) j += (i ? ",\n" : "") + ids_json(tokenize(vocab, texts[i], add_special, parse_special));
    out(j + "]\n");
  }
  return 0;
}

static std::vector<llama_token> read_ids(const std::string &path, const llama_vocab *vocab) {
  auto ids = parse_int_list(read_file(path), path);
  int32_t n_vocab = llama_vocab_n_tokens(vocab);
  std::vector<llama_token> t;
  t.reserve(ids.size());
  for (int64_t id : ids) {
    // llama.cpp indexes its token table without a range check in some paths.
    if (id < 0 || id >= n_vocab) throw Error("token id " + std::to_string(id) + " out of range [0, " + std::to_string(n_vocab) + ")");
    t.push_back((llama_token)id);
  }
  return t;
}

int cmd_detokenize(Args &a) {
  a.expect_positionals(1, "llama-ref detokenize MODEL.gguf --ids-file F [--remove-special] [--unparse-special]");
  bool remove_special = a.flag("--remove-special");
  bool unparse_special = a.flag("--unparse-special");
  std::string ids_file = a.str("--ids-file");
  a.reject_unused();
  ModelPtr m = load_vocab(a.positional[0]);
  const llama_vocab *vocab = llama_model_get_vocab(m.get());
  auto ids = read_ids(ids_file, vocab);
  std::vector<char> buf(ids.size() * 16 + 64);
  int32_t n = llama_detokenize(vocab, ids.data(), (int32_t)ids.size(), buf.data(), (int32_t)buf.size(), remove_special, unparse_special);
  if (n < 0) {
    buf.resize(-n);
    n = llama_detokenize(vocab, ids.data(), (int32_t)ids.size(), buf.data(), (int32_t)buf.size(), remove_special, unparse_special);
    if (n < 0) throw Error("llama_detokenize failed twice");
  }
  out_bytes(buf.data(), n);
  return 0;
}

int cmd_piece(Args &a) {
  a.expect_positionals(1, "llama-ref piece MODEL.gguf --ids-file F [--special] [--lstrip N]");
  bool special = a.flag("--special");
  int64_t lstrip = a.int_or("--lstrip", 0);
  std::string ids_file = a.str("--ids-file");
  a.reject_unused();
  ModelPtr m = load_vocab(a.positional[0]);
  const llama_vocab *vocab = llama_model_get_vocab(m.get());
  auto ids = read_ids(ids_file, vocab);
  std::string j = "[";
  std::vector<char> buf(256);
  for (size_t i = 0; i < ids.size(); i++) {
    int32_t n = llama_token_to_piece(vocab, ids[i], buf.data(), (int32_t)buf.size(), (int32_t)lstrip, special);
    if (n < 0) {
      buf.resize(-n);
      n = llama_token_to_piece(vocab, ids[i], buf.data(), (int32_t)buf.size(), (int32_t)lstrip, special);
      if (n < 0) throw Error("llama_token_to_piece failed twice");
    }
    j += (i ? "," : "") + std::string("\"") + base64(reinterpret_cast<const uint8_t *>(buf.data()), n) + "\"";
  }
  out(j + "]\n");
  return 0;
}

int cmd_vocab_info(Args &a) {
  a.expect_positionals(1, "llama-ref vocab-info MODEL.gguf");
  a.reject_unused();
  ModelPtr m = load_vocab(a.positional[0]);
  const llama_vocab *v = llama_model_get_vocab(m.get());
  auto tok = [](llama_token t) { return std::to_string(t); };
  std::string j = "{\"nTokens\":" + std::to_string(llama_vocab_n_tokens(v)) +
                  ",\"type\":" + std::to_string((int)llama_vocab_type(v)) +
                  ",\"bos\":" + tok(llama_vocab_bos(v)) + ",\"eos\":" + tok(llama_vocab_eos(v)) +
                  ",\"eot\":" + tok(llama_vocab_eot(v)) + ",\"sep\":" + tok(llama_vocab_sep(v)) +
                  ",\"nl\":" + tok(llama_vocab_nl(v)) + ",\"pad\":" + tok(llama_vocab_pad(v)) +
                  ",\"addBos\":" + (llama_vocab_get_add_bos(v) ? "true" : "false") +
                  ",\"addEos\":" + (llama_vocab_get_add_eos(v) ? "true" : "false") + ",\"eog\":[";
  bool first = true;
  for (int32_t t = 0; t < llama_vocab_n_tokens(v); t++) {
    if (llama_vocab_is_eog(v, t)) {
      j += (first ? "" : ",") + tok(t);
      first = false;
    }
  }
  out(j + "]}\n");
  return 0;
}

}  // namespace ref

// llama-ref: llama.cpp as a command-line oracle for Hearth's tests.
//
// Linked against the prebuilt llama.cpp/ggml shared libraries that node-llama-cpp ships, compiled
// against the headers of the same llama.cpp source (scripts/build-llama-ref.sh). Every command
// prints only its result on stdout; llama.cpp's log is kept quiet unless --verbose, and is replayed
// on stderr when a command fails. Exit status: 0 ok, 1 error, 2 usage.
#include <cstdio>
#include <cstring>
#include <exception>

#include "common.hpp"
#include "llama.h"

static const char *kUsage =
    "usage: llama-ref COMMAND ... [--verbose] [--cpu-variant NAME]\n"
    "  tokenize MODEL.gguf (--text-file F | --texts-file RECORDS) [--add-special] [--parse-special]\n"
    "      -> JSON array of token ids (with --texts-file: u32-LE length-prefixed texts -> array of arrays)\n"
    "  detokenize MODEL.gguf --ids-file IDS.json [--remove-special] [--unparse-special]  -> raw bytes\n"
    "  piece MODEL.gguf --ids-file IDS.json [--special] [--lstrip N]  -> JSON array of base64 pieces\n"
    "  vocab-info MODEL.gguf  -> JSON: special tokens, add_bos/add_eos, end-of-generation ids\n"
    "  logits MODEL.gguf --tokens-file IDS.json --out OUT.f32 [--n-ctx N] [--threads T] [--batch N]\n"
    "         [--ubatch N] [--kv-type f16|f32|...] [--no-repack] [--lora FILE[:SCALE][,FILE[:SCALE]...]]\n"
    "      -> float32 [n_tokens][n_vocab] logits of every position, CPU only, no flash attention\n"
    "  encdec MODEL.gguf --input-file IDS.json --decoder-file IDS.json --out OUT.f32 [--threads T]\n"
    "         [--decoder-batch N] [--kv-type f16|f32]  -> llama_encode(input), then llama_decode of the decoder\n"
    "      tokens (N at a time): float32 [n_decoder][n_vocab] logits; stdout JSON {nVocab, decoderStart}\n"
    "  quantize TYPE --in IN.f32 --out OUT.bin --n-per-row K [--nrows R]      (type traits from_float_ref)\n"
    "  quantize-chunk TYPE --in IN.f32 --out OUT.bin --n-per-row K [--nrows R] [--imatrix W.f32]\n"
    "      (ggml_quantize_chunk, the path llama-quantize uses)\n"
    "  dequantize TYPE --in IN.bin --out OUT.f32 --n N                        (type traits to_float)\n"
    "  types  -> JSON list of ggml types with block geometry\n"
    "  meta MODEL.gguf  -> JSON: version, alignment, data offset, key/values, tensor infos (gguf C API)\n"
    "  info  -> JSON: CPU backend variant loaded, its features, llama_print_system_info\n"
    "  tiny-model --vocab VOCAB.gguf --out OUT.gguf [--layers 2] [--dim 64] [--heads 4] [--kv-heads 2]\n"
    "         [--ff 128] [--ctx 256] [--type f32] [--seed 1]  -> a random-weight llama model\n"
    "  quantize-model IN.gguf OUT.gguf TYPE [--imatrix NAMED.bin] [--allow-requantize] [--threads N]\n"
    "      -> llama_model_quantize (llama-quantize's defaults); NAMED.bin: u32 n, then n x (u32 len, name, u32 k, k f32)\n";

int main(int argc, char **argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    ref::Args a = ref::parse_args(argc, argv, 2, {"--verbose", "--add-special", "--parse-special", "--remove-special",
                                                  "--unparse-special", "--special", "--no-repack", "--allow-requantize"});
    ref::install_log_capture(a.flag("--verbose"));
    ref::g_cpu_variant = a.str_or("--cpu-variant", "");
    if (cmd == "tokenize") return ref::cmd_tokenize(a);
    if (cmd == "detokenize") return ref::cmd_detokenize(a);
    if (cmd == "piece") return ref::cmd_piece(a);
    if (cmd == "vocab-info") return ref::cmd_vocab_info(a);
    if (cmd == "logits") return ref::cmd_logits(a);
    if (cmd == "encdec") return ref::cmd_encdec(a);
    if (cmd == "quantize") return ref::cmd_quantize(a, false);
    if (cmd == "quantize-chunk") return ref::cmd_quantize(a, true);
    if (cmd == "dequantize") return ref::cmd_dequantize(a);
    if (cmd == "types") return ref::cmd_types(a);
    if (cmd == "meta") return ref::cmd_meta(a);
    if (cmd == "info") return ref::cmd_info(a);
    if (cmd == "tiny-model") return ref::cmd_tiny_model(a);
    if (cmd == "quantize-model") return ref::cmd_quantize_model(a);
    std::fprintf(stderr, "llama-ref: unknown command '%s'\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const std::exception &e) {
    std::fflush(stdout);
    ref::replay_captured_log();
    std::fprintf(stderr, "llama-ref %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}

// KV cache storage type slot: f16, half the memory and bandwidth. Only on devices with the
// `shader-f16` feature; included first in its kernel because `enable` must precede declarations.
enable f16;
alias kv_t = f16;

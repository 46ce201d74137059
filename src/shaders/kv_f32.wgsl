// KV cache storage type slot: f32 (every device).
alias kv_t = f32;

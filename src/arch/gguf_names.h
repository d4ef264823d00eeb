// gguf_names.h: the one table between Hugging Face tensor names (Llama family, GPT-2) and the
// tensor names llama.cpp uses in GGUF files (token_embd, blk.N.attn_q, output_norm, output...).
// Used by the GGUF loading path (model.c) and the writers (apply, tensor-type files).
#ifndef MXP_GGUF_NAMES_H
#define MXP_GGUF_NAMES_H

#include <stddef.h>

// Which rotary projection a tensor is: llama.cpp stores q and k rows permuted (see model.c).
typedef enum mxp_gguf_rope_rows { MXP_GGUF_ROWS_PLAIN, MXP_GGUF_ROWS_Q, MXP_GGUF_ROWS_K } mxp_gguf_rope_rows;

// Hugging Face tensor name ("model.layers.3.self_attn.q_proj.weight") -> GGUF tensor name
// ("blk.3.attn_q.weight"). Returns 1 and writes out (truncated to cap), or 0 when the name has
// no GGUF twin. *rows tells whether the GGUF rows are rotary-permuted (may be NULL).
int mxp_gguf_name_from_hf(const char *hf, char *out, size_t cap, mxp_gguf_rope_rows *rows);

#endif

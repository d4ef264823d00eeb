// export.h: writing a loaded model (its graph, with a format in every linear slot) as a GGUF
// v3 file that llama.cpp loads and computes as mixprec does. Internal to src/export and
// src/method/apply.c (mxp_apply: load, apply the plan to the slots, mxp_export_gguf).
//
// Files, one concern each:
//   gguf_export.c  the driver: checks, general.* keys, architecture and tokenizer metadata,
//                  tensors laid out in one image, filled, written atomically. Everything that
//                  can be refused is refused before a byte reaches the disk.
//   arch_llama.c   llama.cpp's "llama" (Llama 2/3, Mistral; q/k rows permuted, llama3 rope
//                  scaling as a rope_freqs tensor) and "qwen2" (q/k/v biases, rows as is).
//   arch_gpt2.c    llama.cpp's "gpt2" (position embeddings, LayerNorm weights and biases,
//                  fused attn_qkv, GELU FFN).
//   tok_export.c   tokenizer metadata: which writer for which source, the token list shared
//                  by both kinds, and a GGUF input's tokenizer carried over whole.
//   tok_bpe.c      byte-level BPE (tokenizer.ggml.model "gpt2") from a tokenizer.json.
//   tok_spm.c      SentencePiece-style BPE (tokenizer.ggml.model "llama") from a tokenizer.json.
// The spec is llama.cpp itself: convert_hf_to_gguf.py (what the converter writes) and
// src/llama-arch.cpp, src/llama-model.cpp, src/llama-vocab.cpp (what the loader accepts).
#ifndef MXP_EXPORT_H
#define MXP_EXPORT_H

#include "arch/model.h"
#include "io/gguf_write.h"
#include "quant/format.h"

struct mxp_apply_report;

// Where a GGUF tensor's values come from.
typedef enum mxp_export_src {
    MXP_EXPORT_PARAM,       // graph parameter `param` as mixprec computes with it: (O, I) or (n)
    MXP_EXPORT_PARAM_ROPE,  // the same with rows (or bias entries) in llama.cpp's rotary order:
                            // within each of `heads` heads, row 2i + j holds row j*hd/2 + i
    MXP_EXPORT_VALUES,      // `values` (a generated tensor: rope_freqs)
} mxp_export_src;

typedef struct mxp_export_tensor {
    char name[96];          // llama.cpp's tensor name
    mxp_export_src src;
    int param;              // PARAM, PARAM_ROPE
    int heads;              // PARAM_ROPE
    const float *values;    // VALUES: (shape[0]), owned by the plan
    mxp_format_id fmt;      // 2-D: the format it is stored in; 1-D: f32
    int ndim;
    int64_t shape[2];       // row-major: (O, I) or (n)
    int linear;             // the weight of a plan op (counted per format in the report)
    int slot;               // writer index (set by the driver)
} mxp_export_tensor;

typedef struct mxp_export_plan {
    mxp_export_tensor *t;   // (n) in file order, owned
    int n, cap;
    float *values;          // generated tensor data, owned
} mxp_export_plan;

void mxp_export_plan_free(mxp_export_plan *p);
// Append a tensor; returns it (zeroed but for name, ndim, shape, fmt f32), or NULL on NOMEM.
mxp_export_tensor *mxp_export_plan_add(mxp_export_plan *p, const char *name, int ndim, int64_t d0, int64_t d1);
// Append parameter `param` (its shape) under `name`, stored in `fmt`.
mxp_status mxp_export_plan_param(mxp_export_plan *p, const mxp_model *m, int param, const char *name,
                                 mxp_format_id fmt, mxp_err *err);

// Per architecture: refuse what llama.cpp's architecture would compute differently (naming
// the feature, key or tensor), add general.architecture and the hyper-parameter keys to w,
// and list the tensors in p.
mxp_status mxp_export_arch_llama(const mxp_model *m, mxp_gguf_writer *w, mxp_export_plan *p, mxp_err *err);
mxp_status mxp_export_arch_gpt2(const mxp_model *m, mxp_gguf_writer *w, mxp_export_plan *p, mxp_err *err);
// The format of weight `param`: the slot of the plan op that reads it (mxp_graph_is_op), f32 if none.
mxp_format_id mxp_export_param_format(const mxp_model *m, int param);
// The graph parameter named `hf`; MXP_ERR_FORMAT naming it when absent.
mxp_status mxp_export_find_param(const mxp_model *m, const char *hf, int *param, mxp_err *err);

// Tokenizer metadata (tokenizer.ggml.*) for the model: carried over from a GGUF input, or
// written from its tokenizer.json. `desc` (cap bytes) gets a one-line description.
// MXP_ERR_UNSUPPORTED when the model has none or one llama.cpp would tokenize differently.
mxp_status mxp_export_tokenizer(mxp_model *m, mxp_gguf_writer *w, char *desc, size_t cap, mxp_err *err);

// Shared by the tokenizer writers: tokenizer.ggml.tokens and .token_type for `vocab` ids (ids
// the tokenizer lacks become "[PADn]", type unused, as the converter pads), .scores when
// scores is non-NULL ((vocab) values), and the special ids / add_bos / add_eos.
mxp_status mxp_export_token_list(const mxp_tokenizer *t, int vocab, const float *scores, mxp_gguf_writer *w,
                                 mxp_err *err);
void mxp_export_special_ids(const mxp_tokenizer *t, mxp_gguf_writer *w);
mxp_status mxp_export_tok_bpe(const mxp_tokenizer *t, int vocab, const char *label, mxp_gguf_writer *w,
                              char *desc, size_t cap, mxp_err *err);
mxp_status mxp_export_tok_spm(const mxp_tokenizer *t, int vocab, const char *label, mxp_gguf_writer *w,
                              char *desc, size_t cap, mxp_err *err);

// The whole export: m's graph slots hold the formats. Writes out_path atomically; fills rep.
mxp_status mxp_export_gguf(mxp_model *m, const char *out_path, struct mxp_apply_report *rep, mxp_err *err);

#endif

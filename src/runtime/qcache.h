// qcache.h: the quantized and fake-quantized copies of a model's quantizable weights, made on
// first use and kept, one per (op, format, mode). The executor reads them when a linear op's
// format slot is not f32. Real copies hold the format's bytes (what the kernels read); fake
// copies hold dequantize(quantize(W)) as f32 (what the fake-quant mode multiplies by).
//
// Weights stored in bf16/f16 (core/graph.h) are quantized a chunk of rows at a time from rows
// widened by the accessor (never a whole f32 copy); the real copy in the weight's own stored
// type borrows the stored bytes (no copy) when their rows are in order. A real f32 "copy" of
// such a weight can be asked for (mxp_qcache_prepare with MXP_FMT_F32): the native profiler
// times the f32 reference on it, as an f32 model would run; nothing else makes one.
#ifndef MXP_QCACHE_H
#define MXP_QCACHE_H

#include "core/graph.h"
#include "quant/format.h"

typedef enum mxp_qmode {
    MXP_QMODE_FAKE,  // f32 compute on fake-quantized weights and activations (accuracy)
    MXP_QMODE_REAL,  // quantized weights in memory, real kernels (speed, inference)
} mxp_qmode;

typedef struct mxp_qcache {
    const mxp_graph *g;
    void **real;    // (n_nodes * MXP_FMT_COUNT) format bytes (owned unless borrowed), or NULL
    float **fake;   // (n_nodes * MXP_FMT_COUNT) owned f32 copies, or NULL
    unsigned char *borrowed;  // (n_nodes * MXP_FMT_COUNT) real[k] is the parameter's stored bytes
    size_t bytes;   // total bytes held (borrowed bytes not counted)
} mxp_qcache;

mxp_status mxp_qcache_init(mxp_qcache *qc, const mxp_graph *g, mxp_err *err);
void mxp_qcache_free(mxp_qcache *qc);
// Make sure the copy of quantizable node `node` in `fmt` for `mode` exists (quantizing now if
// needed). fmt is not f32, except in MXP_QMODE_REAL for a weight stored in bf16/f16 (its f32
// copy). Errors name the module: a width that is not a multiple of the format's block,
// non-finite weights, MXP_ERR_NOMEM.
mxp_status mxp_qcache_prepare(mxp_qcache *qc, int node, mxp_format_id fmt, mxp_qmode mode, mxp_err *err);
// The copy (asserts it was prepared). fmt != MXP_FMT_F32.
const void *mxp_qcache_real(const mxp_qcache *qc, int node, mxp_format_id fmt);
const float *mxp_qcache_fake(const mxp_qcache *qc, int node, mxp_format_id fmt);
// The f32 copy of node's bf16/f16 weight, or NULL when none was prepared.
const float *mxp_qcache_f32(const mxp_qcache *qc, int node);
// Drop every copy of one node (to bound memory while sweeping configurations).
void mxp_qcache_drop(mxp_qcache *qc, int node);
// Drop one copy (if it is there).
void mxp_qcache_drop_one(mxp_qcache *qc, int node, mxp_format_id fmt, mxp_qmode mode);

// Quantize parameter w (O, I) into fmt's bytes (out: out_bytes >= mxp_format_matrix_bytes),
// as mxp_quantize_matrix does with the same checks and messages. row_of (O entries), when not
// NULL, gives the parameter row each output row takes (a permutation; NULL: in order). An f32
// parameter in order goes to mxp_quantize_matrix as is; otherwise rows are widened (and
// permuted) a chunk at a time into a buffer of about 4 MB: rows quantize independently, so the
// bytes are those of the whole matrix.
mxp_status mxp_quantize_param(mxp_format_id fmt, const mxp_param *w, const int64_t *row_of, void *out,
                              size_t out_bytes, const char *name, mxp_err *err);
// The input checks of mxp_quantize_param alone (mxp_quantize_check_values on the parameter's
// values, a chunk at a time).
mxp_status mxp_param_check_values(mxp_format_id fmt, const mxp_param *w, const char *name, mxp_err *err);

#endif

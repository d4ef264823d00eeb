// qcache.h: the quantized and fake-quantized copies of a model's quantizable weights, made on
// first use and kept, one per (op, format, mode). The executor reads them when a linear op's
// format slot is not f32. Real copies hold the format's bytes (what the kernels read); fake
// copies hold dequantize(quantize(W)) as f32 (what the fake-quant mode multiplies by).
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
    void **real;    // (n_nodes * MXP_FMT_COUNT) owned format bytes, or NULL
    float **fake;   // (n_nodes * MXP_FMT_COUNT) owned f32 copies, or NULL
    size_t bytes;   // total bytes held
} mxp_qcache;

mxp_status mxp_qcache_init(mxp_qcache *qc, const mxp_graph *g, mxp_err *err);
void mxp_qcache_free(mxp_qcache *qc);
// Make sure the copy of quantizable node `node` in `fmt` for `mode` exists (quantizing now if
// needed). Errors name the module: a width that is not a multiple of the format's block,
// non-finite weights, MXP_ERR_NOMEM.
mxp_status mxp_qcache_prepare(mxp_qcache *qc, int node, mxp_format_id fmt, mxp_qmode mode, mxp_err *err);
// The copy (asserts it was prepared). fmt != MXP_FMT_F32.
const void *mxp_qcache_real(const mxp_qcache *qc, int node, mxp_format_id fmt);
const float *mxp_qcache_fake(const mxp_qcache *qc, int node, mxp_format_id fmt);
// Drop every copy of one node (to bound memory while sweeping configurations).
void mxp_qcache_drop(mxp_qcache *qc, int node);
// Drop one copy (if it is there).
void mxp_qcache_drop_one(mxp_qcache *qc, int node, mxp_format_id fmt, mxp_qmode mode);

#endif

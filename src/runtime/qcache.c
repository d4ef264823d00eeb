// qcache.c: lazily built quantized / fake-quantized weight copies, one per (op, format, mode).
#include "runtime/qcache.h"

#include <string.h>

mxp_status mxp_qcache_init(mxp_qcache *qc, const mxp_graph *g, mxp_err *err) {
    memset(qc, 0, sizeof *qc);
    qc->g = g;
    size_t n = (size_t)g->n_nodes * MXP_FMT_COUNT;
    qc->real = calloc(n, sizeof *qc->real);
    qc->fake = calloc(n, sizeof *qc->fake);
    if (!qc->real || !qc->fake) {
        mxp_qcache_free(qc);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    return MXP_OK;
}

void mxp_qcache_drop(mxp_qcache *qc, int node) {
    for (int f = 0; f < MXP_FMT_COUNT; f++) {
        size_t k = (size_t)node * MXP_FMT_COUNT + (size_t)f;
        free(qc->real[k]);
        free(qc->fake[k]);
        qc->real[k] = NULL;
        qc->fake[k] = NULL;
    }
}

void mxp_qcache_drop_one(mxp_qcache *qc, int node, mxp_format_id fmt, mxp_qmode mode) {
    size_t k = (size_t)node * MXP_FMT_COUNT + (size_t)fmt;
    const mxp_param *w = &qc->g->params[qc->g->nodes[node].w];
    void **slot = mode == MXP_QMODE_REAL ? &qc->real[k] : (void **)&qc->fake[k];
    if (!*slot) return;
    size_t bytes = w->nelem * sizeof(float);
    if (mode == MXP_QMODE_REAL)
        mxp_format_matrix_bytes(fmt, w->shape[0], w->shape[1], &bytes, NULL);
    qc->bytes -= bytes;
    free(*slot);
    *slot = NULL;
}

void mxp_qcache_free(mxp_qcache *qc) {
    if (qc->real && qc->fake)
        for (int i = 0; i < qc->g->n_nodes; i++) mxp_qcache_drop(qc, i);
    free(qc->real);
    free(qc->fake);
    memset(qc, 0, sizeof *qc);
}

mxp_status mxp_qcache_prepare(mxp_qcache *qc, int node, mxp_format_id fmt, mxp_qmode mode, mxp_err *err) {
    const mxp_node *n = &qc->g->nodes[node];
    MXP_ASSERT(mxp_node_quantizable(n) && fmt > MXP_FMT_F32 && fmt < MXP_FMT_COUNT);
    size_t k = (size_t)node * MXP_FMT_COUNT + (size_t)fmt;
    if ((mode == MXP_QMODE_REAL && qc->real[k]) || (mode == MXP_QMODE_FAKE && qc->fake[k])) return MXP_OK;
    const mxp_param *w = &qc->g->params[n->w];
    int O = (int)w->shape[0], I = (int)w->shape[1];
    size_t bytes;
    mxp_status st = mxp_format_matrix_bytes(fmt, O, I, &bytes, err);
    if (st) return mxp_fail_prefix(err, "%s: ", n->name);
    void *q = mxp_aligned_alloc(bytes);
    if (!q) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory quantizing %s", n->name);
    st = mxp_quantize_matrix(fmt, w->data, O, I, q, bytes, n->name, err);
    if (st) {
        free(q);
        return st;
    }
    if (mode == MXP_QMODE_REAL) {
        qc->real[k] = q;
        qc->bytes += bytes;
        return MXP_OK;
    }
    // fake copy: dequantize what the quantizer wrote, row by row
    float *f = mxp_aligned_alloc(w->nelem * sizeof(float));
    if (!f) {
        free(q);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory fake-quantizing %s", n->name);
    }
    const mxp_format *ft = mxp_format_get(fmt);
    size_t rb = mxp_row_bytes(ft, I);
#pragma omp parallel for schedule(static)
    for (int o = 0; o < O; o++) ft->dequantize_row((const uint8_t *)q + (size_t)o * rb, f + (size_t)o * I, I);
    free(q);
    qc->fake[k] = f;
    qc->bytes += w->nelem * sizeof(float);
    return MXP_OK;
}

const void *mxp_qcache_real(const mxp_qcache *qc, int node, mxp_format_id fmt) {
    const void *p = qc->real[(size_t)node * MXP_FMT_COUNT + (size_t)fmt];
    MXP_ASSERT(p);
    return p;
}

const float *mxp_qcache_fake(const mxp_qcache *qc, int node, mxp_format_id fmt) {
    const float *p = qc->fake[(size_t)node * MXP_FMT_COUNT + (size_t)fmt];
    MXP_ASSERT(p);
    return p;
}

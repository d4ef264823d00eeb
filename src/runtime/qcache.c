// qcache.c: lazily built quantized / fake-quantized weight copies, one per (op, format, mode),
// and the quantizing of a parameter a chunk of rows at a time (weights kept in bf16/f16).
#include "runtime/qcache.h"

#include <string.h>

mxp_status mxp_qcache_init(mxp_qcache *qc, const mxp_graph *g, mxp_err *err) {
    memset(qc, 0, sizeof *qc);
    qc->g = g;
    size_t n = (size_t)g->n_nodes * MXP_FMT_COUNT;
    qc->real = calloc(n, sizeof *qc->real);
    qc->fake = calloc(n, sizeof *qc->fake);
    qc->borrowed = calloc(n, 1);
    if (!qc->real || !qc->fake || !qc->borrowed) {
        mxp_qcache_free(qc);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    return MXP_OK;
}

void mxp_qcache_drop(mxp_qcache *qc, int node) {
    for (int f = 0; f < MXP_FMT_COUNT; f++) {
        mxp_qcache_drop_one(qc, node, (mxp_format_id)f, MXP_QMODE_REAL);
        mxp_qcache_drop_one(qc, node, (mxp_format_id)f, MXP_QMODE_FAKE);
    }
}

void mxp_qcache_drop_one(mxp_qcache *qc, int node, mxp_format_id fmt, mxp_qmode mode) {
    size_t k = (size_t)node * MXP_FMT_COUNT + (size_t)fmt;
    const mxp_param *w = &qc->g->params[qc->g->nodes[node].w];
    void **slot = mode == MXP_QMODE_REAL ? &qc->real[k] : (void **)&qc->fake[k];
    if (!*slot) return;
    if (mode == MXP_QMODE_REAL && qc->borrowed[k]) {  // the parameter's own bytes
        qc->borrowed[k] = 0;
        *slot = NULL;
        return;
    }
    size_t bytes = w->nelem * sizeof(float);
    if (mode == MXP_QMODE_REAL)
        mxp_format_matrix_bytes(fmt, w->shape[0], w->shape[1], &bytes, NULL);
    qc->bytes -= bytes;
    free(*slot);
    *slot = NULL;
}

void mxp_qcache_free(mxp_qcache *qc) {
    if (qc->real && qc->fake && qc->borrowed)
        for (int i = 0; i < qc->g->n_nodes; i++) mxp_qcache_drop(qc, i);
    free(qc->real);
    free(qc->fake);
    free(qc->borrowed);
    memset(qc, 0, sizeof *qc);
}

// Rows per chunk of a widened parameter: about 4 MB of f32, at least one row.
static int chunk_rows(int64_t I) {
    int64_t r = ((int64_t)1 << 20) / I;
    return r < 1 ? 1 : r > INT32_MAX ? INT32_MAX : (int)r;
}

// Rows [r0, r0 + n) of the output (row_of: parameter rows) widened into buf (n, I).
static void widen_chunk(const mxp_param *w, const int64_t *row_of, int64_t r0, int n, float *buf) {
    const int64_t I = w->shape[1];
#pragma omp parallel for schedule(static) if ((int64_t)n * I >= 65536)
    for (int k = 0; k < n; k++) mxp_param_widen(w, row_of ? row_of[r0 + k] : r0 + k, 1, 0, I, buf + (size_t)k * I, I);
}

mxp_status mxp_param_check_values(mxp_format_id fmt, const mxp_param *w, const char *name, mxp_err *err) {
    const int O = (int)w->shape[0], I = (int)w->shape[1];
    if (w->stored == MXP_FMT_F32) return mxp_quantize_check_values(fmt, w->data, O, I, name, err);
    const int cr = chunk_rows(I) < O ? chunk_rows(I) : O;
    float *buf = malloc((size_t)cr * I * sizeof *buf);
    if (!buf) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory checking %s", name ? name : w->name);
    mxp_status st = MXP_OK;
    for (int r0 = 0; r0 < O && !st; r0 += cr) {
        int n = O - r0 < cr ? O - r0 : cr;
        widen_chunk(w, NULL, r0, n, buf);
        st = mxp_quantize_check_values_at(fmt, buf, n, I, r0, name, err);
    }
    free(buf);
    return st;
}

mxp_status mxp_quantize_param(mxp_format_id fmt, const mxp_param *w, const int64_t *row_of, void *out,
                              size_t out_bytes, const char *name, mxp_err *err) {
    MXP_ASSERT(w->ndim == 2);
    const int O = (int)w->shape[0], I = (int)w->shape[1];
    if (w->stored == MXP_FMT_F32 && !row_of) return mxp_quantize_matrix(fmt, w->data, O, I, out, out_bytes, name, err);
    if (!name) name = "(unnamed)";
    mxp_status st = mxp_quantize_out_check(fmt, O, I, out_bytes, name, err);
    if (st) return st;
    const mxp_format *f = mxp_format_get(fmt);
    const int cr = chunk_rows(I) < O ? chunk_rows(I) : O;
    float *buf = malloc((size_t)cr * I * sizeof *buf);
    if (!buf) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory quantizing %s", name);
    // as mxp_quantize_matrix: every value checked first, then the rows, then the scales
    for (int r0 = 0; r0 < O && !st; r0 += cr) {
        int n = O - r0 < cr ? O - r0 : cr;
        widen_chunk(w, row_of, r0, n, buf);
        st = mxp_quantize_check_values_at(fmt, buf, n, I, r0, name, err);
    }
    const size_t rb = mxp_row_bytes(f, I);
    int bad_row = -1;
    for (int r0 = 0; r0 < O && !st; r0 += cr) {
        int n = O - r0 < cr ? O - r0 : cr, bad;
        widen_chunk(w, row_of, r0, n, buf);
        st = mxp_quantize_rows(fmt, buf, n, I, (uint8_t *)out + (size_t)r0 * rb, &bad, name, err);
        if (!st && bad >= 0) bad_row = r0 + bad;
    }
    free(buf);
    if (!st && bad_row >= 0)
        st = mxp_fail(err, MXP_ERR_ARG, "tensor %s: a %s scale of row %d overflows f16 (weights too large for %s)", name,
                      f->name, bad_row, f->name);
    return st;
}

mxp_status mxp_qcache_prepare(mxp_qcache *qc, int node, mxp_format_id fmt, mxp_qmode mode, mxp_err *err) {
    const mxp_node *n = &qc->g->nodes[node];
    const mxp_param *w = &qc->g->params[n->w];
    MXP_ASSERT(mxp_node_quantizable(n) && fmt >= MXP_FMT_F32 && fmt < MXP_FMT_COUNT);
    MXP_ASSERT(fmt != MXP_FMT_F32 || (mode == MXP_QMODE_REAL && w->stored != MXP_FMT_F32));
    size_t k = (size_t)node * MXP_FMT_COUNT + (size_t)fmt;
    if ((mode == MXP_QMODE_REAL && qc->real[k]) || (mode == MXP_QMODE_FAKE && qc->fake[k])) return MXP_OK;
    int O = (int)w->shape[0], I = (int)w->shape[1];
    size_t bytes;
    mxp_status st = mxp_format_matrix_bytes(fmt, O, I, &bytes, err);
    if (st) return mxp_fail_prefix(err, "%s: ", n->name);
    if (mode == MXP_QMODE_REAL && (int)fmt == w->stored && !w->row_heads && mxp_format_get(fmt)->block_size == 1) {
        // the stored bytes are this format's (bf16 and f16 rows are plain 16-bit values, which
        // quantizing their own values gives back): borrow them, after the checks quantizing would
        // make (non-finite values). A weight stored in a block format is quantized from its
        // values like any other, as when it was converted to f32 at load, so that what the
        // cache holds never changes a result (a k-quant need not give back its own bytes).
        st = mxp_param_check_values(fmt, w, n->name, err);
        if (st) return st;
        qc->real[k] = (void *)w->raw;
        qc->borrowed[k] = 1;
        return MXP_OK;
    }
    void *q = mxp_aligned_alloc(bytes);
    if (!q) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory quantizing %s", n->name);
    st = mxp_quantize_param(fmt, w, NULL, q, bytes, n->name, err);
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

const float *mxp_qcache_f32(const mxp_qcache *qc, int node) {
    return qc->real[(size_t)node * MXP_FMT_COUNT + (size_t)MXP_FMT_F32];
}

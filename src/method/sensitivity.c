// sensitivity.c: the calibration pass of docs/DESIGN.md 1.1 (see sensitivity.h for the math).
// Runs the executor forward and backward (input gradients only) and does all of its work in
// the linear hook: the per-sample weight gradient of one op is formed in a scratch buffer,
// dotted with every format's weight error, and dropped; the input gradient through the op
// alone is the difference of the input gradient around the op's backward. The embedding's
// term (a lookup: weight term only) is formed from its output gradient and the rows of the
// batch's tokens (embed_terms). The hook adds each use of an op's weight to the sample's
// record (a tied head and embedding: both), squared once the backward is done; records are added to the table in sample order, after they
// are gathered from the processes of an MPI job (runtime/dist.h) when there are several.
#include "method/sensitivity.h"

#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "runtime/dist.h"
#include "runtime/exec.h"

static const char *const metric_names[MXP_METRIC_COUNT] = {"taylor", "fisher", "noise"};

const char *mxp_metric_name(mxp_metric m) { return (m >= 0 && m < MXP_METRIC_COUNT) ? metric_names[m] : "?"; }

mxp_status mxp_metric_parse(const char *s, mxp_metric *out, mxp_err *err) {
    for (int i = 0; i < MXP_METRIC_COUNT; i++)
        if (!strcmp(s, metric_names[i])) {
            *out = (mxp_metric)i;
            return MXP_OK;
        }
    return mxp_fail(err, MXP_ERR_ARG, "unknown metric \"%s\" (known: taylor, fisher, noise)", s);
}

mxp_status mxp_sens_init(mxp_sens *s, const mxp_graph *g, const mxp_format_id *fmts, int n_fmts, int seq_len,
                         mxp_err *err) {
    memset(s, 0, sizeof *s);
    MXP_ASSERT(n_fmts > 0 && n_fmts <= MXP_FMT_COUNT);
    for (int k = 0; k < n_fmts; k++) {
        for (int j = 0; j < k; j++)
            if (fmts[j] == fmts[k])
                return mxp_fail(err, MXP_ERR_ARG, "format %s is listed twice", mxp_format_get(fmts[k])->name);
        s->formats[k] = fmts[k];
    }
    s->n_formats = n_fmts;
    s->seq_len = seq_len;
    s->n_ops = mxp_graph_n_ops(g);
    s->ops = calloc((size_t)s->n_ops, sizeof *s->ops);
    if (!s->ops) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        if (!mxp_graph_is_op(g, i)) continue;
        mxp_sens_op *o = &s->ops[k++];
        o->name = mxp_strdup(n->name);
        if (!o->name) {
            mxp_sens_free(s);
            return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        }
        o->node = i;
        o->in = (int)g->params[n->w].shape[1];
        o->out = (int)g->params[n->w].shape[0];
        int tie = mxp_graph_tied_node(g, i);
        o->embed = n->op == MXP_OP_EMBED ? i : tie >= 0 && g->nodes[tie].op == MXP_OP_EMBED ? tie : -1;
        for (int f = 0; f < n_fmts; f++) {
            size_t bytes;
            o->ok[fmts[f]] = mxp_format_matrix_bytes(fmts[f], o->out, o->in, &bytes, NULL) == MXP_OK;
        }
    }
    return MXP_OK;
}

void mxp_sens_free(mxp_sens *s) {
    for (int i = 0; s->ops && i < s->n_ops; i++) free(s->ops[i].name);
    free(s->ops);
    memset(s, 0, sizeof *s);
}

int mxp_sens_has_format(const mxp_sens *s, mxp_format_id f) {
    for (int k = 0; k < s->n_formats; k++)
        if (s->formats[k] == f) return 1;
    return 0;
}

double mxp_sens_mean(const mxp_sens *s, int op, mxp_format_id f, mxp_metric mt) {
    return s->samples ? s->ops[op].sum[mt][f] / (double)s->samples : 0;
}

double mxp_sens_se(const mxp_sens *s, int op, mxp_format_id f) {
    if (s->samples < 2) return 0;
    double n = (double)s->samples, m = s->ops[op].sum[MXP_METRIC_TAYLOR][f] / n;
    double var = (s->ops[op].sum_d4[f] / n - m * m) * n / (n - 1);
    return var > 0 ? sqrt(var / n) : 0;
}

// ---- deterministic double-accumulated reductions ----
// Fixed chunks, partial sums added in chunk order: the same result for any thread count.
#define CHUNK 8192

static double dot(const float *a, const float *b, size_t n) {
    size_t nc = (n + CHUNK - 1) / CHUNK;
    if (nc < 8) {  // small: one thread, same chunked order
        double total = 0;
        for (size_t c = 0; c < nc; c++) {
            size_t lo = c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
            double acc = 0;
            for (size_t i = lo; i < hi; i++) acc += (double)a[i] * b[i];
            total += acc;
        }
        return total;
    }
    double part[512], total = 0;
    for (size_t c0 = 0; c0 < nc; c0 += 512) {
        size_t c1 = c0 + 512 < nc ? c0 + 512 : nc;
#pragma omp parallel for schedule(static)
        for (size_t c = c0; c < c1; c++) {
            size_t lo = c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
            double acc = 0;
            for (size_t i = lo; i < hi; i++) acc += (double)a[i] * b[i];
            part[c - c0] = acc;
        }
        for (size_t c = c0; c < c1; c++) total += part[c - c0];
    }
    return total;
}

// out[0] = <a, w>, out[1] = <a, a>, out[k] = <a, q[k] - w> for 2 <= k < nb: the weight term
// needs the dot of the gradient with the weight error fq(W) - W directly (the difference of two
// nearly equal dots would cancel). Float products in 8 lanes over blocks of 512 elements
// (vectorizable without reassociation), each block's lanes summed into double; blocks in a
// fixed order: the same result for any thread count.
#define LANES 8
#define BLOCK 512
// part: work space of multi_dot_parts(n) doubles.
static size_t multi_dot_parts(size_t n) { return (n + CHUNK - 1) / CHUNK * (MXP_FMT_COUNT + 2); }
static void multi_dot(const float *a, const float *w, const float *const *q, int nb, size_t n, double *out,
                      double *part) {
    size_t nc = (n + CHUNK - 1) / CHUNK;
    MXP_ASSERT(nb >= 2 && nb <= MXP_FMT_COUNT + 2);
#pragma omp parallel for schedule(static) if (nc >= 8)
    for (size_t c = 0; c < nc; c++) {
        size_t lo = c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
        double tot[MXP_FMT_COUNT + 2] = {0};
        for (size_t b0 = lo; b0 < hi; b0 += BLOCK) {
            size_t b1 = b0 + BLOCK < hi ? b0 + BLOCK : hi;
            size_t m = (b1 - b0) / LANES * LANES;
            for (int k = 0; k < nb; k++) {
                const float *x = a + b0, *y = k == 0 ? w + b0 : k == 1 ? a + b0 : q[k] + b0, *z = w + b0;
                float acc[LANES] = {0};
                if (k < 2) {
                    for (size_t i = 0; i < m; i += LANES)
                        for (int l = 0; l < LANES; l++) acc[l] += x[i + l] * y[i + l];
                } else {
                    for (size_t i = 0; i < m; i += LANES)
                        for (int l = 0; l < LANES; l++) acc[l] += x[i + l] * (y[i + l] - z[i + l]);
                }
                double t = 0;
                for (size_t i = m; i < b1 - b0; i++) t += (double)x[i] * (k < 2 ? y[i] : y[i] - z[i]);
                for (int l = 0; l < LANES; l++) t += acc[l];
                tot[k] += t;
            }
        }
        for (int k = 0; k < nb; k++) part[c * (size_t)nb + (size_t)k] = tot[k];
    }
    for (int k = 0; k < nb; k++) {
        double t = 0;
        for (size_t c = 0; c < nc; c++) t += part[c * (size_t)nb + (size_t)k];
        out[k] = t;
    }
}

// sum of (a*b)^2
static double sq_prod_sum(const float *a, const float *b, size_t n) {
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double v = (double)a[i] * b[i];
        total += v * v;
    }
    return total;
}

// ---- the hook ----

typedef struct calib_ctx {
    mxp_sens *s;
    mxp_exec *ex;
    mxp_qcache *qc;
    const mxp_graph *g;
    int B, T, want_fisher;
    int *op_of_node;       // (n_nodes) index into s->ops
    float *dw;             // (largest weight) per-sample weight gradient
    float *pre;            // (N, widest input) input gradient before the op's backward
    float *ea;             // (N, widest input) activation error of one activation rounding
    float *xq;             // (N, widest input) fisher: fake-quantized input
    float *yq;             // (N, widest output) fisher: the op's output in a format
    double (*var_w)[MXP_FMT_COUNT];  // (n_ops) mean squared weight error per format
    double *dw_dot;        // (B * MXP_FMT_COUNT) per-sample weight terms of the current op
    double *dw_norm2;      // (B)
    double *da;            // (B * MXP_ACT_COUNT) per-sample activation terms of the current op
    double *va;            // (B * MXP_ACT_COUNT) per-sample mean squared activation error
    double *parts;         // (multi_dot_parts(largest weight)) multi_dot's work space
    float *erow;           // (N, embedding width) embedding: fake-quantized rows of the batch
    unsigned char *escratch;  // (N, erow_bytes) the quantizer's scratch of each row
    size_t erow_bytes;
    double *row_dot;       // (N) embedding: per row <dY, row error> and sum of their squares
    double *row_fish;
    int64_t *keys;         // (T) embedding: token * T + position, to sum rows of equal tokens
    double *gsum;          // (embedding width) one token's summed gradient row
    double *rec;           // (B, rec_len) every sample's terms (see record layout)
    size_t rec_len;
} calib_ctx;

// ---- one sample's terms: the record ----
// The hook adds nothing to the table: it writes each sample's terms to that sample's record,
// and add_record adds records to the sums in sample order. Batching and the processes of an
// MPI job change where a record is computed, never the order in which it is added.
// Layout: [0] the reference loss L_n, then per op i and format slot k (s->formats[k]) the
// REC_N terms at 1 + (i * n_formats + k) * REC_N. Formats an op cannot take stay 0 (not added).
// During the backward the hook adds each use of an op's weight (a head and the embedding tied
// to it) into REC_W2 (the weight term dw) and REC_A2 (the activation term da) unsquared;
// finish_records then squares them: d = dw + da over all uses, before squaring.
enum { REC_D2, REC_D4, REC_W2, REC_A2, REC_NOISE, REC_FISHER, REC_N };

static size_t record_len(const mxp_sens *s) { return 1 + (size_t)s->n_ops * (size_t)s->n_formats * REC_N; }

static double *rec_terms(const calib_ctx *c, int b, int op, int k) {
    return c->rec + (size_t)b * c->rec_len + 1 + ((size_t)op * (size_t)c->s->n_formats + (size_t)k) * REC_N;
}

static void add_record(mxp_sens *s, const double *rec, int fisher) {
    s->loss_sum += rec[0];
    for (int i = 0; i < s->n_ops; i++) {
        mxp_sens_op *op = &s->ops[i];
        for (int k = 0; k < s->n_formats; k++) {
            mxp_format_id f = s->formats[k];
            if (f == MXP_FMT_F32 || !op->ok[f]) continue;
            const double *t = rec + 1 + ((size_t)i * (size_t)s->n_formats + (size_t)k) * REC_N;
            op->sum[MXP_METRIC_TAYLOR][f] += t[REC_D2];
            op->sum_d4[f] += t[REC_D4];
            op->sum_w[f] += t[REC_W2];
            op->sum_a[f] += t[REC_A2];
            op->sum[MXP_METRIC_NOISE][f] += t[REC_NOISE];
            if (fisher) op->sum[MXP_METRIC_FISHER][f] += t[REC_FISHER];
        }
    }
    s->samples++;
}

// The activation rounding of format f, by its values: q8_1's are q8_0's (format.h), so the
// pass rounds once for both.
static mxp_act_id act_of(mxp_format_id f) {
    mxp_act_id a = mxp_format_get(f)->act;
    return a == MXP_ACT_Q8_1 ? MXP_ACT_Q8_0 : a;
}

static void embed_terms(calib_ctx *c, const mxp_linear_event *e);

static void hook(void *vctx, const mxp_linear_event *e) {
    calib_ctx *c = vctx;
    if (e->phase == MXP_HOOK_EMBED) {
        embed_terms(c, e);
        return;
    }
    const mxp_graph *g = c->g;
    const mxp_node *n = &g->nodes[e->node];
    const int opi = c->op_of_node[e->node];
    const mxp_sens_op *op = &c->s->ops[opi];
    const int T = c->T, I = op->in, O = op->out;
    const size_t rows_in = (size_t)T * I, rows_out = (size_t)T * O;
    const float *W = g->params[n->w].data;
    if (e->phase == MXP_HOOK_PRE) {
        for (int b = 0; b < c->B; b++) {
            const float *xb = e->x + (size_t)b * rows_in, *gb = e->dy + (size_t)b * rows_out;
            memset(c->dw, 0, (size_t)O * I * sizeof(float));
            mxp_linear_bwd(NULL, c->dw, NULL, gb, xb, NULL, T, I, O);
            // <dW, W>, <dW, dW> and <dW, fq_p(W) - W> for every format, in one pass over dW
            const float *streams[MXP_FMT_COUNT + 2] = {W, c->dw};
            mxp_format_id which[MXP_FMT_COUNT];
            int ns = 2;
            for (int k = 0; k < c->s->n_formats; k++) {
                mxp_format_id f = c->s->formats[k];
                c->dw_dot[b * MXP_FMT_COUNT + f] = 0;
                if (f == MXP_FMT_F32 || !op->ok[f]) continue;
                which[ns - 2] = f;
                streams[ns++] = mxp_qcache_fake(c->qc, e->node, f);
            }
            double dots[MXP_FMT_COUNT + 2];
            multi_dot(c->dw, W, streams, ns, (size_t)O * I, dots, c->parts);
            for (int k = 2; k < ns; k++) c->dw_dot[b * MXP_FMT_COUNT + which[k - 2]] = dots[k];
            c->dw_norm2[b] = dots[1];
        }
        memcpy(c->pre, e->dx, (size_t)c->B * rows_in * sizeof(float));
        return;
    }
    // POST: input gradient through this op alone, and the activation error
    const size_t total_in = (size_t)c->B * rows_in;
    for (size_t i = 0; i < total_in; i++) c->pre[i] = e->dx[i] - c->pre[i];
    // Each activation rounding the op's candidates use (llama.cpp's: f16, bf16, q8_0, q8_1,
    // q8_K) is applied once; the per-sample term is <dL_n/dA, round(A) - A>.
    bool want_act[MXP_ACT_COUNT] = {false};
    for (int k = 0; k < c->s->n_formats; k++)
        if (op->ok[c->s->formats[k]]) want_act[act_of(c->s->formats[k])] = true;
    for (int a = MXP_ACT_F32 + 1; a < MXP_ACT_COUNT; a++) {
        if (!want_act[a]) continue;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < c->B * T; r++) {
            const float *x = e->x + (size_t)r * I;
            float *ea = c->ea + (size_t)r * I;
            mxp_act_round_row((mxp_act_id)a, x, ea, I);
            for (int i = 0; i < I; i++) ea[i] -= x[i];
        }
        for (int b = 0; b < c->B; b++) {
            const float *dab = c->pre + (size_t)b * rows_in, *eab = c->ea + (size_t)b * rows_in;
            c->da[b * MXP_ACT_COUNT + a] = dot(dab, eab, rows_in);
            c->va[b * MXP_ACT_COUNT + a] = dot(eab, eab, rows_in) / (double)rows_in;
        }
    }
    for (int b = 0; b < c->B; b++) {
        const float *dab = c->pre + (size_t)b * rows_in;
        double da_norm2 = dot(dab, dab, rows_in);
        for (int k = 0; k < c->s->n_formats; k++) {
            mxp_format_id f = c->s->formats[k];
            if (f == MXP_FMT_F32 || !op->ok[f]) continue;
            mxp_act_id a = act_of(f);
            double dw = c->dw_dot[b * MXP_FMT_COUNT + f], da = a != MXP_ACT_F32 ? c->da[b * MXP_ACT_COUNT + a] : 0;
            double *t = rec_terms(c, b, opi, k);
            t[REC_W2] += dw;
            t[REC_A2] += da;
            double va = a != MXP_ACT_F32 ? c->va[b * MXP_ACT_COUNT + a] : 0;
            t[REC_NOISE] += c->var_w[opi][f] * c->dw_norm2[b] + va * da_norm2;
        }
    }
    if (!c->want_fisher) return;
    // fisher: dY = (fq_a(x) fq_w(W)^T + b) - y, weighted by the output gradient
    const float *y = c->ex->val[e->node];
    const float *bias = n->has_b ? g->params[n->b].data : NULL;
    for (int k = 0; k < c->s->n_formats; k++) {
        mxp_format_id f = c->s->formats[k];
        if (f == MXP_FMT_F32 || !op->ok[f]) continue;
        const float *xin = e->x;
        if (act_of(f) != MXP_ACT_F32) {
#pragma omp parallel for schedule(static)
            for (int r = 0; r < c->B * T; r++)
                mxp_act_round_row(act_of(f), e->x + (size_t)r * I, c->xq + (size_t)r * I, I);
            xin = c->xq;
        }
        mxp_linear_fwd(c->yq, xin, mxp_qcache_fake(c->qc, e->node, f), bias, c->B * T, I, O);
        for (int b = 0; b < c->B; b++) {
            size_t off = (size_t)b * rows_out;
            for (size_t i = 0; i < rows_out; i++) c->yq[off + i] -= y[off + i];
            rec_terms(c, b, opi, k)[REC_FISHER] += sq_prod_sum(c->yq + off, e->dy + off, rows_out);
        }
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

// The embedding's terms (docs/DESIGN.md 1.1): per sample n, the weight term
// dw_n = sum over positions t of <dL_n/dY_t, fq(E)[tok_t] - E[tok_t]> (llama.cpp's get_rows
// rounds no activation: da = 0), the error rows formed for the batch's tokens only; noise:
// var_w * ||dL_n/dE||^2 (rows of equal tokens summed); fisher: sum of (error * dL_n/dY)^2, the
// linear ops' output-error form with the output error of a lookup being the row error.
static void embed_terms(calib_ctx *c, const mxp_linear_event *e) {
    const mxp_graph *g = c->g;
    const int opi = c->op_of_node[e->node];
    const mxp_sens_op *op = &c->s->ops[opi];
    const int C = op->in, T = c->T, N = c->B * T;
    const float *E = g->params[g->nodes[e->node].w].data;
    const int32_t *tok = c->ex->tokens;
    for (int b = 0; b < c->B; b++) {
        for (int t = 0; t < T; t++) c->keys[t] = (int64_t)tok[b * T + t] * T + t;
        qsort(c->keys, (size_t)T, sizeof *c->keys, cmp_i64);
        double norm2 = 0;
        for (int t0 = 0; t0 < T;) {
            int64_t id = c->keys[t0] / T;
            int t1 = t0;
            for (int i = 0; i < C; i++) c->gsum[i] = 0;
            for (; t1 < T && c->keys[t1] / T == id; t1++) {
                const float *dy = e->dy + ((size_t)b * T + (size_t)(c->keys[t1] % T)) * C;
                for (int i = 0; i < C; i++) c->gsum[i] += dy[i];
            }
            for (int i = 0; i < C; i++) norm2 += c->gsum[i] * c->gsum[i];
            t0 = t1;
        }
        c->dw_norm2[b] = norm2;
    }
    for (int k = 0; k < c->s->n_formats; k++) {
        mxp_format_id f = c->s->formats[k];
        if (f == MXP_FMT_F32 || !op->ok[f]) continue;
        const mxp_format *ft = mxp_format_get(f);
#pragma omp parallel for schedule(static)
        for (int r = 0; r < N; r++) {
            const float *x = E + (size_t)tok[r] * C, *dy = e->dy + (size_t)r * C;
            float *q = c->erow + (size_t)r * C;
            mxp_fake_quant_weight_row(ft, x, q, C, c->escratch + (size_t)r * c->erow_bytes);
            double d = 0, fi = 0;
            for (int i = 0; i < C; i++) {
                double p = ((double)q[i] - x[i]) * dy[i];
                d += p;
                fi += p * p;
            }
            c->row_dot[r] = d;
            c->row_fish[r] = fi;
        }
        for (int b = 0; b < c->B; b++) {
            double dw = 0, fish = 0;
            for (int t = 0; t < T; t++) {
                dw += c->row_dot[b * T + t];
                fish += c->row_fish[b * T + t];
            }
            double *t = rec_terms(c, b, opi, k);
            t[REC_W2] += dw;
            t[REC_NOISE] += c->var_w[opi][f] * c->dw_norm2[b];
            if (c->want_fisher) t[REC_FISHER] += fish;
        }
    }
}

// After a batch's backward: every use of every op is in; square the summed terms.
static void finish_records(calib_ctx *c, int nb) {
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < c->s->n_ops; i++)
            for (int k = 0; k < c->s->n_formats; k++) {
                double *t = rec_terms(c, b, i, k);
                double dw = t[REC_W2], da = t[REC_A2], d = dw + da;
                t[REC_D2] = d * d;
                t[REC_D4] = d * d * d * d;
                t[REC_W2] = dw * dw;
                t[REC_A2] = da * da;
            }
}

// Mean squared error of op i's weight in format f. An embedding op has no fake-quantized copy
// (a vocabulary-sized table per format): its rows are rounded here one at a time.
static mxp_status weight_var(const mxp_graph *g, const mxp_qcache *qc, const mxp_sens_op *o, mxp_format_id f,
                             double *out, mxp_err *err) {
    const float *W = g->params[g->nodes[o->node].w].data;
    size_t nw = (size_t)o->in * o->out;
    double acc = 0;
    if (g->nodes[o->node].op != MXP_OP_EMBED) {
        const float *fq = mxp_qcache_fake(qc, o->node, f);
        for (size_t j = 0; j < nw; j++) acc += ((double)fq[j] - W[j]) * ((double)fq[j] - W[j]);
        *out = acc / (double)nw;
        return MXP_OK;
    }
    const mxp_format *ft = mxp_format_get(f);
    size_t rb = mxp_row_bytes(ft, o->in);
    double *row = malloc((size_t)o->out * sizeof *row);  // per-row sums, added in row order
    if (!row) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    int ok = 1;
#pragma omp parallel reduction(& : ok)
    {
        float *y = malloc((size_t)o->in * sizeof *y);
        void *q = malloc(rb);
        ok = y && q;
#pragma omp for schedule(static)
        for (int r = 0; r < o->out; r++) {
            if (!y || !q) continue;
            const float *x = W + (size_t)r * o->in;
            mxp_fake_quant_weight_row(ft, x, y, o->in, q);
            double a = 0;
            for (int i = 0; i < o->in; i++) a += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
            row[r] = a;
        }
        free(y);
        free(q);
    }
    if (ok)
        for (int r = 0; r < o->out; r++) acc += row[r];
    free(row);
    if (!ok) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    *out = acc / (double)nw;
    return MXP_OK;
}

static void progress_line(size_t done, size_t total, double t0, double loss) {
    double el = mxp_now() - t0, eta = done ? el * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\rcalibrate: %zu/%zu samples  loss %.4f  %.1fs elapsed, ETA %.1fs   ", done, total, loss, el, eta);
    if (done == total) fprintf(stderr, "\n");
}

mxp_status mxp_sens_accumulate(mxp_sens *s, mxp_model *m, mxp_qcache *qc, const int32_t *seq, size_t n,
                               const mxp_sens_run *run, mxp_err *err) {
    const mxp_graph *g = &m->graph;
    const mxp_dist *dist = run->dist;
    const int rank = dist ? dist->rank : 0, P = dist && dist->size > 1 ? dist->size : 1;
    const int T = s->seq_len;
    int B = run->batch < 1 ? 1 : run->batch;
    if ((size_t)B > n) B = (int)(n ? n : 1);
    // fake-quantized copies of every op in every format (exactly the kernels' values)
    for (int i = 0; i < s->n_ops; i++)
        for (int k = 0; k < s->n_formats; k++) {
            mxp_format_id f = s->formats[k];
            if (f == MXP_FMT_F32 || !s->ops[i].ok[f] || g->nodes[s->ops[i].node].op == MXP_OP_EMBED) continue;
            mxp_status st = mxp_qcache_prepare(qc, s->ops[i].node, f, MXP_QMODE_FAKE, err);
            if (st) return st;
        }
    calib_ctx c = {.s = s, .qc = qc, .g = g, .B = B, .T = T, .want_fisher = run->want_fisher,
                   .rec_len = record_len(s)};
    size_t widest_in = 1, widest_out = 1, biggest = 1, embed_w = 0;
    for (int i = 0; i < s->n_ops; i++) {
        if (s->ops[i].embed >= 0) {
            embed_w = (size_t)s->ops[i].in;
            for (int k = 0; k < s->n_formats; k++) {
                if (!s->ops[i].ok[s->formats[k]]) continue;
                size_t rb = mxp_row_bytes(mxp_format_get(s->formats[k]), s->ops[i].in);
                if (rb > c.erow_bytes) c.erow_bytes = rb;
            }
        }
        if ((size_t)s->ops[i].in > widest_in) widest_in = (size_t)s->ops[i].in;
        if ((size_t)s->ops[i].out > widest_out) widest_out = (size_t)s->ops[i].out;
        size_t w = (size_t)s->ops[i].in * (size_t)s->ops[i].out;
        if (w > biggest) biggest = w;
    }
    size_t N = (size_t)B * T;
    // one round's records (P batches) must fit the int counts of a gather
    if (c.rec_len * (size_t)B * (size_t)P > (size_t)INT32_MAX)
        return mxp_fail(err, MXP_ERR_ARG, "--batch %d: %d processes' records of %zu terms per sample are too many",
                        B, P, c.rec_len);
    c.op_of_node = calloc((size_t)g->n_nodes, sizeof *c.op_of_node);
    c.dw = malloc(biggest * sizeof(float));
    c.pre = malloc(N * widest_in * sizeof(float));
    c.ea = calloc(N * widest_in, sizeof(float));
    c.xq = run->want_fisher ? malloc(N * widest_in * sizeof(float)) : NULL;
    c.yq = run->want_fisher ? malloc(N * widest_out * sizeof(float)) : NULL;
    c.var_w = calloc((size_t)s->n_ops, sizeof *c.var_w);
    c.dw_dot = calloc((size_t)B * MXP_FMT_COUNT, sizeof *c.dw_dot);
    c.dw_norm2 = calloc((size_t)B, sizeof *c.dw_norm2);
    c.da = calloc((size_t)B * MXP_ACT_COUNT, sizeof *c.da);
    c.va = calloc((size_t)B * MXP_ACT_COUNT, sizeof *c.va);
    c.parts = calloc(multi_dot_parts(biggest), sizeof *c.parts);
    c.rec = malloc((size_t)B * c.rec_len * sizeof *c.rec);
    if (embed_w) {
        c.erow = malloc(N * embed_w * sizeof *c.erow);
        c.escratch = malloc(N * (c.erow_bytes ? c.erow_bytes : 1));
        c.row_dot = malloc(N * sizeof *c.row_dot);
        c.row_fish = malloc(N * sizeof *c.row_fish);
        c.keys = malloc((size_t)T * sizeof *c.keys);
        c.gsum = malloc(embed_w * sizeof *c.gsum);
    }
    double *all = rank == 0 ? malloc((size_t)P * B * c.rec_len * sizeof *all) : NULL;  // one round, sample order
    int *counts = calloc((size_t)P, sizeof *counts);
    int32_t *batch = malloc((size_t)B * (T + 1) * sizeof *batch);
    double *seq_loss = malloc((size_t)B * sizeof *seq_loss);
    mxp_exec ex = {0};
    mxp_status st = MXP_OK;
    if (!c.op_of_node || !c.dw || !c.pre || !c.ea || (run->want_fisher && (!c.xq || !c.yq)) || !c.var_w ||
        !c.dw_dot || !c.dw_norm2 || !c.da || !c.va || !c.parts || !c.rec || (embed_w && (!c.erow || !c.escratch || !c.row_dot || !c.row_fish || !c.keys || !c.gsum)) ||
        (rank == 0 && !all) || !counts || !batch || !seq_loss)
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory for the calibration buffers");
    for (int i = 0; !st && i < s->n_ops; i++) {
        c.op_of_node[s->ops[i].node] = i;
        if (s->ops[i].embed >= 0) c.op_of_node[s->ops[i].embed] = i;
        for (int k = 0; k < s->n_formats && !st; k++) {
            mxp_format_id f = s->formats[k];
            if (f == MXP_FMT_F32 || !s->ops[i].ok[f]) continue;
            st = weight_var(g, qc, &s->ops[i], f, &c.var_w[i][f], err);
        }
    }
    if (!st) st = mxp_exec_init(&ex, g, B, T, MXP_EXEC_BACKWARD, err);
    c.ex = &ex;
    if (run->want_fisher && rank == 0) s->has_fisher = 1;
    double t0 = mxp_now();
    size_t done = 0;  // samples of whole rounds, the same on every rank
    const size_t n_batches = (n + (size_t)B - 1) / (size_t)B;
    // Every rank goes through every round (with an empty batch when none is left for it), so
    // the collective calls match up. A rank that fails returns at once; the others then wait in
    // the next collective call until the caller ends the job (mxp_dist_abort).
    for (size_t first = 0; !st && first < n_batches; first += (size_t)P) {
        int stop_here = (run->stop && *run->stop) || (run->stop_after && done >= run->stop_after);
        if (mxp_dist_any(dist, stop_here)) {
            st = mxp_fail(err, MXP_ERR_INTERRUPTED, "calibration interrupted after %zu of %zu samples", done, n);
            break;
        }
        size_t round_n = 0;  // samples in this round, over all ranks
        for (int q = 0; q < P; q++) {
            size_t bq = first + (size_t)q, lo = bq * (size_t)B;
            size_t nq = bq < n_batches ? (n - lo < (size_t)B ? n - lo : (size_t)B) : 0;
            counts[q] = (int)(nq * c.rec_len);
            round_n += nq;
        }
        int nb = counts[rank] / (int)c.rec_len;
        if (nb > 0) {
            if (nb != c.B) {  // the last, partial batch: a smaller executor
                mxp_exec_free(&ex);
                c.B = nb;
                st = mxp_exec_init(&ex, g, nb, T, MXP_EXEC_BACKWARD, err);
                if (st) break;
            }
            memcpy(batch, seq + (first + (size_t)rank) * (size_t)B * (size_t)(T + 1),
                   (size_t)nb * (T + 1) * sizeof *batch);
            st = mxp_exec_set_batch(&ex, batch, err);
            if (st) break;
            memset(c.rec, 0, (size_t)nb * c.rec_len * sizeof *c.rec);
            mxp_exec_forward(&ex, 0, g->n_nodes);
            mxp_exec_loss(&ex, seq_loss);
            mxp_exec_zero_grads(&ex);
            // seed 1/T per position: each row block carries the gradient of its own sample's mean loss
            st = mxp_exec_backward(&ex, 0, g->n_nodes, 1.0f / (float)T, hook, &c, err);
            if (st) break;
            finish_records(&c, nb);
            for (int b = 0; b < nb; b++) c.rec[(size_t)b * c.rec_len] = seq_loss[b];
        }
        mxp_dist_gather(dist, c.rec, counts, all);
        size_t before = done;
        done += round_n;
        if (rank != 0) continue;
        for (size_t i = 0; i < round_n; i++) add_record(s, all + i * c.rec_len, run->want_fisher);
        if (run->progress) progress_line(done, n, t0, s->loss_sum / (double)s->samples);
        if (run->checkpoint && run->every && done < n && done / run->every != before / run->every)
            st = run->checkpoint(run->ctx, s, err);
    }
    mxp_exec_free(&ex);
    free(c.op_of_node);
    free(c.dw);
    free(c.pre);
    free(c.ea);
    free(c.xq);
    free(c.yq);
    free(c.var_w);
    free(c.dw_dot);
    free(c.dw_norm2);
    free(c.da);
    free(c.va);
    free(c.parts);
    free(c.erow);
    free(c.escratch);
    free(c.row_dot);
    free(c.row_fish);
    free(c.keys);
    free(c.gsum);
    free(c.rec);
    free(all);
    free(counts);
    free(batch);
    free(seq_loss);
    return st;
}

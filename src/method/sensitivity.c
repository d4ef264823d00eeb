// sensitivity.c: the calibration pass of docs/DESIGN.md 1.1 (see sensitivity.h for the math).
// Runs the executor forward and backward (input gradients only) and does all of its work in
// the linear hook: the per-sample weight gradient of one op is formed in a scratch buffer,
// dotted with every format's weight error (formed chunk by chunk, never stored whole: see
// weight_terms), and dropped; the input gradient through the op alone is the difference of
// the input gradient around the op's backward. The embedding's term (a lookup: weight term
// only) is formed from its output gradient and the rows of the batch's tokens (embed_terms).
// The hook adds each use of an op's weight to the sample's record (a tied head and embedding:
// both), squared once the backward is done; records are added to the table in sample order, after they
// are gathered from the processes of an MPI job (runtime/dist.h) when there are several.
// Weights are read through the parameter accessor (core/graph.h): a weight stored in bf16/f16
// is widened a chunk, a row or the batch's token rows at a time into per-thread buffers (the
// same values an f32 copy holds, so the same table), never whole.
#include "method/sensitivity.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "method/partition.h"
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

// ---- the weight terms, chunk by chunk ----
// For one op W (O, I) and G samples' weight gradients dW_g: <dW_g, dW_g> and, for every
// candidate format f, <dW_g, fq_f(W) - W> (the weight term needs the dot with the weight error
// directly: the difference of two nearly equal dots would cancel); on request also the sum of
// (fq_f(W) - W)^2 (var_w). No copy of fq_f(W) is kept: W is cut into chunks of CHUNK elements,
// each chunk is fake-quantized in one format at a time into a thread-local buffer, dotted with
// every sample's gradient and dropped. A chunk is whole blocks of every candidate (CHUNK is a
// multiple of 256, rows are multiples of the block size: format.h's block-size rule), and the
// quantizers of the block formats treat blocks independently, so the pieces are exactly the
// values of quantizing whole rows. f8_e4m3 scales whole rows: its pieces are cut from the
// fake-quantized whole row (a thread keeps the last row it quantized; a row that straddles
// two threads' chunks is quantized by each). Float products in 8 lanes over blocks of 512
// elements (vectorizable without reassociation), each block's lanes summed into double;
// chunks in a fixed order: the same result for any thread count.
#define LANES 8
#define BLOCK 512
// Samples whose weight gradients are held at once: at most MXP_SENS_MAX_G, and at most
// DW_BUDGET bytes of them (at least one).
#define MXP_SENS_MAX_G 64
#define DW_BUDGET ((size_t)1 << 30)

// One thread's buffers (see wt_scratch_bytes).
typedef struct wt_scratch {
    float *fq;        // (CHUNK) the current chunk in the current format
    float *row;       // (widest input) f8_e4m3: the last whole row fake-quantized
    float *w;         // (CHUNK) the current chunk of W widened to f32 (W stored in bf16/f16)
    float *wrow;      // (widest input) one row of a weight widened to f32 (stored in bf16/f16)
    void *qb;         // quantized bytes of one piece or one whole row
    long row_id;      // the row in `row`, or -1
    int row_fmt;      // the format (index into the job's list) of `row`
} wt_scratch;

static size_t wt_qb_bytes(size_t widest_in) {
    size_t n = widest_in > CHUNK ? widest_in : CHUNK;
    return (n * sizeof(float) + 64 + 63) / 64 * 64;  // every format's row of n elements fits in 4n + 64
}
static size_t wt_floats(size_t widest_in) { return 2 * (CHUNK + widest_in); }
static size_t wt_scratch_bytes(size_t widest_in) {
    return wt_floats(widest_in) * sizeof(float) / 64 * 64 + 64 + wt_qb_bytes(widest_in);
}
static wt_scratch wt_scratch_at(void *base, size_t widest_in, int t) {
    uint8_t *p = (uint8_t *)base + (size_t)t * wt_scratch_bytes(widest_in);
    wt_scratch w = {.fq = (float *)p, .row = (float *)p + CHUNK, .row_id = -1, .row_fmt = -1};
    w.w = w.row + widest_in;
    w.wrow = w.w + CHUNK;
    w.qb = p + wt_floats(widest_in) * sizeof(float) / 64 * 64 + 64;
    return w;
}

// W[lo, hi) (rows of I elements) as f32: a pointer into W's f32 data, or the pieces of rows
// it spans widened into buf.
static const float *chunk_values(const mxp_param *W, int I, size_t lo, size_t hi, float *buf) {
    if (W->stored == MXP_FMT_F32) return W->data + lo;
    for (size_t p = lo; p < hi;) {
        size_t r = p / (size_t)I, rs = r * (size_t)I, e = rs + (size_t)I < hi ? rs + (size_t)I : hi;
        mxp_param_widen(W, (int64_t)r, 1, (int64_t)(p - rs), (int64_t)(e - p), buf + (p - lo), (int64_t)(e - p));
        p = e;
    }
    return buf;
}

// ts->fq = W[lo, hi) fake-quantized in format ft (rows of I elements; k: ft's index in the
// job; w: W[lo, hi) as f32): dequantized from wq, W's bytes in ft, when given (no row
// prefix), else quantized here.
static void fake_chunk(const mxp_format *ft, int k, const mxp_param *W, const float *w, const uint8_t *wq, int I,
                       size_t lo, size_t hi, wt_scratch *ts) {
    for (size_t p = lo; p < hi;) {
        size_t r = p / (size_t)I, rs = r * (size_t)I, e = rs + (size_t)I < hi ? rs + (size_t)I : hi;
        if (wq) {
            size_t at = r * mxp_row_bytes(ft, I) + (p - rs) / (size_t)ft->block_size * (size_t)ft->block_bytes;
            ft->dequantize_row(wq + at, ts->fq + (p - lo), (int)(e - p));
        } else if (ft->row_prefix_bytes) {  // a per-row scale: the whole row
            if (ts->row_id != (long)r || ts->row_fmt != k) {
                mxp_fake_quant_weight_row(ft, mxp_param_rows(W, (int64_t)r, 1, ts->wrow), ts->row, I, ts->qb);
                ts->row_id = (long)r;
                ts->row_fmt = k;
            }
            memcpy(ts->fq + (p - lo), ts->row + (p - rs), (e - p) * sizeof(float));
        } else {
            mxp_fake_quant_weight_row(ft, w + (p - lo), ts->fq + (p - lo), (int)(e - p), ts->qb);
        }
        p = e;
    }
}

// <x, y> over n elements, in the lane/block order above.
static double block_dot(const float *x, const float *y, size_t n) {
    double tot = 0;
    for (size_t b0 = 0; b0 < n; b0 += BLOCK) {
        size_t len = b0 + BLOCK < n ? BLOCK : n - b0, m = len / LANES * LANES;
        const float *xb = x + b0, *yb = y + b0;
        float acc[LANES] = {0};
        double t = 0;
        for (size_t i = 0; i < m; i += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += xb[i + l] * yb[i + l];
        for (size_t i = m; i < len; i++) t += (double)xb[i] * yb[i];
        for (int l = 0; l < LANES; l++) t += acc[l];
        tot += t;
    }
    return tot;
}

// <p, r - x> and <r - x, r - x> over n elements, in block_dot's lane/block order.
static void err_dots(const float *p, const float *r, const float *x, size_t n, double *pe, double *ee) {
    double tp = 0, te = 0;
    for (size_t b0 = 0; b0 < n; b0 += BLOCK) {
        size_t len = b0 + BLOCK < n ? BLOCK : n - b0, m = len / LANES * LANES;
        const float *pb = p + b0, *rb = r + b0, *xb = x + b0;
        float ap[LANES] = {0}, ae[LANES] = {0};
        double sp = 0, se = 0;
        for (size_t i = 0; i < m; i += LANES)
            for (int l = 0; l < LANES; l++) {
                float d = rb[i + l] - xb[i + l];
                ap[l] += pb[i + l] * d;
                ae[l] += d * d;
            }
        for (size_t i = m; i < len; i++) {
            double d = (double)rb[i] - xb[i];
            sp += pb[i] * d;
            se += d * d;
        }
        for (int l = 0; l < LANES; l++) {
            sp += ap[l];
            se += ae[l];
        }
        tp += sp;
        te += se;
    }
    *pe = tp;
    *ee = te;
}

typedef struct wt_job {
    const mxp_param *W;                   // (O, I)
    int O, I;
    const float *const *dw;               // (G) gradients, (O, I) each
    int G;
    const mxp_format *fm[MXP_FMT_COUNT];  // the formats (never f32)
    const uint8_t *wq[MXP_FMT_COUNT];     // W quantized in each (from the cache), or NULL
    int nf;
    int want_var;                         // also sq and bad
} wt_job;

// Doubles of work space weight_terms needs for n weights and G gradients.
static size_t wt_parts(size_t n, int G) { return (n + CHUNK - 1) / CHUNK * ((size_t)G * (MXP_FMT_COUNT + 1) + 2 * MXP_FMT_COUNT); }

// dots (G, nf + 1): [g (nf + 1)] = <dW_g, dW_g>, [g (nf + 1) + 1 + k] = <dW_g, fq_k(W) - W>.
// With want_var: sq[k] = sum of (fq_k(W) - W)^2, bad[k] = the first row whose fq_k is not
// finite (a block scale that overflows f16), else -1.
static void weight_terms(const wt_job *j, void *scratch, size_t widest_in, double *part, double *dots,
                         double *sq, long *bad) {
    const size_t n = (size_t)j->O * (size_t)j->I, nc = (n + CHUNK - 1) / CHUNK;
    const int nf = j->nf, G = j->G, stride = G * (nf + 1) + 2 * nf;
#pragma omp parallel if (nc >= 8)
    {
        wt_scratch ts = wt_scratch_at(scratch, widest_in, omp_get_thread_num());
#pragma omp for schedule(static)
        for (size_t c = 0; c < nc; c++) {
            size_t lo = c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n, len = hi - lo;
            double *pc = part + c * (size_t)stride;
            const float *w = chunk_values(j->W, j->I, lo, hi, ts.w);
            for (int g = 0; g < G; g++) pc[g * (nf + 1)] = block_dot(j->dw[g] + lo, j->dw[g] + lo, len);
            for (int k = 0; k < nf; k++) {
                fake_chunk(j->fm[k], k, j->W, w, j->wq[k], j->I, lo, hi, &ts);
                if (j->want_var) {
                    double acc = 0, first_bad = -1;
                    for (size_t i = 0; i < len; i++) {
                        double d = (double)ts.fq[i] - w[i];
                        acc += d * d;
                        if (first_bad < 0 && !isfinite(ts.fq[i])) first_bad = (double)((lo + i) / (size_t)j->I);
                    }
                    pc[G * (nf + 1) + k] = acc;
                    pc[G * (nf + 1) + nf + k] = first_bad;
                }
                // the error fq - W, once for the G gradients
                for (size_t i = 0; i < len; i++) ts.fq[i] -= w[i];
                for (int g = 0; g < G; g++) pc[g * (nf + 1) + 1 + k] = block_dot(j->dw[g] + lo, ts.fq, len);
            }
        }
    }
    for (int q = 0; q < G * (nf + 1); q++) {
        double t = 0;
        for (size_t c = 0; c < nc; c++) t += part[c * (size_t)stride + (size_t)q];
        dots[q] = t;
    }
    for (int k = 0; j->want_var && k < nf; k++) {
        double t = 0;
        bad[k] = -1;
        for (size_t c = 0; c < nc; c++) {
            const double *pc = part + c * (size_t)stride + (size_t)(G * (nf + 1));
            t += pc[k];
            if (bad[k] < 0 && pc[nf + k] >= 0) bad[k] = (long)pc[nf + k];
        }
        sq[k] = t;
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
    mxp_model *m;          // streaming: its mapped weights are released segment by segment
    int progress;          // streaming: a progress line per segment (done/total samples, since t0)
    volatile int *stop;    // streaming with one rank: also checked after each segment (may be NULL)
    size_t done, total;
    double t0;
    mxp_qcache *qc;        // the quantized weights kept (MXP_QMODE_REAL copies), if any
    const mxp_graph *g;
    int B, T, want_fisher;
    int G;                 // per-sample weight gradients formed at once (<= B)
    int *op_of_node;       // (n_nodes) index into s->ops
    float *dw;             // (G, largest weight) per-sample weight gradients
    float *fqw;            // (largest weight) fisher: one op's weight fake-quantized in a format
    float *pre;            // (N, widest input) input gradient before the op's backward
    float *arow;           // (threads, widest input) one input row in one activation rounding
    double *rowp;          // (N, 1 + 2 MXP_ACT_COUNT) per input row: its gradient's norm and dots
    double *pa_norm2;      // (B) per sample |dL/dA|^2 of the current op
    float *xq;             // (N, widest input) fisher: fake-quantized input
    float *yq;             // (N, widest output) fisher: the op's output in a format
    void *wscr;            // (threads) weight_terms' buffers (wt_scratch_bytes each)
    size_t widest_in;
    unsigned char *have_var_w;       // (n_ops) var_w computed
    double (*var_w)[MXP_FMT_COUNT];  // (n_ops) mean squared weight error per format
    double *dw_dot;        // (B * MXP_FMT_COUNT) per-sample weight terms of the current op
    double *dw_norm2;      // (B)
    double *da;            // (B * MXP_ACT_COUNT) per-sample activation terms of the current op
    double *va;            // (B * MXP_ACT_COUNT) per-sample mean squared activation error
    double *parts;         // (wt_parts(largest weight, G)) weight_terms' work space
    float *erow;           // (N, embedding width) embedding: fake-quantized rows of the batch
    unsigned char *escratch;  // (N, erow_bytes) the quantizer's scratch of each row
    size_t erow_bytes;
    double *row_dot;       // (N) embedding: per row <dY, row error> and sum of their squares
    double *row_fish;
    int64_t *keys;         // (T) embedding: token * T + position, to sum rows of equal tokens
    double *gsum;          // (embedding width) one token's summed gradient row
    double *rec;           // (B, rec_len) every sample's terms (see record layout)
    size_t rec_len;
    mxp_status st;         // the first error the hook met (it then does nothing more)
    mxp_err *err;
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
    const mxp_param *W = &g->params[n->w];
    if (c->st) return;
    if (e->phase == MXP_HOOK_PRE) {
        wt_job j = {.W = W, .O = O, .I = I, .want_var = !c->have_var_w[opi]};
        mxp_format_id which[MXP_FMT_COUNT];
        for (int k = 0; k < c->s->n_formats; k++) {
            mxp_format_id f = c->s->formats[k];
            for (int b = 0; b < c->B; b++) c->dw_dot[b * MXP_FMT_COUNT + f] = 0;
            if (f == MXP_FMT_F32 || !op->ok[f]) continue;
            which[j.nf] = f;
            j.wq[j.nf] = c->qc->real[(size_t)e->node * MXP_FMT_COUNT + (size_t)f];
            j.fm[j.nf++] = mxp_format_get(f);
        }
        // G samples at a time: form their weight gradients, then one pass over W that
        // fake-quantizes each chunk once for all of them
        for (int b0 = 0; b0 < c->B; b0 += c->G) {
            const float *dws[MXP_SENS_MAX_G];
            j.G = c->B - b0 < c->G ? c->B - b0 : c->G;
            for (int q = 0; q < j.G; q++) {
                float *d = c->dw + (size_t)q * O * I;
                const float *xb = e->x + (size_t)(b0 + q) * rows_in, *gb = e->dy + (size_t)(b0 + q) * rows_out;
                memset(d, 0, (size_t)O * I * sizeof(float));
                mxp_linear_bwd(NULL, d, NULL, gb, xb, NULL, T, I, O);
                dws[q] = d;
            }
            j.dw = dws;
            double dots[MXP_SENS_MAX_G * (MXP_FMT_COUNT + 1)], sq[MXP_FMT_COUNT];
            long bad[MXP_FMT_COUNT];
            weight_terms(&j, c->wscr, c->widest_in, c->parts, dots, sq, bad);
            for (int q = 0; q < j.G; q++) {
                c->dw_norm2[b0 + q] = dots[q * (j.nf + 1)];
                for (int k = 0; k < j.nf; k++) c->dw_dot[(b0 + q) * MXP_FMT_COUNT + which[k]] = dots[q * (j.nf + 1) + 1 + k];
            }
            for (int k = 0; j.want_var && k < j.nf; k++) {
                if (bad[k] >= 0) {
                    c->st = mxp_fail(c->err, MXP_ERR_ARG, "tensor %s: a %s scale of row %ld overflows f16 (weights too large for %s)",
                                     n->name, j.fm[k]->name, bad[k], j.fm[k]->name);
                    return;
                }
                c->var_w[opi][which[k]] = sq[k] / ((double)O * I);
            }
            c->have_var_w[opi] = 1;
            j.want_var = 0;
        }
        memcpy(c->pre, e->dx, (size_t)c->B * rows_in * sizeof(float));
        return;
    }
    // POST: input gradient through this op alone, and the activation error
    const size_t total_in = (size_t)c->B * rows_in;
    for (size_t i = 0; i < total_in; i++) c->pre[i] = e->dx[i] - c->pre[i];
    // Each activation rounding the op's candidates use (llama.cpp's: f16, bf16, q8_0, q8_1,
    // q8_K) is applied once; the per-sample term is <dL_n/dA, round(A) - A>. One pass over the
    // rows: each row is rounded into a per-thread buffer in every rounding in turn and dotted
    // there (no (N, I) error copy); the row sums are added per sample in row order.
    int acts[MXP_ACT_COUNT], na = 0;
    bool want_act[MXP_ACT_COUNT] = {false};
    for (int k = 0; k < c->s->n_formats; k++)
        if (op->ok[c->s->formats[k]]) want_act[act_of(c->s->formats[k])] = true;
    for (int a = MXP_ACT_F32 + 1; a < MXP_ACT_COUNT; a++)
        if (want_act[a]) acts[na++] = a;
    const int rs = 1 + 2 * MXP_ACT_COUNT;  // per row: <p, p>, then <p, e_a> and <e_a, e_a> per rounding
#pragma omp parallel
    {
        float *xr = c->arow + (size_t)omp_get_thread_num() * c->widest_in;
#pragma omp for schedule(static)
        for (int r = 0; r < c->B * T; r++) {
            const float *x = e->x + (size_t)r * I, *p = c->pre + (size_t)r * I;
            double *rp = c->rowp + (size_t)r * rs;
            rp[0] = block_dot(p, p, (size_t)I);
            for (int q = 0; q < na; q++) {
                mxp_act_round_row((mxp_act_id)acts[q], x, xr, I);
                err_dots(p, xr, x, (size_t)I, &rp[1 + 2 * q], &rp[2 + 2 * q]);
            }
        }
    }
    for (int b = 0; b < c->B; b++) {
        double acc[1 + 2 * MXP_ACT_COUNT] = {0};
        for (int t = 0; t < T; t++) {
            const double *rp = c->rowp + ((size_t)b * T + (size_t)t) * rs;
            for (int q = 0; q < 1 + 2 * na; q++) acc[q] += rp[q];
        }
        c->pa_norm2[b] = acc[0];
        for (int q = 0; q < na; q++) {
            c->da[b * MXP_ACT_COUNT + acts[q]] = acc[1 + 2 * q];
            c->va[b * MXP_ACT_COUNT + acts[q]] = acc[2 + 2 * q] / (double)rows_in;
        }
    }
    for (int b = 0; b < c->B; b++) {
        const double da_norm2 = c->pa_norm2[b];
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
    const float *y = e->y;  // MXP_EXEC_LINEAR_OUT (exec_for)
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
        const mxp_format *ft = mxp_format_get(f);
        const uint8_t *wq = c->qc->real[(size_t)e->node * MXP_FMT_COUNT + (size_t)f];
        const size_t rb = mxp_row_bytes(ft, I);
#pragma omp parallel
        {
            wt_scratch ts = wt_scratch_at(c->wscr, c->widest_in, omp_get_thread_num());
#pragma omp for schedule(static)
            for (int o = 0; o < O; o++) {
                if (wq) ft->dequantize_row(wq + (size_t)o * rb, c->fqw + (size_t)o * I, I);
                else mxp_fake_quant_weight_row(ft, mxp_param_rows(W, o, 1, ts.wrow), c->fqw + (size_t)o * I, I, ts.qb);
            }
        }
        mxp_linear_fwd(c->yq, xin, c->fqw, bias, c->B * T, I, O);
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
    const mxp_param *E = &g->params[g->nodes[e->node].w];
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
        // the table's bytes in f when the calibration cache holds them (the same values)
        const uint8_t *wq = c->qc->real[(size_t)op->node * MXP_FMT_COUNT + (size_t)f];
        const size_t rb = mxp_row_bytes(ft, C);
#pragma omp parallel
        {
            wt_scratch ts = wt_scratch_at(c->wscr, c->widest_in, omp_get_thread_num());
#pragma omp for schedule(static)
            for (int r = 0; r < N; r++) {
                const float *x = mxp_param_rows(E, tok[r], 1, ts.wrow), *dy = e->dy + (size_t)r * C;
                float *q = c->erow + (size_t)r * C;
                if (wq) ft->dequantize_row(wq + (size_t)tok[r] * rb, q, C);
                else mxp_fake_quant_weight_row(ft, x, q, C, c->escratch + (size_t)r * c->erow_bytes);
                double d = 0, fi = 0;
                for (int i = 0; i < C; i++) {
                    double p = ((double)q[i] - x[i]) * dy[i];
                    d += p;
                    fi += p * p;
                }
                c->row_dot[r] = d;
                c->row_fish[r] = fi;
            }
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

// Mean squared error of an embedding op's table in format f (the linear ops' come out of
// weight_terms' pass): its rows are rounded here one at a time, summed in row order.
static mxp_status embed_weight_var(const mxp_graph *g, const mxp_sens_op *o, mxp_format_id f, double *out,
                                   mxp_err *err) {
    const mxp_param *W = &g->params[g->nodes[o->node].w];
    size_t nw = (size_t)o->in * o->out;
    double acc = 0;
    const mxp_format *ft = mxp_format_get(f);
    size_t rb = mxp_row_bytes(ft, o->in);
    double *row = malloc((size_t)o->out * sizeof *row);  // per-row sums, added in row order
    if (!row) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    int ok = 1;
#pragma omp parallel reduction(& : ok)
    {
        float *y = malloc((size_t)o->in * sizeof *y), *xb = malloc((size_t)o->in * sizeof *xb);
        void *q = malloc(rb);
        ok = y && q && xb;
#pragma omp for schedule(static)
        for (int r = 0; r < o->out; r++) {
            if (!y || !q || !xb) continue;
            const float *x = mxp_param_rows(W, r, 1, xb);
            mxp_fake_quant_weight_row(ft, x, y, o->in, q);
            double a = 0;
            for (int i = 0; i < o->in; i++) a += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
            row[r] = a;
        }
        free(y);
        free(xb);
        free(q);
    }
    if (ok)
        for (int r = 0; r < o->out; r++) acc += row[r];
    free(row);
    if (!ok) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    *out = acc / (double)nw;
    return MXP_OK;
}

// Drop the quantized copies the pass kept (MXP_QMODE_REAL; the check that may follow uses
// fake-quantized ones).
static void drop_cached(const mxp_sens *s, mxp_qcache *qc) {
    for (int i = 0; i < s->n_ops; i++)
        for (int k = 0; k < s->n_formats; k++) mxp_qcache_drop_one(qc, s->ops[i].node, s->formats[k], MXP_QMODE_REAL);
}

// The widths the pass's buffers are sized by: the widest op input and output, the largest
// weight, the embedding's width (0 if no op is an embedding) and its widest quantized row.
typedef struct op_extents {
    size_t widest_in, widest_out, biggest, embed_w, erow_bytes;
} op_extents;

static op_extents extents_of(const mxp_sens *s) {
    op_extents x = {.widest_in = 1, .widest_out = 1, .biggest = 1};
    for (int i = 0; i < s->n_ops; i++) {
        if (s->ops[i].embed >= 0) {
            x.embed_w = (size_t)s->ops[i].in;
            for (int k = 0; k < s->n_formats; k++) {
                if (!s->ops[i].ok[s->formats[k]]) continue;
                size_t rb = mxp_row_bytes(mxp_format_get(s->formats[k]), s->ops[i].in);
                if (rb > x.erow_bytes) x.erow_bytes = rb;
            }
        }
        if ((size_t)s->ops[i].in > x.widest_in) x.widest_in = (size_t)s->ops[i].in;
        if ((size_t)s->ops[i].out > x.widest_out) x.widest_out = (size_t)s->ops[i].out;
        size_t w = (size_t)s->ops[i].in * (size_t)s->ops[i].out;
        if (w > x.biggest) x.biggest = w;
    }
    return x;
}

// Samples whose weight gradients are formed at once in a batch of B (see DW_BUDGET).
static int grads_at_once(size_t biggest, int B) {
    int G = DW_BUDGET / (biggest * sizeof(float)) < (size_t)B ? (int)(DW_BUDGET / (biggest * sizeof(float))) : B;
    if (G > MXP_SENS_MAX_G) G = MXP_SENS_MAX_G;
    return G < 1 ? 1 : G;
}

// Bytes of the hook's buffers for batches of B (what mxp_sens_accumulate allocates beside the
// executor, the per-sample records and small per-op arrays left out).
static size_t hook_bytes(const mxp_sens *s, int B, int want_fisher) {
    const op_extents x = extents_of(s);
    const size_t N = (size_t)B * (size_t)s->seq_len;
    size_t b = (size_t)grads_at_once(x.biggest, B) * x.biggest * sizeof(float);  // dw
    b += 2 * N * x.widest_in * sizeof(float);                                     // pre, ea
    if (want_fisher) b += x.biggest * sizeof(float) + N * (x.widest_in + x.widest_out) * sizeof(float);  // fqw, xq, yq
    b += (size_t)omp_get_max_threads() * wt_scratch_bytes(x.widest_in);
    b += wt_parts(x.biggest, grads_at_once(x.biggest, B)) * sizeof(double);
    if (x.embed_w) b += N * (x.embed_w * sizeof(float) + (x.erow_bytes ? x.erow_bytes : 1) + 2 * sizeof(double));
    return b;
}

mxp_status mxp_sens_memory(const mxp_sens *s, const mxp_graph *g, int batch, int want_fisher, size_t *in_memory,
                           size_t *streaming, mxp_err *err) {
    int B = batch < 1 ? 1 : batch;
    int *cuts, nc;
    mxp_status st = mxp_graph_cut_nodes(g, &cuts, &nc, err);
    if (st) return st;
    size_t hb = hook_bytes(s, B, want_fisher);
    size_t a = mxp_exec_bytes(g, B, s->seq_len, MXP_EXEC_BACKWARD, NULL, 0);
    size_t b = mxp_exec_bytes(g, B, s->seq_len, MXP_EXEC_BACKWARD, cuts, nc);
    free(cuts);
    *in_memory = a > SIZE_MAX - hb ? SIZE_MAX : a + hb;
    *streaming = b > SIZE_MAX - hb ? SIZE_MAX : b + hb;
    return MXP_OK;
}

// After each segment of a batch's pass (mxp_segment_done): streaming, the segment's mapped
// weights leave the resident set (after its forward, unless its backward follows at once, and
// after its backward); after a backward, an error a hook call recorded ends the pass.
// With progress on, a streamed batch (long on a big model) also says which segment is done.
// A stop request ends a streamed batch here (its records are dropped: the table holds whole
// batches only), so Ctrl-C does not wait for the rest of a batch that may take minutes.
static mxp_status segment_done(void *vctx, int first, int last, int backward, mxp_err *err) {
    calib_ctx *c = vctx;
    const mxp_exec *ex = c->ex;
    if (ex->n_seg) mxp_model_release_nodes(c->m, first, last);
    if (ex->n_seg && c->stop && *c->stop && !c->st)
        return mxp_fail(err, MXP_ERR_INTERRUPTED, "calibration interrupted during a batch, after %zu of %zu samples",
                        c->done, c->total);
    if (ex->n_seg && c->progress) {
        int k = 0;
        while (k < ex->n_seg && ex->seg[k] != first) k++;
        fprintf(stderr, "\rcalibrate: %zu/%zu samples, this batch: %s %d/%d segments  %.1fs elapsed   ",
                c->done, c->total, backward ? "backward" : "forward", backward ? ex->n_seg - k : k + 1, ex->n_seg,
                mxp_now() - c->t0);
    }
    return backward ? c->st : MXP_OK;
}

// One batch: forward, the loss of each sequence (seq_loss), backward with the hook, whole or
// streaming (mxp_exec_pass: the hook sees the same values either way, bit for bit). Seeded 1/T
// per position: each row block carries the gradient of its own sample's mean loss.
static mxp_status run_batch(calib_ctx *c, mxp_exec *ex, double *seq_loss, mxp_err *err) {
    return mxp_exec_pass(ex, 1.0f / (float)c->T, seq_loss, NULL, hook, segment_done, c, err);
}

// The executor for batches of B: whole, or streaming over the cut nodes when cuts is given.
// The fisher terms read each linear op's output.
static mxp_status exec_for(mxp_exec *ex, const mxp_graph *g, int B, int T, int want_fisher, const int *cuts,
                           int n_cuts, mxp_err *err) {
    unsigned flags = MXP_EXEC_BACKWARD | (want_fisher ? MXP_EXEC_LINEAR_OUT : 0);
    if (cuts) return mxp_exec_init_stream(ex, g, B, T, flags, cuts, n_cuts, err);
    return mxp_exec_init(ex, g, B, T, flags, err);
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
    // the weights every format will quantize: the checks of mxp_quantize_matrix up front (the
    // f16 scales of the block formats are checked as the first batch quantizes them). A block
    // format's check (finite weights) is part of f16's and bf16's; one of them is enough.
    for (int i = 0; i < s->n_ops; i++) {
        const mxp_node *nd = &g->nodes[s->ops[i].node];
        int plain_done = 0;
        for (int k = 0; k < s->n_formats; k++) {
            mxp_format_id f = s->formats[k];
            if (f == MXP_FMT_F32 || !s->ops[i].ok[f]) continue;
            if (f != MXP_FMT_F16 && f != MXP_FMT_BF16 && plain_done++) continue;
            mxp_status st = mxp_param_check_values(f, &g->params[nd->w], nd->name, err);
            if (st) return st;
        }
        // streaming: the whole model's mapped weights must not pile up in the resident set
        // before the first batch; each weight read here is released at once (so below)
        if (run->stream) mxp_model_release_param(m, nd->w);
    }
    // The quantized bytes of the (op, format) pairs whose quantizers are slow, kept within
    // run->cache_bytes so that they run once instead of once per batch: ggml's block formats
    // without a row prefix, the super-block ones (k-quants: their quantizers search scales)
    // first, ops in graph order. Chunks then dequantize a piece of the bytes (the same values).
    size_t cached = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < s->n_ops; i++)
            for (int k = 0; k < s->n_formats; k++) {
                mxp_format_id f = s->formats[k];
                const mxp_format *ft = mxp_format_get(f);
                size_t bytes;
                if (f == MXP_FMT_F32 || !s->ops[i].ok[f] || ft->block_size == 1 || ft->row_prefix_bytes ||
                    (ft->block_size >= 256) != (pass == 0) ||
                    mxp_format_matrix_bytes(f, s->ops[i].out, s->ops[i].in, &bytes, NULL) ||
                    cached + bytes > run->cache_bytes || qc->real[(size_t)s->ops[i].node * MXP_FMT_COUNT + (size_t)f])
                    continue;
                mxp_status st = mxp_qcache_prepare(qc, s->ops[i].node, f, MXP_QMODE_REAL, err);
                if (st) {
                    drop_cached(s, qc);
                    return st;
                }
                cached += bytes;
                if (run->stream) mxp_model_release_param(m, g->nodes[s->ops[i].node].w);
            }
    calib_ctx c = {.s = s, .m = m, .qc = qc, .g = g, .B = B, .T = T, .want_fisher = run->want_fisher,
                   .rec_len = record_len(s), .err = err};
    const op_extents x = extents_of(s);
    const size_t widest_in = x.widest_in, widest_out = x.widest_out, biggest = x.biggest, embed_w = x.embed_w;
    c.erow_bytes = x.erow_bytes;
    size_t N = (size_t)B * T;
    c.G = grads_at_once(biggest, B);
    c.widest_in = widest_in;
    // one round's records (P batches) must fit the int counts of a gather
    if (c.rec_len * (size_t)B * (size_t)P > (size_t)INT32_MAX)
        return mxp_fail(err, MXP_ERR_ARG, "--batch %d: %d processes' records of %zu terms per sample are too many",
                        B, P, c.rec_len);
    c.op_of_node = calloc((size_t)g->n_nodes, sizeof *c.op_of_node);
    c.dw = malloc((size_t)c.G * biggest * sizeof(float));
    c.fqw = run->want_fisher ? malloc(biggest * sizeof(float)) : NULL;
    c.wscr = mxp_aligned_alloc((size_t)omp_get_max_threads() * wt_scratch_bytes(widest_in));
    c.have_var_w = calloc((size_t)s->n_ops, 1);
    c.pre = malloc(N * widest_in * sizeof(float));
    c.arow = malloc((size_t)omp_get_max_threads() * widest_in * sizeof(float));
    c.rowp = malloc(N * (1 + 2 * MXP_ACT_COUNT) * sizeof(double));
    c.pa_norm2 = malloc((size_t)B * sizeof(double));
    c.xq = run->want_fisher ? malloc(N * widest_in * sizeof(float)) : NULL;
    c.yq = run->want_fisher ? malloc(N * widest_out * sizeof(float)) : NULL;
    c.var_w = calloc((size_t)s->n_ops, sizeof *c.var_w);
    c.dw_dot = calloc((size_t)B * MXP_FMT_COUNT, sizeof *c.dw_dot);
    c.dw_norm2 = calloc((size_t)B, sizeof *c.dw_norm2);
    c.da = calloc((size_t)B * MXP_ACT_COUNT, sizeof *c.da);
    c.va = calloc((size_t)B * MXP_ACT_COUNT, sizeof *c.va);
    c.parts = calloc(wt_parts(biggest, c.G), sizeof *c.parts);
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
    if (!c.op_of_node || !c.dw || !c.wscr || !c.have_var_w || !c.pre || !c.arow || !c.rowp || !c.pa_norm2 ||
        (run->want_fisher && (!c.xq || !c.yq || !c.fqw)) || !c.var_w || !c.dw_dot || !c.dw_norm2 || !c.da ||
        !c.va || !c.parts || !c.rec ||
        (embed_w && (!c.erow || !c.escratch || !c.row_dot || !c.row_fish || !c.keys || !c.gsum)) ||
        (rank == 0 && !all) || !counts || !batch || !seq_loss)
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory for the calibration buffers");
    for (int i = 0; !st && i < s->n_ops; i++) {
        c.op_of_node[s->ops[i].node] = i;
        if (s->ops[i].embed >= 0) c.op_of_node[s->ops[i].embed] = i;
        if (s->ops[i].node != s->ops[i].embed) continue;  // a linear op: weight_terms' pass
        for (int k = 0; k < s->n_formats && !st; k++) {
            mxp_format_id f = s->formats[k];
            if (f == MXP_FMT_F32 || !s->ops[i].ok[f]) continue;
            st = embed_weight_var(g, &s->ops[i], f, &c.var_w[i][f], err);
        }
        if (run->stream) mxp_model_release_param(m, g->nodes[s->ops[i].node].w);
        if (!st) c.have_var_w[i] = 1;
    }
    int *cuts = NULL, n_cuts = 0;  // streaming: the cut nodes the executor's segments end at
    if (!st && run->stream) st = mxp_graph_cut_nodes(g, &cuts, &n_cuts, err);
    if (!st) st = exec_for(&ex, g, B, T, run->want_fisher, cuts, n_cuts, err);
    c.ex = &ex;
    if (run->want_fisher && rank == 0) s->has_fisher = 1;
    double t0 = mxp_now();
    size_t done = 0;  // samples of whole rounds, the same on every rank
    c.progress = run->progress;
    c.stop = P == 1 ? run->stop : NULL;  // with several ranks only between rounds, all at once
    c.total = n;
    c.t0 = t0;
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
                st = exec_for(&ex, g, nb, T, run->want_fisher, cuts, n_cuts, err);
                if (st) break;
            }
            memcpy(batch, seq + (first + (size_t)rank) * (size_t)B * (size_t)(T + 1),
                   (size_t)nb * (T + 1) * sizeof *batch);
            st = mxp_exec_set_batch(&ex, batch, err);
            if (st) break;
            memset(c.rec, 0, (size_t)nb * c.rec_len * sizeof *c.rec);
            c.done = done;
            st = run_batch(&c, &ex, seq_loss, err);
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
    free(cuts);
    drop_cached(s, qc);
    free(c.op_of_node);
    free(c.dw);
    free(c.fqw);
    free(c.wscr);
    free(c.have_var_w);
    free(c.pre);
    free(c.arow);
    free(c.rowp);
    free(c.pa_norm2);
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

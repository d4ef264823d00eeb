// check.c: the prediction check of the sensitivity table (see check.h).
#include "method/check.h"

#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "io/tensors.h"
#include "runtime/exec.h"

typedef struct {
    double v;
    size_t i;
} ranked;

// Work space of the statistics below, allocated once before the report is written, for up to
// n pairs: the report is then printed whole or not at all.
typedef struct {
    ranked *rk;        // (n)
    double *rx, *ry;   // (n) ranks
    double *q;         // (n) ratios
    double *pp, *mm;   // (n) one format's pairs
} stats_work;

static void stats_work_free(stats_work *w) {
    free(w->rk);
    free(w->rx);
    free(w->ry);
    free(w->q);
    free(w->pp);
    free(w->mm);
    *w = (stats_work){0};
}

static int stats_work_init(stats_work *w, size_t n) {
    if (!n) n = 1;
    w->rk = calloc(n, sizeof *w->rk);
    w->rx = calloc(n, sizeof(double));
    w->ry = calloc(n, sizeof(double));
    w->q = calloc(n, sizeof(double));
    w->pp = calloc(n, sizeof(double));
    w->mm = calloc(n, sizeof(double));
    if (w->rk && w->rx && w->ry && w->q && w->pp && w->mm) return 1;
    stats_work_free(w);
    return 0;
}

static int cmp_ranked(const void *a, const void *b) {
    double x = ((const ranked *)a)->v, y = ((const ranked *)b)->v;
    return (x > y) - (x < y);
}

// r (n) = the rank of each x (1-based), ties given their average rank. t (n) is work space.
static void ranks(const double *x, size_t n, double *r, ranked *t) {
    for (size_t i = 0; i < n; i++) t[i] = (ranked){x[i], i};
    qsort(t, n, sizeof *t, cmp_ranked);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && t[j + 1].v == t[i].v) j++;
        double avg = 0.5 * (double)(i + j) + 1;
        for (size_t k = i; k <= j; k++) r[t[k].i] = avg;
        i = j + 1;
    }
}

// Spearman rank correlation of x and y (n pairs, n no more than w was made for).
static double spearman(const double *x, const double *y, size_t n, stats_work *w) {
    if (n < 2) return 0;
    double *rx = w->rx, *ry = w->ry;
    ranks(x, n, rx, w->rk);
    ranks(y, n, ry, w->rk);
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx += rx[i];
        my += ry[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
}

// median and 10th/90th percentiles of measured/predicted over pairs with predicted > 0
static void ratio_stats(const double *pred, const double *meas, size_t n, stats_work *w, double *med, double *p10,
                        double *p90) {
    double *q = w->q;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (pred[i] > 0) q[k++] = meas[i] / pred[i];
    qsort(q, k, sizeof *q, mxp_cmp_double);
    *med = k ? q[k / 2] : 0;
    *p10 = k ? q[k / 10] : 0;
    *p90 = k ? q[(k * 9) / 10 < k ? (k * 9) / 10 : k - 1] : 0;
}

static void set_f32(mxp_graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        if (mxp_node_quantizable(&g->nodes[i])) g->nodes[i].fmt = MXP_FMT_F32;
}

mxp_status mxp_check_predictions(const mxp_sens *s, mxp_model *m, mxp_qcache *qc, const int32_t *held, size_t n_held,
                                 int K, uint64_t seed, const char *csv, FILE *out, int progress, volatile int *stop,
                                 mxp_calib_result *r, mxp_err *err) {
    mxp_graph *g = &m->graph;
    const int T = s->seq_len, n_ops = s->n_ops;
    // single-op pairs: (op, format) for every quantized format the op can take
    size_t n_single = 0;
    for (int i = 0; i < n_ops; i++)
        for (int k = 0; k < s->n_formats; k++) n_single += s->formats[k] != MXP_FMT_F32 && s->ops[i].ok[s->formats[k]];
    size_t n_pairs = n_single + (size_t)K;
    int *pair_op = calloc(n_pairs, sizeof *pair_op);
    mxp_format_id *pair_fmt = calloc(n_pairs, sizeof *pair_fmt);
    unsigned char *config = calloc((size_t)K * (size_t)n_ops, 1);  // format ids of the configurations
    double *pred[MXP_METRIC_COUNT], *meas = calloc(n_pairs, sizeof *meas);
    for (int mt = 0; mt < MXP_METRIC_COUNT; mt++) pred[mt] = calloc(n_pairs, sizeof(double));
    mxp_exec ex = {0};
    stats_work work = {0};
    mxp_status st = MXP_OK;
    if (!pair_op || !pair_fmt || !config || !meas || !pred[0] || !pred[1] || !pred[2] ||
        !stats_work_init(&work, n_pairs))
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    size_t p = 0;
    for (int i = 0; !st && i < n_ops; i++)
        for (int k = 0; k < s->n_formats; k++) {
            mxp_format_id f = s->formats[k];
            if (f == MXP_FMT_F32 || !s->ops[i].ok[f]) continue;
            pair_op[p] = i;
            pair_fmt[p] = f;
            for (int mt = 0; mt < MXP_METRIC_COUNT; mt++) pred[mt][p] = mxp_sens_mean(s, i, f, (mxp_metric)mt);
            p++;
        }
    // K random configurations: configuration k quantizes each op with probability ((k+1)/K)^2,
    // in a format drawn uniformly from the op's candidates, so predictions span decades.
    mxp_rng rng;
    mxp_rng_seed(&rng, seed ^ 0x5eed5eedULL);
    for (int k = 0; !st && k < K; k++) {
        double prob = ((double)(k + 1) / K) * ((double)(k + 1) / K);
        for (int i = 0; i < n_ops; i++) {
            mxp_format_id cand[MXP_FMT_COUNT];
            int nc = 0;
            for (int q = 0; q < s->n_formats; q++)
                if (s->formats[q] != MXP_FMT_F32 && s->ops[i].ok[s->formats[q]]) cand[nc++] = s->formats[q];
            mxp_format_id f = MXP_FMT_F32;
            if (nc && mxp_rng_uniform(&rng) < prob) f = cand[mxp_rng_below(&rng, (uint64_t)nc)];
            config[(size_t)k * n_ops + i] = (unsigned char)f;
            for (int mt = 0; mt < MXP_METRIC_COUNT; mt++) pred[mt][n_single + k] += mxp_sens_mean(s, i, f, (mxp_metric)mt);
        }
    }
    // the configurations may put any op in any of its candidates: the fake-quantized copy of
    // every (op, format) pair, made once here (4 bytes per weight per format: the check's memory
    // grows with the number of formats, the calibration's does not)
    for (size_t q = 0; !st && q < n_single; q++)
        st = mxp_qcache_prepare(qc, s->ops[pair_op[q]].node, pair_fmt[q], MXP_QMODE_FAKE, err);
    if (!st) st = mxp_exec_init(&ex, g, 1, T, 0, err);
    if (!st) {
        set_f32(g);
        st = mxp_exec_use_formats(&ex, qc, MXP_QMODE_FAKE, err);
    }
    // configurations may use formats the calibration prepared only: the FAKE copies above,
    // and the embedding's, read as rows of the quantized table (exec.c): prepared here
    for (int i = 0; !st && i < n_ops; i++)
        for (int q = 0; !st && s->ops[i].embed >= 0 && q < s->n_formats; q++)
            if (s->formats[q] != MXP_FMT_F32 && s->ops[i].ok[s->formats[q]])
                st = mxp_qcache_prepare(qc, s->ops[i].embed, s->formats[q], MXP_QMODE_REAL, err);
    double t0 = mxp_now();
    for (size_t n = 0; !st && n < n_held; n++) {
        if (stop && *stop) {
            st = mxp_fail(err, MXP_ERR_INTERRUPTED, "check interrupted");
            break;
        }
        st = mxp_exec_set_batch(&ex, held + n * (size_t)(T + 1), err);
        if (st) break;
        set_f32(g);
        mxp_exec_forward(&ex, 0, g->n_nodes);
        double L0 = mxp_exec_loss(&ex, NULL);
        // single ops, last op first: nodes before the op (before the embedding a head is tied
        // to) keep their reference values
        for (size_t q = n_single; q-- > 0;) {
            const mxp_sens_op *o = &s->ops[pair_op[q]];
            int node = o->node, from = o->embed >= 0 && o->embed < node ? o->embed : node;
            g->nodes[node].fmt = pair_fmt[q];
            mxp_exec_forward(&ex, from, g->n_nodes);
            double d = mxp_exec_loss(&ex, NULL) - L0;
            meas[q] += d * d;
            g->nodes[node].fmt = MXP_FMT_F32;
        }
        for (int k = 0; k < K; k++) {
            for (int i = 0; i < n_ops; i++) g->nodes[s->ops[i].node].fmt = config[(size_t)k * n_ops + i];
            mxp_exec_forward(&ex, 0, g->n_nodes);
            double d = mxp_exec_loss(&ex, NULL) - L0;
            meas[n_single + k] += d * d;
        }
        set_f32(g);
        if (progress) {
            double el = mxp_now() - t0;
            fprintf(stderr, "\rcheck: %zu/%zu held-out samples  %.1fs elapsed, ETA %.1fs   ", n + 1, n_held, el,
                    el * (double)(n_held - n - 1) / (double)(n + 1));
            if (n + 1 == n_held) fprintf(stderr, "\n");
        }
    }
    set_f32(g);
    mxp_exec_free(&ex);
    if (!st) {
        for (size_t q = 0; q < n_pairs; q++) meas[q] /= (double)n_held;
        fprintf(out, "prediction check: %zu held-out samples of %d tokens (evaluation split), measured loss MSE = "
                     "mean over samples of (L_n(quantized) - L_n(f32))^2\n", n_held, T);
        fprintf(out, "%-28s %-7s %9s %14s %18s\n", "set", "metric", "spearman", "median m/p", "p10 .. p90 m/p");
        for (int set = 0; set < 2; set++) {
            size_t lo = set ? n_single : 0, cnt = set ? (size_t)K : n_single;
            if (!cnt) continue;
            for (int mt = 0; mt < MXP_METRIC_COUNT; mt++) {
                if (mt == MXP_METRIC_FISHER && !s->has_fisher) continue;
                double rho = spearman(pred[mt] + lo, meas + lo, cnt, &work), med, p10, p90;
                ratio_stats(pred[mt] + lo, meas + lo, cnt, &work, &med, &p10, &p90);
                char label[64];
                snprintf(label, sizeof label, set ? "whole configurations (%zu)" : "single ops (%zu)", cnt);
                fprintf(out, "%-28s %-7s %9.3f %14.3g %9.3g .. %-8.3g\n", label, mxp_metric_name((mxp_metric)mt), rho,
                        med, p10, p90);
                if (mt < 3) {
                    (set ? r->config_spearman : r->single_spearman)[mt] = rho;
                    (set ? r->config_median_ratio : r->single_median_ratio)[mt] = med;
                }
            }
        }
        // where the first-order, additive model holds or breaks: taylor by format (single ops)
        fprintf(out, "taylor, single ops by format:  format  pairs  spearman  median m/p  p10 .. p90\n");
        for (int k = 0; k < s->n_formats; k++) {
            mxp_format_id f = s->formats[k];
            if (f == MXP_FMT_F32) continue;
            double *pp = work.pp, *mm = work.mm;
            size_t c = 0;
            for (size_t q = 0; q < n_single; q++)
                if (pair_fmt[q] == f) {
                    pp[c] = pred[MXP_METRIC_TAYLOR][q];
                    mm[c++] = meas[q];
                }
            double med, p10, p90;
            ratio_stats(pp, mm, c, &work, &med, &p10, &p90);
            fprintf(out, "%31s %-7s %6zu %9.3f %11.3g  %.3g .. %.3g\n", "", mxp_format_get(f)->name, c,
                    spearman(pp, mm, c, &work), med, p10, p90);
        }
        double lo = INFINITY, hi = 0;
        for (int k = 0; k < K; k++) {
            double v = pred[MXP_METRIC_TAYLOR][n_single + k];
            if (v > 0 && v < lo) lo = v;
            if (v > hi) hi = v;
        }
        if (K) fprintf(out, "configurations span predicted loss MSE %.3g .. %.3g (%.1f decades)\n", lo, hi,
                       hi > 0 && lo < INFINITY ? log10(hi / lo) : 0.0);
        r->checked = 1;
    }
    if (!st && csv) {
        size_t cap = 256 + n_pairs * 200, len = 0;
        char *buf = malloc(cap);
        if (!buf) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        if (buf) {
            len += (size_t)snprintf(buf, cap, "kind,id,format,pred_taylor,pred_fisher,pred_noise,measured\n");
            for (size_t q = 0; q < n_pairs && len < cap; q++) {
                int single = q < n_single;
                len += (size_t)snprintf(buf + len, cap - len, "%s,%s,%s,%.9g,%.9g,%.9g,%.9g\n",
                                        single ? "single" : "config", single ? s->ops[pair_op[q]].name : "",
                                        single ? mxp_format_get(pair_fmt[q])->name : "mixed", pred[0][q],
                                        s->has_fisher ? pred[1][q] : NAN, pred[2][q], meas[q]);
            }
            st = mxp_write_file_atomic(csv, buf, len < cap ? len : cap, err);
            free(buf);
        }
    }
    stats_work_free(&work);
    free(pair_op);
    free(pair_fmt);
    free(config);
    free(meas);
    for (int mt = 0; mt < MXP_METRIC_COUNT; mt++) free(pred[mt]);
    return st;
}

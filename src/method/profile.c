// profile.c: measured time gain per sequential sub-graph (docs/DESIGN.md 1.2) and the check of its
// prediction on whole-model configurations.
//
// How a time is measured (every figure in the latency table):
//  - A timer (profile.h) runs a node range in the configuration of the graph's slots: the ggml
//    timer (default, profile_ggml.c: the range as a ggml graph on llama.cpp's CPU backend) or
//    the native one (below: mixprec's executor in real mode). Everything else here is shared.
//  - The executor holds realistic activations: the reference (f32) model has run once on the
//    workload's tokens (calibration text, or seeded random ids), so every sub-graph reads the
//    real input it would see. Decode: the KV cache holds `tokens` positions and the pass is
//    one token per sequence at that position (the attention writes the same cache slot again
//    on every run, so repeated runs see the same state).
//  - Before each timed run, a buffer as large as the rest of the model's f32 linear weights
//    (at most flush_max bytes) is read by every thread, the sub-graph's own weights (in the
//    formats being timed) are evicted from every cache level (mxp_evict), then its input is
//    read: the caches are then as they are when the sub-graph runs inside the whole model (the
//    other weights have just passed through them, its own come from memory), not warm from
//    the previous repeat. A whole-model run (the check) is not evicted: it runs as in a token
//    loop, its caches as its previous run left them. The eviction matters even when the whole
//    model would fit the last level: on the bundled model (19 MB of f32 weights, a VM reporting a 32 MiB L3) the
//    sub-graphs' gains without it were half of those llama.cpp measured end to end
//    (BENCHMARKS.md, "Deployed in llama.cpp").
//  - A configuration is timed in rounds interleaved with the reference (ABBA order), after
//    one untimed warm-up run of each. Its gain is the median of the per-round differences
//    (reference - configuration), which cancels slow drifts of the machine; rounds continue
//    until the 95% confidence interval of that median is within rel_ci of the reference time
//    or the configuration's share of the time budget is spent (at least MIN_ROUNDS rounds).
//    The CI is the normal approximation of the median's: 1.96 * 1.2533 * sigma / sqrt(n)
//    with sigma = IQR / 1.349 (robust to the outliers a shared machine produces).
//  - Threads (native timer; ggml's pool places its own threads as in llama.cpp, and the flush
//    is then read by the calling thread alone): unless OMP_PROC_BIND is set or pinning is
//    disabled, each OpenMP thread of the pool (which OpenBLAS's OpenMP build shares) is pinned with sched_setaffinity to one CPU
//    of the process's allowed set, thread k on the k-th allowed CPU, while mxp_profile runs;
//    the threads' previous affinity is restored before it returns.
#include "method/profile.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/rng.h"
#include "io/data.h"
#include "io/jsonout.h"
#include "method/llama_bench.h"
#include "method/plan.h"
#include "runtime/exec.h"

// OpenBLAS's build description (declared here: cblas.h pulls in complex.h, whose macro I
// collides with our shape names).
char *openblas_get_config(void);
char *openblas_get_corename(void);

#define MIN_ROUNDS 5
#define MAX_ROUNDS 400

// ---- workload, spaces, classes ----

mxp_status mxp_workload_parse(const char *s, int batch, int max_pos, mxp_workload *w, mxp_err *err) {
    memset(w, 0, sizeof *w);
    const char *num;
    if (s && !strncmp(s, "prefill:", 8)) num = s + 8;
    else if (s && !strncmp(s, "decode:", 7)) num = s + 7, w->decode = 1;
    else return mxp_fail(err, MXP_ERR_ARG, "--workload '%s': expected prefill:T or decode:L", s ? s : "");
    char *end;
    long v = strtol(num, &end, 10);
    if (end == num || *end || v < 1 || v > (1L << 20))
        return mxp_fail(err, MXP_ERR_ARG, "--workload '%s': the token count must be an integer in [1, 2^20]", s);
    if (batch < 1 || batch > 4096) return mxp_fail(err, MXP_ERR_ARG, "--batch %d: must be in [1, 4096]", batch);
    w->tokens = (int)v;
    w->batch = batch;
    long need = w->decode ? v + 1 : v;
    if (max_pos > 0 && need > max_pos)
        return mxp_fail(err, MXP_ERR_ARG, "--workload '%s' needs %ld positions but the model has at most %d", s, need,
                        max_pos);
    return MXP_OK;
}

void mxp_sg_config_formats(const mxp_sg_space *s, int j, mxp_format_id *fmts) {
    MXP_ASSERT(j >= 0 && j < s->n_configs);
    int digit[64];
    MXP_ASSERT(s->n_groups <= 64);
    for (int q = s->n_groups - 1; q >= 0; q--) {
        digit[q] = j % s->n_choices[q];
        j /= s->n_choices[q];
    }
    for (int k = 0; k < s->n_ops; k++) fmts[k] = s->choices[s->group_of[k] * MXP_FMT_COUNT + digit[s->group_of[k]]];
}

// Does module `name` end in one of the comma-separated members of `list` (after a dot, or
// the whole name)? Returns the member's index + 1, or 0.
static int tie_match(const char *list, const char *name) {
    size_t nl = strlen(name);
    int idx = 0;
    for (const char *p = list; *p; idx++) {
        size_t len = strcspn(p, ",");
        if (len && len <= nl && !strncmp(name + nl - len, p, len) && (len == nl || name[nl - len - 1] == '.'))
            return idx + 1;
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

static int format_fits(mxp_format_id f, int I) { return I % mxp_format_get(f)->block_size == 0; }

void mxp_profile_table_free(mxp_profile_table *t) {
    if (!t) return;
    for (int k = 0; t->space && k < t->part.n; k++) {
        free(t->space[k].group_of);
        free(t->space[k].n_choices);
        free(t->space[k].choices);
    }
    for (int c = 0; t->meas && c < t->n_cls; c++) free(t->meas[c].cfg);
    for (int i = 0; t->ties && i < t->n_ties; i++) free(t->ties[i]);
    for (int r = 0; t->check && r < t->n_check; r++) free(t->check[r].cfg);
    free(t->check);
    free(t->ties);
    free(t->space);
    free(t->cls);
    free(t->meas);
    free(t->shapes);
    free(t->shape_of);
    mxp_partition_free(&t->part);
    memset(t, 0, sizeof *t);
}

static mxp_status build_space(mxp_profile_table *t, const mxp_graph *g, int k, int *tie_used, mxp_err *err) {
    const mxp_subgraph *sg = &t->part.sg[k];
    mxp_sg_space *s = &t->space[k];
    s->n_ops = sg->n_ops;
    s->n_configs = 1;
    if (!sg->n_ops) return MXP_OK;
    s->group_of = malloc((size_t)sg->n_ops * sizeof *s->group_of);
    s->n_choices = calloc((size_t)sg->n_ops, sizeof *s->n_choices);
    s->choices = calloc((size_t)sg->n_ops * MXP_FMT_COUNT, sizeof *s->choices);
    if (!s->group_of || !s->n_choices || !s->choices) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    int tie_group[64];  // group index of each tie list inside this sub-graph
    MXP_ASSERT(t->n_ties <= 64);
    for (int i = 0; i < t->n_ties; i++) tie_group[i] = -1;
    for (int o = 0; o < sg->n_ops; o++) {
        const char *name = g->nodes[sg->ops[o]].name;
        int tie = -1;
        for (int i = 0; i < t->n_ties && tie < 0; i++)
            if (tie_match(t->ties[i], name)) tie = i;
        if (tie >= 0) {
            tie_used[tie] = 1;
            if (tie_group[tie] < 0) tie_group[tie] = s->n_groups++;
            s->group_of[o] = tie_group[tie];
        } else {
            s->group_of[o] = s->n_groups++;
        }
    }
    if (s->n_groups > 64) return mxp_fail(err, MXP_ERR_UNSUPPORTED, "sub-graph %d has more than 64 format groups", k);
    double total = 1;
    for (int q = 0; q < s->n_groups; q++) {
        for (int fi = 0; fi < t->n_formats; fi++) {
            mxp_format_id f = t->formats[fi];
            int fits = 1;
            for (int o = 0; o < sg->n_ops; o++)
                if (s->group_of[o] == q) fits &= format_fits(f, g->nodes[g->nodes[sg->ops[o]].in[0]].cols);
            if (fits) s->choices[q * MXP_FMT_COUNT + s->n_choices[q]++] = f;
        }
        total *= s->n_choices[q];
    }
    if (total > 100000)
        return mxp_fail(err, MXP_ERR_ARG,
                        "sub-graph %d (nodes %d..%d) has %.0f configurations: tie its ops (--tie) or give fewer formats",
                        k, sg->first, sg->last - 1, total);
    s->n_configs = (int)total;
    return MXP_OK;
}

static int same_grouping(const mxp_sg_space *a, const mxp_sg_space *b) {
    if (a->n_ops != b->n_ops || a->n_groups != b->n_groups) return 0;
    for (int o = 0; o < a->n_ops; o++)
        if (a->group_of[o] != b->group_of[o]) return 0;
    for (int q = 0; q < a->n_groups; q++)
        if (a->n_choices[q] != b->n_choices[q] ||
            memcmp(a->choices + q * MXP_FMT_COUNT, b->choices + q * MXP_FMT_COUNT, sizeof(mxp_format_id) * MXP_FMT_COUNT))
            return 0;
    return 1;
}

static double op_macs(const mxp_workload *wl, int O, int I) {
    double rows = (double)wl->batch * (wl->decode ? 1 : wl->tokens);
    return rows * O * (double)I;
}

mxp_status mxp_profile_table_init(mxp_profile_table *t, const mxp_graph *g, const mxp_workload *wl,
                                  const mxp_format_id *formats, int n_formats, const char *const *ties, int n_ties,
                                  mxp_err *err) {
    memset(t, 0, sizeof *t);
    t->wl = *wl;
    if (n_ties > 64) return mxp_fail(err, MXP_ERR_ARG, "at most 64 --tie lists");
    t->formats[t->n_formats++] = MXP_FMT_F32;
    for (int i = 0; i < n_formats; i++) {
        int dup = 0;
        for (int k = 0; k < t->n_formats; k++) dup |= t->formats[k] == formats[i];
        if (!dup) t->formats[t->n_formats++] = formats[i];
    }
    mxp_status st = mxp_partition_build(&t->part, g, err);
    if (st) return st;
    int n = t->part.n;
    t->space = calloc((size_t)n, sizeof *t->space);
    t->cls = calloc((size_t)n, sizeof *t->cls);
    t->meas = calloc((size_t)n, sizeof *t->meas);
    t->shapes = calloc((size_t)g->n_nodes, sizeof *t->shapes);
    t->shape_of = calloc((size_t)g->n_nodes, sizeof *t->shape_of);
    t->ties = calloc((size_t)n_ties + 1, sizeof *t->ties);
    if (!t->space || !t->cls || !t->meas || !t->shapes || !t->shape_of || !t->ties) goto nomem;
    for (int i = 0; i < n_ties; i++) {
        if (!(t->ties[i] = mxp_strdup(ties[i]))) goto nomem;
        t->n_ties = i + 1;
    }
    int tie_used[64] = {0};
    // prefill: past llama.cpp's output cut only the last position of each sequence goes on, so
    // a sub-graph there does not share the measurement of its twin earlier in the model
    int cut = wl->decode ? -1 : mxp_ggml_output_cut(g);
    for (int k = 0; k < n; k++) {
        st = build_space(t, g, k, tie_used, err);
        if (st) return st;
        t->cls[k] = -1;
        int tail = cut >= 0 && t->part.sg[k].last - 1 > cut;
        for (int c = 0; c < t->n_cls && t->cls[k] < 0; c++) {
            int r = t->meas[c].rep, r_tail = cut >= 0 && t->part.sg[r].last - 1 > cut;
            if (t->part.sg[r].sig == t->part.sg[k].sig && r_tail == tail && same_grouping(&t->space[r], &t->space[k]))
                t->cls[k] = c;
        }
        if (t->cls[k] < 0) {
            mxp_class_meas *cm = &t->meas[t->n_cls];
            cm->rep = k;
            if (!(cm->cfg = calloc((size_t)t->space[k].n_configs, sizeof *cm->cfg))) goto nomem;
            t->cls[k] = t->n_cls++;
        }
    }
    for (int i = 0; i < n_ties; i++)
        if (!tie_used[i]) return mxp_fail(err, MXP_ERR_ARG, "--tie %s: no quantizable op of the model matches it", ties[i]);
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *nd = &g->nodes[i];
        if (nd->op != MXP_OP_LINEAR) continue;
        int O = nd->cols, I = g->nodes[nd->in[0]].cols, s = -1;
        for (int k = 0; k < t->n_shapes && s < 0; k++)
            if (t->shapes[k].O == O && t->shapes[k].I == I && t->shapes[k].has_b == nd->has_b) s = k;
        if (s < 0) {
            s = t->n_shapes++;
            mxp_op_shape *sh = &t->shapes[s];
            sh->O = O;
            sh->I = I;
            sh->has_b = nd->has_b;
            sh->rep = i;
            sh->macs = op_macs(wl, O, I);
            for (int fi = 0; fi < t->n_formats; fi++) sh->ok[t->formats[fi]] = format_fits(t->formats[fi], I);
        }
        t->shape_of[i] = s;
    }
    return MXP_OK;
nomem:
    return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
}

static double weight_bytes(mxp_format_id f, int O, int I) {
    size_t b = 0;
    if (mxp_format_matrix_bytes(f, O, I, &b, NULL)) return NAN;
    return (double)b;
}

double mxp_profile_mem_gain(const mxp_profile_table *t, const mxp_graph *g, int k, int j) {
    const mxp_subgraph *sg = &t->part.sg[k];
    mxp_format_id fm[256];
    MXP_ASSERT(sg->n_ops <= 256);
    mxp_sg_config_formats(&t->space[k], j, fm);
    double gain = 0;
    for (int o = 0; o < sg->n_ops; o++) {
        const mxp_node *nd = &g->nodes[sg->ops[o]];
        int I = g->nodes[nd->in[0]].cols;
        gain += weight_bytes(MXP_FMT_F32, nd->cols, I) - weight_bytes(fm[o], nd->cols, I);
    }
    return gain;
}

double mxp_profile_mac_gain(const mxp_profile_table *t, const mxp_graph *g, int k, int j) {
    const mxp_subgraph *sg = &t->part.sg[k];
    mxp_format_id fm[256];
    MXP_ASSERT(sg->n_ops <= 256);
    mxp_sg_config_formats(&t->space[k], j, fm);
    double gain = 0;
    for (int o = 0; o < sg->n_ops; o++) {
        double macs = t->shapes[t->shape_of[sg->ops[o]]].macs;
        if (t->rate[MXP_FMT_F32] > 0 && t->rate[fm[o]] > 0) gain += macs / t->rate[MXP_FMT_F32] - macs / t->rate[fm[o]];
    }
    return gain;
}

// ---- statistics ----

// q-quantile (linear interpolation) of x (n), sorting a copy in tmp (n).
static double quantile(const double *x, int n, double q, double *tmp) {
    MXP_ASSERT(n > 0);
    memcpy(tmp, x, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, mxp_cmp_double);
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : lo;
    return tmp[lo] + (pos - lo) * (tmp[hi] - tmp[lo]);
}

// Half-width of the 95% CI of the median of x (n >= 2).
static double median_ci(const double *x, int n, double *tmp) {
    double iqr = quantile(x, n, 0.75, tmp) - quantile(x, n, 0.25, tmp);
    return 1.96 * 1.2533 * (iqr / 1.349) / sqrt((double)n);
}

// ---- the timing machinery ----

typedef struct runner {
    mxp_graph *g;
    mxp_timer *tm;          // runs a range: native or ggml
    mxp_qcache *qc;
    float *flush;           // (flush_max / 4) read before each timed run
    size_t flush_max;
    double linear_bytes;    // f32 bytes of every linear weight
    volatile float sink;
    // progress
    int flush_one_thread;   // read the flush buffer on this thread only (the ggml engine: no
                            // OpenMP workers left spinning while its own pool computes)
    int progress;
    double t0, budget_end;
    int units_done, units_total;
    const char *what;
} runner;

static void progress(runner *r) {
    if (!r->progress) return;
    double el = mxp_now() - r->t0;
    double eta = r->units_done ? el * (r->units_total - r->units_done) / r->units_done : 0;
    double left = r->budget_end - mxp_now();
    if (left > 0 && eta > left) eta = left;
    fprintf(stderr, "\rprofile: %-28s %d/%d  %.0fs elapsed, ETA %.0fs    ", r->what, r->units_done, r->units_total, el,
            eta < 0 ? 0 : eta);
}

// Read n bytes of the flush buffer with every thread, evict the range's weights (unless it is
// the whole model), then read the range's inputs from outside it.
static void prepare_caches(runner *r, int first, int last, size_t bytes) {
    size_t nf = bytes / sizeof(float);
    float acc = 0;
    if (nf && r->flush_one_thread) {
        for (size_t i = 0; i < nf; i += 16) acc += r->flush[i];
    } else if (nf) {
#pragma omp parallel for reduction(+ : acc) schedule(static)
        for (size_t i = 0; i < nf; i += 16) acc += r->flush[i];
    }
    if (first > 0 || last < r->g->n_nodes) r->tm->evict(r->tm, first, last);  // not the whole model (the check)
    acc += r->tm->touch(r->tm, first, last);
    r->sink = acc;
}

// Bytes the rest of the model's weights (outside [first, last)) pass through the caches.
static size_t flush_bytes(const runner *r, int first, int last) {
    double inside = 0;
    for (int i = first; i < last; i++) {
        const mxp_node *nd = &r->g->nodes[i];
        if (nd->op == MXP_OP_LINEAR) inside += 4.0 * (double)r->g->params[nd->w].nelem;
    }
    double rest = r->linear_bytes - inside;
    return rest <= 0 ? 0 : rest >= (double)r->flush_max ? r->flush_max : (size_t)rest;
}

// One timed run of [first, last) as made ready last (apply).
static double run_range(runner *r, int first, int last, size_t fb) {
    prepare_caches(r, first, last, fb);
    return r->tm->run(r->tm, first, last);
}

// Set the slots of nodes[0..n) to fmts (NULL: f32) and make [first, last) ready to run so.
static mxp_status apply(runner *r, int first, int last, const int *nodes, const mxp_format_id *fmts, int n,
                        mxp_err *err) {
    for (int k = 0; k < n; k++) r->g->nodes[nodes[k]].fmt = fmts ? (int)fmts[k] : MXP_FMT_F32;
    return r->tm->ready(r->tm, first, last, err);
}

// ---- the native timer: mixprec's executor in real mode ----

typedef struct native_timer {
    mxp_timer base;
    mxp_exec *ex;
    mxp_qcache *qc;
} native_timer;

// A weight stored in bf16/f16 runs its f32 slot from an f32 copy while its range is timed (the
// executor would otherwise widen tiles of it inside the timed run, which no f32 model does):
// made here, untimed, for the range's linear ops, and dropped for every other op.
static mxp_status native_ready(mxp_timer *tm, int first, int last, mxp_err *err) {
    native_timer *t = (native_timer *)tm;
    const mxp_graph *g = t->ex->g;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != MXP_OP_LINEAR || g->params[g->nodes[i].w].stored == MXP_FMT_F32) continue;
        if (i < first || i >= last) {
            mxp_qcache_drop_one(t->qc, i, MXP_FMT_F32, MXP_QMODE_REAL);
            continue;
        }
        mxp_status st = mxp_qcache_prepare(t->qc, i, MXP_FMT_F32, MXP_QMODE_REAL, err);
        if (st) return st;
    }
    return mxp_exec_use_formats(t->ex, t->qc, MXP_QMODE_REAL, err);
}

static float native_touch(mxp_timer *tm, int first, int last) {
    const native_timer *t = (const native_timer *)tm;
    const mxp_exec *ex = t->ex;
    size_t rows = (size_t)ex->B * ex->Tq;
    float acc = 0;
    for (int i = first; i < last; i++) {
        const mxp_node *nd = &ex->g->nodes[i];
        for (int k = 0; k < nd->n_in; k++) {
            int j = nd->in[k];
            if (j >= first) continue;
            const float *v = ex->val[j];
            size_t cells = rows * (size_t)ex->g->nodes[j].cols;
            for (size_t c = 0; c < cells; c += 16) acc += v[c];
        }
    }
    return acc;
}

static void native_evict(mxp_timer *tm, int first, int last) {
    const native_timer *t = (const native_timer *)tm;
    const mxp_exec *ex = t->ex;
    for (int i = first; i < last; i++) {
        const mxp_node *nd = &ex->g->nodes[i];
        if (nd->op != MXP_OP_LINEAR) continue;
        const mxp_param *w = &ex->g->params[nd->w];
        const void *q = nd->fmt == MXP_FMT_F32 ? mxp_qcache_f32(t->qc, i)  // NULL: w->raw
                                               : mxp_qcache_real(t->qc, i, (mxp_format_id)nd->fmt);
        if (q) mxp_evict(q, (size_t)nd->cols * mxp_row_bytes(mxp_format_get((mxp_format_id)nd->fmt), (int)(w->nelem / nd->cols)));
        else mxp_evict(w->raw, mxp_param_stored_bytes(w));
    }
}

static double native_run(mxp_timer *tm, int first, int last) {
    double t0 = mxp_now();
    mxp_exec_forward(((native_timer *)tm)->ex, first, last);
    return mxp_now() - t0;
}

static void native_free(mxp_timer *tm) { (void)tm; }  // lives on the caller's stack

// Samples of one comparison (reference vs configuration).
typedef struct samples {
    double *ref, *cfg, *diff, *tmp;  // (MAX_ROUNDS) each
} samples;

// Time [first, last) with nodes[] at fmts against the reference (all nodes[] at f32), in
// interleaved rounds until the gain's CI reaches rel_ci * reference or cap_s is spent.
// fmts == NULL: only reference runs (a sub-graph without ops). Appends the reference runs to
// refs (*n_refs, capacity MAX_ROUNDS * 8 enforced by the caller) when refs is not NULL.
static mxp_status measure(runner *r, int first, int last, const int *nodes, const mxp_format_id *fmts, int n,
                          double rel_ci, double cap_s, int min_rounds, samples *sm, mxp_cfg_stat *out, mxp_err *err) {
    size_t fb = flush_bytes(r, first, last);
    memset(out, 0, sizeof *out);
    mxp_status st = apply(r, first, last, nodes, fmts, n, err);  // quantizes, builds (untimed)
    if (st) return st;
    run_range(r, first, last, fb);  // warm-up
    st = apply(r, first, last, nodes, NULL, n, err);
    if (st) return st;
    run_range(r, first, last, fb);
    double start = mxp_now();
    int rounds = 0;
    for (;;) {
        for (int half = 0; half < 2; half++) {
            int is_cfg = (rounds & 1) ? half == 0 : half == 1;  // ABBA
            if (fmts) {
                st = apply(r, first, last, nodes, is_cfg ? fmts : NULL, n, err);
                if (st) return st;
            } else if (is_cfg) {
                continue;
            }
            double dt = run_range(r, first, last, fb);
            if (is_cfg) sm->cfg[rounds] = dt;
            else sm->ref[rounds] = dt;
        }
        if (!fmts) sm->cfg[rounds] = sm->ref[rounds];
        sm->diff[rounds] = sm->ref[rounds] - sm->cfg[rounds];
        rounds++;
        if (rounds < min_rounds) continue;
        double ref_med = quantile(sm->ref, rounds, 0.5, sm->tmp);
        double ci = median_ci(sm->diff, rounds, sm->tmp);
        int done_ci = ci <= rel_ci * ref_med;
        int capped = mxp_now() - start >= cap_s;
        if (!fmts || done_ci || capped || rounds >= MAX_ROUNDS) {
            out->capped = !fmts ? 0 : !done_ci;
            break;
        }
    }
    if (fmts) {
        st = apply(r, first, last, nodes, NULL, n, err);
        if (st) return st;
    }
    double ref_med = quantile(sm->ref, rounds, 0.5, sm->tmp);
    out->repeats = rounds;
    out->gain_s = fmts ? quantile(sm->diff, rounds, 0.5, sm->tmp) : 0;
    out->ci_s = fmts ? median_ci(sm->diff, rounds, sm->tmp) : median_ci(sm->ref, rounds, sm->tmp);
    out->time_s = ref_med - out->gain_s;
    out->spread_s = (quantile(sm->cfg, rounds, 0.9, sm->tmp) - quantile(sm->cfg, rounds, 0.1, sm->tmp)) / 2;
    return MXP_OK;
}

// ---- the table ----

typedef struct dynbuf {
    double *x;
    int n, cap;
} dynbuf;

static int dyn_append(dynbuf *d, const double *x, int n) {
    if (d->n + n > d->cap) {
        int nc = d->cap ? d->cap : 256;
        while (nc < d->n + n) nc *= 2;
        double *p = realloc(d->x, (size_t)nc * sizeof *p);
        if (!p) return 0;
        d->x = p;
        d->cap = nc;
    }
    memcpy(d->x + d->n, x, (size_t)n * sizeof *x);
    d->n += n;
    return 1;
}

// Reference statistics of a set of reference runs into the reference configuration's entry.
// Returns 0 on out-of-memory (the sorting copy).
static int ref_stats(const dynbuf *refs, double *med, double *spread, mxp_cfg_stat *c0) {
    double *tmp = malloc((size_t)(refs->n ? refs->n : 1) * sizeof *tmp);
    if (!tmp) return 0;
    *med = quantile(refs->x, refs->n, 0.5, tmp);
    *spread = (quantile(refs->x, refs->n, 0.9, tmp) - quantile(refs->x, refs->n, 0.1, tmp)) / 2;
    memset(c0, 0, sizeof *c0);
    c0->time_s = *med;
    c0->spread_s = *spread;
    c0->repeats = refs->n;
    c0->ci_s = refs->n >= 2 ? median_ci(refs->x, refs->n, tmp) : 0;
    free(tmp);
    return 1;
}

// Budget share of a unit of weight w out of the remaining weight.
static double unit_cap(const runner *r, double w, double w_left) {
    double left = r->budget_end - mxp_now();
    if (left <= 0 || w_left <= 0) return 0;
    return left * w / w_left;
}

// A table that cannot be right: a configuration of a sub-graph class or op shape that saves
// more than all of the reference time, beyond its confidence interval (time = reference - gain
// below -CI; a time a little below 0 is the noise of a microsecond-sized sub-graph). That
// happens when the reference runs of its rounds were stalled (another process took a core
// while ggml's pool waited for it). Flags each such class (redo[c]) and shape
// (redo[n_cls + s]) when redo is not NULL, and describes the first one in why. Returns how
// many there are.
static int inconsistent(const mxp_profile_table *t, const mxp_graph *g, unsigned char *redo, char *why, size_t cap) {
    int n = 0;
    for (int c = 0; c < t->n_cls; c++) {
        const mxp_class_meas *cm = &t->meas[c];
        const mxp_sg_space *sp = &t->space[cm->rep];
        int bad = !(cm->ref_time_s > 0);
        for (int j = 1; j < sp->n_configs && !bad; j++) {
            if (cm->cfg[j].time_s + cm->cfg[j].ci_s >= 0) continue;
            bad = 1;
            if (!n && why)
                snprintf(why, cap, "sub-graph %d (%s ...), configuration %d: gain %.3g +- %.2g s of a %.3g s reference",
                         cm->rep, g->nodes[t->part.sg[cm->rep].first].name, j, cm->cfg[j].gain_s, cm->cfg[j].ci_s,
                         cm->ref_time_s);
        }
        if (bad && !n && why && !(cm->ref_time_s > 0))
            snprintf(why, cap, "sub-graph %d: reference time %.3g s", cm->rep, cm->ref_time_s);
        if (redo) redo[c] = (unsigned char)bad;
        n += bad;
    }
    for (int s = 0; s < t->n_shapes; s++) {
        const mxp_op_shape *sh = &t->shapes[s];
        int bad = 0;
        for (int fi = 0; fi < t->n_formats && !bad; fi++) {
            mxp_format_id f = t->formats[fi];
            if (!sh->ok[f] || sh->st[f].time_s + sh->st[f].ci_s >= 0) continue;
            bad = 1;
            if (!n && why)
                snprintf(why, cap, "op %s alone in %s: time %.3g +- %.2g s", g->nodes[sh->rep].name,
                         mxp_format_get(f)->name, sh->st[f].time_s, sh->st[f].ci_s);
        }
        if (redo) redo[t->n_cls + s] = (unsigned char)bad;
        n += bad;
    }
    return n;
}

// Measure the table's sub-graph classes and op shapes within table_budget seconds. redo: NULL
// for all of them, else (n_cls + n_shapes) flags, class c at [c], shape s at [n_cls + s]: only
// the flagged ones are measured again (the others keep their entries).
static mxp_status measure_table(runner *r, mxp_profile_table *t, double table_budget, const unsigned char *redo,
                                samples *sm, mxp_err *err) {
    mxp_status st = MXP_OK;
    double *est = calloc((size_t)t->n_cls + (size_t)t->n_shapes, sizeof *est);
    dynbuf refs = {0};
    if (!est) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    // reference time estimates: the weights of the budget split
    double w_total = 0;
    r->units_total = 0;
    for (int c = 0; c < t->n_cls; c++) {
        if (redo && !redo[c]) continue;
        const mxp_subgraph *sg = &t->part.sg[t->meas[c].rep];
        size_t fb = flush_bytes(r, sg->first, sg->last);
        if ((st = r->tm->ready(r->tm, sg->first, sg->last, err))) goto out;
        run_range(r, sg->first, sg->last, fb);
        est[c] = run_range(r, sg->first, sg->last, fb);
        int nc = t->space[t->meas[c].rep].n_configs;
        w_total += est[c] * 2 * (nc > 1 ? nc - 1 : 1) * 0.85;
        r->units_total += nc > 1 ? nc - 1 : 1;
    }
    for (int s = 0; s < t->n_shapes; s++) {
        if (redo && !redo[t->n_cls + s]) continue;
        int rep = t->shapes[s].rep;
        if ((st = r->tm->ready(r->tm, rep, rep + 1, err))) goto out;
        run_range(r, rep, rep + 1, flush_bytes(r, rep, rep + 1));
        est[t->n_cls + s] = run_range(r, rep, rep + 1, flush_bytes(r, rep, rep + 1));
        for (int fi = 1; fi < t->n_formats; fi++)
            if (t->shapes[s].ok[t->formats[fi]]) r->units_total++;
    }
    // the op shapes get 15% of the budget, the sub-graphs 85% (weights scaled to match)
    double w_ops = 0;
    for (int s = 0; s < t->n_shapes; s++)
        for (int fi = 1; fi < t->n_formats; fi++)
            if (t->shapes[s].ok[t->formats[fi]] && (!redo || redo[t->n_cls + s])) w_ops += est[t->n_cls + s] * 2;
    double scale_ops = w_ops > 0 ? (w_total > 0 ? 0.15 * w_total / 0.85 / w_ops : 1) : 0;
    double w_left = w_total + w_ops * scale_ops;
    r->budget_end = mxp_now() + table_budget;
    mxp_format_id fm[256];
    for (int c = 0; c < t->n_cls && !st; c++) {
        if (redo && !redo[c]) continue;
        mxp_class_meas *cm = &t->meas[c];
        const mxp_subgraph *sg = &t->part.sg[cm->rep];
        const mxp_sg_space *sp = &t->space[cm->rep];
        MXP_ASSERT(sg->n_ops <= 256);
        refs.n = 0;
        r->what = "sub-graphs";
        for (int j = sp->n_configs > 1 ? 1 : 0; j < sp->n_configs && !st; j++) {
            double w = est[c] * 2 * 0.85;
            if (j) mxp_sg_config_formats(sp, j, fm);
            st = measure(r, sg->first, sg->last, sg->ops, j ? fm : NULL, sg->n_ops, t->rel_ci, unit_cap(r, w, w_left),
                         MIN_ROUNDS, sm, &cm->cfg[j], err);
            w_left -= w;
            if (!st && !dyn_append(&refs, sm->ref, cm->cfg[j].repeats)) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            r->units_done++;
            progress(r);
        }
        if (st) break;
        if (!ref_stats(&refs, &cm->ref_time_s, &cm->ref_spread_s, &cm->cfg[0])) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            break;
        }
        cm->ref_runs = refs.n;
        for (int j = 1; j < sp->n_configs; j++) cm->cfg[j].time_s = cm->ref_time_s - cm->cfg[j].gain_s;
    }
    for (int s = 0; s < t->n_shapes && !st; s++) {
        if (redo && !redo[t->n_cls + s]) continue;
        mxp_op_shape *sh = &t->shapes[s];
        refs.n = 0;
        r->what = "ops alone";
        for (int fi = 1; fi < t->n_formats && !st; fi++) {
            mxp_format_id f = t->formats[fi];
            if (!sh->ok[f]) continue;
            double w = est[t->n_cls + s] * 2 * scale_ops;
            st = measure(r, sh->rep, sh->rep + 1, &sh->rep, &f, 1, t->rel_ci, unit_cap(r, w, w_left), MIN_ROUNDS, sm,
                         &sh->st[f], err);
            w_left -= w;
            if (!st && !dyn_append(&refs, sm->ref, sh->st[f].repeats)) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            r->units_done++;
            progress(r);
        }
        if (st) break;
        if (!refs.n) {  // f32 is the only candidate: time the reference alone
            st = measure(r, sh->rep, sh->rep + 1, &sh->rep, NULL, 1, t->rel_ci, 0, MIN_ROUNDS, sm, &sh->st[MXP_FMT_F32], err);
            if (!st && !dyn_append(&refs, sm->ref, sh->st[MXP_FMT_F32].repeats))
                st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            if (st) break;
        }
        double med, spread;
        if (!ref_stats(&refs, &med, &spread, &sh->st[MXP_FMT_F32])) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            break;
        }
        sh->ok[MXP_FMT_F32] = 1;
        for (int fi = 1; fi < t->n_formats; fi++)
            if (sh->ok[t->formats[fi]]) sh->st[t->formats[fi]].time_s = med - sh->st[t->formats[fi]].gain_s;
    }
    if (!st) {
        // "peak" MAC rate per format: the best any op shape reaches under this workload
        for (int fi = 0; fi < t->n_formats; fi++) {
            mxp_format_id f = t->formats[fi];
            t->rate[f] = 0;
            for (int s = 0; s < t->n_shapes; s++)
                if (t->shapes[s].ok[f] && t->shapes[s].st[f].time_s > 0) {
                    double rate = t->shapes[s].macs / t->shapes[s].st[f].time_s;
                    if (rate > t->rate[f]) t->rate[f] = rate;
                }
        }
    }
out:
    if (r->progress) fprintf(stderr, "\n");
    free(refs.x);
    free(est);
    return st;
}

// ---- the whole-model check ----

// Make sure every linear node has its copy for its slot format; drop other copies first so
// that a 1B model holds one quantized copy per op at a time.
static mxp_status prepare_whole(runner *r, mxp_err *err) {
    for (int i = 0; i < r->g->n_nodes; i++) {
        const mxp_node *nd = &r->g->nodes[i];
        if (nd->op != MXP_OP_LINEAR || nd->fmt == MXP_FMT_F32) continue;
        if (!r->qc->real[(size_t)i * MXP_FMT_COUNT + (size_t)nd->fmt]) mxp_qcache_drop(r->qc, i);
    }
    return r->tm->ready(r->tm, 0, r->g->n_nodes, err);
}

static mxp_status run_check(runner *r, mxp_profile_table *t, int K, uint64_t seed, double budget, samples *sm,
                            mxp_err *err) {
    mxp_graph *g = r->g;
    int n_lin = 0;
    for (int i = 0; i < g->n_nodes; i++) n_lin += g->nodes[i].op == MXP_OP_LINEAR;
    int *nodes = malloc((size_t)(n_lin ? n_lin : 1) * sizeof *nodes);
    mxp_format_id *fmts = malloc((size_t)(n_lin ? n_lin : 1) * sizeof *fmts);
    t->check = calloc((size_t)K, sizeof *t->check);
    if (!nodes || !fmts || !t->check) {
        free(nodes);
        free(fmts);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    mxp_rng rng;
    mxp_rng_seed(&rng, seed ^ 0x9e3779b97f4a7c15ULL);
    mxp_status st = MXP_OK;
    double end = mxp_now() + budget;
    r->what = "check (whole model)";
    r->units_done = 0;
    r->units_total = K;
    r->budget_end = end;
    dynbuf refs = {0};
    mxp_format_id fm[256];
    for (int row = 0; row < K && !st; row++) {
        mxp_check_row *cr = &t->check[row];
        t->n_check = row + 1;
        if (!(cr->cfg = calloc((size_t)t->part.n, sizeof *cr->cfg))) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            break;
        }
        int m = 0;
        for (int k = 0; k < t->part.n; k++) {
            const mxp_sg_space *sp = &t->space[k];
            const mxp_subgraph *sg = &t->part.sg[k];
            cr->cfg[k] = (int)mxp_rng_below(&rng, (uint64_t)sp->n_configs);
            const mxp_class_meas *cm = &t->meas[t->cls[k]];
            cr->pred_subgraph_s += cm->cfg[cr->cfg[k]].gain_s;
            cr->pred_mac_s += mxp_profile_mac_gain(t, g, k, cr->cfg[k]);
            mxp_sg_config_formats(sp, cr->cfg[k], fm);
            for (int o = 0; o < sg->n_ops; o++) {
                nodes[m] = sg->ops[o];
                fmts[m++] = fm[o];
                if (fm[o] != MXP_FMT_F32) cr->pred_op_s += t->shapes[t->shape_of[sg->ops[o]]].st[fm[o]].gain_s;
            }
        }
        // quantize this configuration's copies before the timed part
        for (int k = 0; k < m; k++) g->nodes[nodes[k]].fmt = (int)fmts[k];
        st = prepare_whole(r, err);
        if (st) break;
        mxp_cfg_stat cs;
        double cap = (end - mxp_now()) / (K - row);
        st = measure(r, 0, g->n_nodes, nodes, fmts, m, t->rel_ci, cap > 0 ? cap : 0, 3, sm, &cs, err);
        if (st) break;
        if (!dyn_append(&refs, sm->ref, cs.repeats)) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        cr->measured_s = cs.gain_s;
        cr->ci_s = cs.ci_s;
        cr->repeats = cs.repeats;
        cr->ref_s = cs.time_s + cs.gain_s;
        r->units_done++;
        progress(r);
    }
    if (r->progress) fprintf(stderr, "\n");
    if (!st && refs.n) {
        double spread;
        mxp_cfg_stat all;
        if (!ref_stats(&refs, &t->e2e_ref_s, &spread, &all)) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == MXP_OP_LINEAR) g->nodes[i].fmt = MXP_FMT_F32;
    free(refs.x);
    free(nodes);
    free(fmts);
    return st;
}

// ---- setup: threads, machine, activations, cache ----

// Affinity of each pool thread before pinning, restored when mxp_profile returns, so the
// caller's process is left as it was (a later whole-model run on a busy machine is much slower
// pinned).
typedef struct pin_state {
    int active, n_threads;
    cpu_set_t orig[256];
} pin_state;

static void pin_threads(pin_state *ps, char *desc, size_t cap, int no_pin) {
    ps->active = 0;
    const char *bind = getenv("OMP_PROC_BIND");
    if (bind) {
        const char *places = getenv("OMP_PLACES");
        snprintf(desc, cap, "OMP_PROC_BIND=%s OMP_PLACES=%s (as set by the user)", bind, places ? places : "(unset)");
        return;
    }
    if (no_pin) {
        snprintf(desc, cap, "none (--no-pin)");
        return;
    }
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) || omp_get_max_threads() > 256) {
        snprintf(desc, cap, "none (sched_getaffinity failed or too many threads)");
        return;
    }
    int cpus[CPU_SETSIZE], n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &allowed)) cpus[n++] = c;
    if (!n) {
        snprintf(desc, cap, "none (no CPU allowed?)");
        return;
    }
    int failed = 0;
    ps->n_threads = omp_get_max_threads();
#pragma omp parallel reduction(+ : failed)
    {
        int k = omp_get_thread_num();
        if (sched_getaffinity(0, sizeof ps->orig[k], &ps->orig[k])) ps->orig[k] = allowed;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[k % n], &one);
        failed += sched_setaffinity(0, sizeof one, &one) != 0;
    }
    ps->active = 1;
    if (failed) snprintf(desc, cap, "partial (sched_setaffinity failed for %d threads)", failed);
    else snprintf(desc, cap, "sched_setaffinity: OpenMP thread k on allowed CPU k mod %d (while profiling)", n);
}

static void unpin_threads(pin_state *ps) {
    if (!ps->active) return;
#pragma omp parallel num_threads(ps->n_threads)
    {
        int k = omp_get_thread_num();
        sched_setaffinity(0, sizeof ps->orig[k], &ps->orig[k]);
    }
    ps->active = 0;
}

void mxp_engine_describe(const mxp_ggml *gg, char *buf, size_t cap) {
    if (gg) {
        snprintf(buf, cap, "ggml %s (commit %s), CPU backend libggml-cpu-%s (%s), %d threads%s, KV cache f16, flash attention%s",
                 mxp_ggml_version(), mxp_ggml_commit(), gg->variant, gg->features, gg->threads,
                 gg->tp ? "" : " (no thread pool)", gg->n_extra ? ", repacked weights" : "");
        return;
    }
    char *cfg = openblas_get_config();
    snprintf(buf, cap, "mixprec executor, %s kernels, %s (core %s), %d OpenMP threads", mxp_kernel_impl_name(),
             cfg ? cfg : "OpenBLAS", openblas_get_corename(), omp_get_max_threads());
}

// gg: the ggml engine, or NULL for the native one.
static void describe_machine(mxp_profile_table *t, const mxp_ggml *gg) {
    mxp_machine_description(t->cpu, sizeof t->cpu);
    t->isa = mxp_kernel_impl_name();
    t->threads = gg ? gg->threads : omp_get_max_threads();
    t->backend = gg ? "ggml" : "native";
    char *cfg = openblas_get_config();
    snprintf(t->blas, sizeof t->blas, "%s (core %s)", cfg ? cfg : "OpenBLAS", openblas_get_corename());
    mxp_engine_describe(gg, t->engine, sizeof t->engine);
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    t->llc_bytes = l3 > 0 ? (size_t)l3 : 0;
}

// Token ids (B, n+1): windows of the data's calibration split (or of the whole stream when
// that is too short), or seeded random ids.
static mxp_status workload_tokens(mxp_model *m, const mxp_workload *wl, const char *data_path, uint64_t seed,
                                  int32_t **seq, mxp_err *err) {
    int n = wl->tokens, B = wl->batch;
    *seq = NULL;
    if (data_path) {
        mxp_tokens toks = {0};
        mxp_status st = mxp_model_load_data(m, &toks, data_path, err);
        size_t got = 0;
        if (!st) {
            mxp_split sp = mxp_split_windows(toks.n, MXP_SPLIT_CALIB, n) >= (size_t)B ? MXP_SPLIT_CALIB : MXP_SPLIT_ALL;
            st = mxp_data_samples(&toks, sp, n, (size_t)B, seed, data_path, seq, &got, err);
        }
        mxp_tokens_free(&toks);
        return st;
    }
    size_t cnt = (size_t)B * (size_t)(n + 1);
    *seq = malloc(cnt * sizeof **seq);
    if (!*seq) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    mxp_rng rng;
    mxp_rng_seed(&rng, seed);
    for (size_t i = 0; i < cnt; i++) (*seq)[i] = (int32_t)mxp_rng_below(&rng, (uint64_t)m->graph.vocab);
    return MXP_OK;
}

// The executor in the workload's state with every value of the reference model computed.
static mxp_status prepare_exec(mxp_model *m, const mxp_workload *wl, const int32_t *seq, mxp_exec *ex, mxp_qcache *qc,
                               mxp_err *err) {
    const mxp_graph *g = &m->graph;
    int n = wl->tokens, B = wl->batch;
    mxp_status st;
    if (!wl->decode) {
        st = mxp_exec_init(ex, g, B, n, 0, err);
        if (!st) st = mxp_exec_set_batch(ex, seq, err);
        if (!st) st = mxp_exec_use_formats(ex, qc, MXP_QMODE_REAL, err);
        if (!st) mxp_exec_forward(ex, 0, g->n_nodes);
        return st;
    }
    int32_t *prompt = malloc((size_t)B * (size_t)n * sizeof *prompt), next[4096];
    if (!prompt) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    for (int b = 0; b < B; b++) {
        memcpy(prompt + (size_t)b * n, seq + (size_t)b * (n + 1), (size_t)n * sizeof *prompt);
        next[b] = seq[(size_t)b * (n + 1) + n];
    }
    st = mxp_exec_init(ex, g, B, n + 1, MXP_EXEC_KV_CACHE, err);
    if (!st) st = mxp_exec_use_formats(ex, qc, MXP_QMODE_REAL, err);
    if (!st) st = mxp_exec_step(ex, prompt, n, err);       // fills the cache
    if (!st) st = mxp_exec_step(ex, next, 1, err);         // the decode pass: Tq = 1, pos0 = n
    free(prompt);
    return st;
}

static mxp_status cache_path(const char *dir_opt, const char *key, char *out, size_t cap, mxp_err *err) {
    char dir[900];
    const char *env;
    if (dir_opt) snprintf(dir, sizeof dir, "%s", dir_opt);
    else if ((env = getenv("MIXPREC_CACHE_DIR")) && *env) snprintf(dir, sizeof dir, "%s", env);
    else if ((env = getenv("XDG_CACHE_HOME")) && *env) snprintf(dir, sizeof dir, "%s/mixprec", env);
    else if ((env = getenv("HOME")) && *env) snprintf(dir, sizeof dir, "%s/.cache/mixprec", env);
    else return mxp_fail(err, MXP_ERR_ARG, "no cache folder: set MIXPREC_CACHE_DIR or HOME, or use --no-cache");
    // mkdir -p
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(dir, 0755);
        *p = '/';
    }
    if (mkdir(dir, 0755) && errno != EEXIST) return mxp_fail(err, MXP_ERR_IO, "%s: cannot create the cache folder", dir);
    const char *hex = strchr(key, ':');
    snprintf(out, cap, "%s/latency-%s.json", dir, hex ? hex + 1 : key);
    return MXP_OK;
}

static cJSON *provenance(const mxp_model *m, const char *data_path, mxp_err *err) {
    if (!m->synthetic) return mxp_provenance_json(m->path, data_path, err);
    // a synthetic model has no files to hash: say what it is
    cJSON *p = cJSON_CreateObject();
    mxp_run_stamp rs;
    mxp_run_stamp_now(&rs);
    if (!p || !cJSON_AddStringToObject(p, "tool", rs.tool) || !cJSON_AddStringToObject(p, "ggml", rs.ggml) || !cJSON_AddStringToObject(p, "model", "(synthetic)") ||
        !cJSON_AddStringToObject(p, "model_hash", "synthetic") || !cJSON_AddStringToObject(p, "machine", rs.machine) ||
        !cJSON_AddStringToObject(p, "kernels", mxp_kernel_impl_name())) {
        cJSON_Delete(p);
        mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return p;
}

static mxp_status write_table(const mxp_profile_table *t, const mxp_model *m, const char *data_path, const char *key,
                              const char *path, mxp_err *err) {
    cJSON *prov = provenance(m, data_path, err);
    if (!prov) return err ? err->code : MXP_ERR_NOMEM;
    cJSON *j = mxp_profile_to_json(t, &m->graph, prov, key);
    if (!j) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory building the latency table");
    mxp_status st = mxp_write_json_atomic(path, j, err);
    cJSON_Delete(j);
    return st;
}

static double load1(void) {
    double l[1];
    return getloadavg(l, 1) == 1 ? l[0] : -1;
}

void mxp_profile_result_free(mxp_profile_result *r) {
    if (!r) return;
    free(r->check);
    r->check = NULL;
    r->n_check = 0;
    free(r->llama);
    r->llama = NULL;
    r->n_llama = 0;
}

static double median_abs_err(const mxp_profile_table *t, int which, double *tmp) {
    for (int r = 0; r < t->n_check; r++) {
        const mxp_check_row *c = &t->check[r];
        double p = which == 0 ? c->pred_subgraph_s : which == 1 ? c->pred_op_s : c->pred_mac_s;
        tmp[r] = fabs(p - c->measured_s) / t->e2e_ref_s;
    }
    return t->n_check ? quantile(tmp, t->n_check, 0.5, tmp + t->n_check) : 0;
}

mxp_status mxp_profile(mxp_model *m, const mxp_profile_opts *o, const char *out_path, mxp_profile_result *res,
                       mxp_err *err) {
    memset(res, 0, sizeof *res);
    if (out_path && mxp_check_writable(out_path, err)) return err ? err->code : MXP_ERR_IO;
    double t_start = mxp_now();
    mxp_graph *g = &m->graph;
    mxp_workload wl;
    mxp_status st = mxp_workload_parse(o->workload, o->batch ? o->batch : 1, g->max_pos, &wl, err);
    if (st) return st;
    if (o->check < 0 || o->check > 10000) return mxp_fail(err, MXP_ERR_ARG, "--check %d: must be in [0, 10000]", o->check);
    char bench[4096];
    if (o->check_llama && !o->check) return mxp_fail(err, MXP_ERR_ARG, "--check-llama needs --check K");
    if (o->check_llama && !mxp_llama_bench_find(o->llama_bench, bench, sizeof bench))
        return mxp_fail(err, MXP_ERR_ARG, "--check-llama: %s%s", o->llama_bench ? o->llama_bench : "llama-bench",
                        o->llama_bench ? " is not an executable file" : " not found (scripts/deps.sh builds it into "
                                                                        "build-deps/bin; or pass --llama-bench PATH)");
    if (o->rel_ci < 0 || o->budget_s < 0 || o->check_budget_s < 0)
        return mxp_fail(err, MXP_ERR_ARG, "negative --rel-ci or budget");
    if (wl.batch > 4096) return mxp_fail(err, MXP_ERR_ARG, "--batch must be at most 4096");
    // formats
    mxp_format_id fmts[MXP_FMT_COUNT];
    int nf = 0;
    const char *list = o->formats ? o->formats : MXP_DEFAULT_FORMATS;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        char name[32];
        if (len == 0 || len >= sizeof name) return mxp_fail(err, MXP_ERR_ARG, "--formats '%s': empty or long name", list);
        memcpy(name, p, len);
        name[len] = 0;
        mxp_format_id f;
        st = mxp_format_parse(name, &f, err);
        if (st) return mxp_fail_prefix(err, "--formats: ");
        int dup = 0;
        for (int i = 0; i < nf; i++) dup |= fmts[i] == f;
        if (!dup) fmts[nf++] = f;
        p += len;
        if (*p == ',') p++;
    }
    mxp_profile_table t;
    st = mxp_profile_table_init(&t, g, &wl, fmts, nf, o->ties, o->n_ties, err);
    if (st) {
        mxp_profile_table_free(&t);
        return st;
    }
    t.rel_ci = o->rel_ci > 0 ? o->rel_ci : 0.01;
    t.budget_s = o->budget_s > 0 ? o->budget_s : 480;
    int use_ggml = !o->backend || !strcmp(o->backend, "ggml");
    mxp_ggml *gg = NULL;
    pin_state *ps = NULL;
    if (o->threads < 0 || o->threads > 512 || (o->threads && !use_ggml)) {
        st = mxp_fail(err, MXP_ERR_ARG, "--threads %d: a ggml thread count in [1, 512] (native: OMP_NUM_THREADS)",
                      o->threads);
        goto done;
    }
    if (!use_ggml && strcmp(o->backend, "native")) {
        st = mxp_fail(err, MXP_ERR_ARG, "--backend '%s': expected ggml or native", o->backend);
        goto done;
    }
    for (int i = 0; use_ggml && i < t.n_formats; i++)
        if (!mxp_format_get(t.formats[i])->has_ggml_type) {
            st = mxp_fail(err, MXP_ERR_ARG,
                          "--formats %s: no ggml type, so ggml (llama.cpp) cannot run it; leave it out or use --backend native",
                          mxp_format_get(t.formats[i])->name);
            goto done;
        }
    if (use_ggml) {
        if (!(gg = calloc(1, sizeof *gg))) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((st = mxp_ggml_init(gg, o->threads, 0, err))) goto done;
    }
    describe_machine(&t, gg);
    ps = malloc(sizeof *ps);
    if (!ps) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (gg) {
        ps->active = 0;  // ggml's pool places its own threads, as in llama.cpp (no CPU mask)
        snprintf(t.pinning, sizeof t.pinning, "ggml thread pool with llama.cpp's defaults (no CPU mask, poll 50)");
    } else {
        pin_threads(ps, t.pinning, sizeof t.pinning, o->no_pin);
    }
    char key[32];
    mxp_profile_cache_key(&t, g, key);
    char cpath[1024] = "";
    {
        mxp_err e2 = {0};
        st = cache_path(o->cache_dir, key, cpath, sizeof cpath, o->no_cache ? &e2 : err);
        if (st && !o->no_cache) goto done;
        if (st) cpath[0] = 0;  // --no-cache without a usable cache folder: nothing to refresh
        st = MXP_OK;
    }
    if (!o->no_cache && cpath[0] && access(cpath, R_OK) == 0) {
        cJSON *j = NULL;
        mxp_err e2 = {0};
        char why[256];
        if (!mxp_read_json(cpath, &j, &e2) && !mxp_profile_from_json(&t, g, j, key, cpath, &e2)) {
            if (!inconsistent(&t, g, NULL, why, sizeof why)) t.from_cache = 1;
            else mxp_fail(&e2, MXP_ERR_FORMAT, "%s: timed on a busy machine: %s", cpath, why);
        }
        if (!t.from_cache && o->progress) fprintf(stderr, "profile: ignoring the cached table: %s\n", e2.msg);
        cJSON_Delete(j);
    }
    mxp_exec ex = {0};
    mxp_qcache qc = {0};
    int32_t *seq = NULL;
    samples sm = {0};
    native_timer nt = {.base = {.ready = native_ready, .touch = native_touch, .evict = native_evict, .run = native_run, .free = native_free},
                       .ex = &ex, .qc = &qc};
    mxp_timer *tm = &nt.base;
    runner r = {.g = g, .tm = tm, .qc = &qc, .progress = o->progress, .t0 = mxp_now(), .flush_one_thread = gg != NULL};
    if (!t.from_cache || o->check) {
        sm.ref = malloc(4 * MAX_ROUNDS * sizeof(double));
        if (!sm.ref) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            goto done;
        }
        sm.cfg = sm.ref + MAX_ROUNDS;
        sm.diff = sm.cfg + MAX_ROUNDS;
        sm.tmp = sm.diff + MAX_ROUNDS;
        size_t llc = t.llc_bytes && t.llc_bytes < ((size_t)32 << 20) ? t.llc_bytes : (size_t)32 << 20;
        r.flush_max = 2 * llc;  // VMs may report the host's whole L3: one CCX holds at most 32 MiB
        t.flush_max = r.flush_max;
        r.flush = mxp_aligned_alloc(r.flush_max);
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == MXP_OP_LINEAR) r.linear_bytes += 4.0 * (double)g->params[g->nodes[i].w].nelem;
        if (!r.flush) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        mxp_formats_reset(g);
        if (!st) st = mxp_qcache_init(&qc, g, err);
        if (!st) st = workload_tokens(m, &wl, o->data_path, o->seed, &seq, err);
        if (o->progress && !st) fprintf(stderr, "profile: running the reference model on the workload...\n");
        if (!st) st = prepare_exec(m, &wl, seq, &ex, &qc, err);
        if (!st && gg) st = mxp_timer_ggml_new(gg, &ex, &qc, &tm, err);
        r.tm = tm;
    }
    if (!st && !t.from_cache) {
        t.load_start = load1();
        double t0 = mxp_now();
        st = measure_table(&r, &t, t.budget_s, NULL, &sm, err);
        // an impossible entry is timed again once, with a share of the budget; a table that
        // still holds one is used for this run but not cached, so it cannot poison later runs
        char why[256] = "";
        unsigned char *redo = NULL;
        int n_bad = st ? 0 : inconsistent(&t, g, NULL, why, sizeof why);
        if (n_bad && !(redo = calloc((size_t)t.n_cls + (size_t)t.n_shapes, 1)))
            st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        if (n_bad && !st) {
            inconsistent(&t, g, redo, NULL, 0);
            if (o->progress)
                fprintf(stderr,
                        "profile: %d entries of the table cannot be right (%s): the machine was busy; timing them "
                        "again\n",
                        n_bad, why);
            st = measure_table(&r, &t, t.budget_s * n_bad / (t.n_cls + t.n_shapes), redo, &sm, err);
            n_bad = st ? 0 : inconsistent(&t, g, NULL, why, sizeof why);
        }
        free(redo);
        t.seconds = mxp_now() - t0;
        t.load_end = load1();
        if (n_bad) {
            fprintf(stderr,
                    "profile: warning: the latency table is still inconsistent (%s): %d entries were timed while "
                    "other work ran; not caching it. Profile again on a quiet machine.\n",
                    why, n_bad);
            if (cpath[0]) unlink(cpath);  // an older table under the same key was rejected above
        } else if (!st && cpath[0]) {
            st = write_table(&t, m, o->data_path, key, cpath, err);
        }
    }
    if (!st && o->check) st = run_check(&r, &t, o->check, o->seed, o->check_budget_s > 0 ? o->check_budget_s : 240, &sm, err);
    if (!st && out_path) st = write_table(&t, m, o->data_path, key, out_path, err);
    if (!st) {
        res->n_subgraphs = t.part.n;
        res->n_classes = t.n_cls;
        res->from_cache = t.from_cache;
        snprintf(res->cache_path, sizeof res->cache_path, "%s", cpath);
        snprintf(res->engine, sizeof res->engine, "%s", t.engine);
        res->threads = t.threads;
        for (int k = 0; k < t.part.n; k++) res->ref_time_s += t.meas[t.cls[k]].ref_time_s;
        for (int c = 0; c < t.n_cls; c++) {
            const mxp_class_meas *cm = &t.meas[c];
            int nc = t.space[cm->rep].n_configs;
            res->n_configs += nc;
            for (int j = 1; j < nc; j++) {
                res->n_capped += cm->cfg[j].capped;
                if (cm->ref_time_s > 0) res->max_rel_ci = fmax(res->max_rel_ci, cm->cfg[j].ci_s / cm->ref_time_s);
            }
        }
        if (t.n_check) {
            res->check = calloc((size_t)t.n_check, sizeof *res->check);
            double *tmp = malloc(2 * (size_t)t.n_check * sizeof *tmp);
            if (!res->check || !tmp) {
                free(tmp);
                st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
                goto done_exec;
            }
            res->n_check = t.n_check;
            for (int i = 0; i < t.n_check; i++) {
                const mxp_check_row *c = &t.check[i];
                res->check[i] = (mxp_profile_check_row){.measured_s = c->measured_s, .ci_s = c->ci_s, .ref_s = c->ref_s,
                                                        .pred_subgraph_s = c->pred_subgraph_s,
                                                        .pred_op_s = c->pred_op_s, .pred_mac_s = c->pred_mac_s};
            }
            res->e2e_ref_s = t.e2e_ref_s;
            if (t.e2e_ref_s > 0) {
                res->mae_subgraph = median_abs_err(&t, 0, tmp);
                res->mae_op = median_abs_err(&t, 1, tmp);
                res->mae_mac = median_abs_err(&t, 2, tmp);
            }
            free(tmp);
            if (o->check_llama) {
                unpin_threads(ps);  // llama-bench inherits the calling thread's CPU affinity
                if (o->progress) fprintf(stderr, "profile: timing the check's configurations in llama.cpp (%s)\n", bench);
                st = mxp_profile_check_llama(m, &t, bench, t.threads, res, err);
                if (st) goto done_exec;
            }
        }
    }
done_exec:
    if (tm) tm->free(tm);
    mxp_exec_free(&ex);
    mxp_qcache_free(&qc);
    free(seq);
    free(sm.ref);
    free(r.flush);
done:
    if (ps) unpin_threads(ps);
    free(ps);
    mxp_ggml_free(gg);
    free(gg);
    mxp_formats_reset(g);
    mxp_profile_table_free(&t);
    res->seconds = mxp_now() - t_start;
    if (st) mxp_profile_result_free(res);
    return st;
}

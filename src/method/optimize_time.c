// optimize_time.c: whole-model timing for `mixprec optimize` (optimize.h): how long one unit
// of the workload takes, end to end, in each configuration, against the f32 reference timed
// in the same rounds. This is the "measured" side of every time gain in the report; the
// predicted side is the latency table (profile.c). Two engines: ggml (the whole graph
// translated once per configuration by ggml_graph.c, the engine llama.cpp runs, the same
// translation the profiler's ggml timer makes of a sub-graph) or mixprec's executor (native).
// Token ids are fixed, not data: speed does not depend on them. Nothing here changes the model
// except its format slots (reset on return).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method/optimize.h"
#include "method/plan.h"
#include "runtime/exec.h"
#include "runtime/ggml_graph.h"
#include "runtime/qcache.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// 95% interval of the median from order statistics (normal approximation of the binomial):
// half the distance between ranks n/2 -+ 0.98 sqrt(n). v sorted.
static double median_ci(const double *v, int n) {
    double h = 0.98 * sqrt((double)n);
    int lo = (int)floor(n / 2.0 - h), hi = (int)ceil(n / 2.0 + h);
    if (lo < 0) lo = 0;
    if (hi > n - 1) hi = n - 1;
    return 0.5 * (v[hi] - v[lo]);
}

static void set_slots(mxp_graph *g, const unsigned char *fmt) {
    for (int i = 0; i < g->n_nodes; i++)
        if (mxp_node_quantizable(&g->nodes[i])) g->nodes[i].fmt = fmt ? fmt[i] : MXP_FMT_F32;
}

// One workload unit, `reps` times; seconds per unit.
static double run_units(mxp_exec *ex, const mxp_workload *wl, int reps, const int32_t *tok) {
    const mxp_graph *g = ex->g;
    double t0 = mxp_now();
    for (int r = 0; r < reps; r++) {
        if (wl->decode) {
            ex->cached = wl->tokens;  // rewrite the same position: always L cached before it
            mxp_status st = mxp_exec_step(ex, tok, 1, NULL);
            MXP_ASSERT(st == MXP_OK);  // sizes were checked when the cache was filled
        } else {
            mxp_exec_forward(ex, 0, g->n_nodes);
        }
    }
    return (mxp_now() - t0) / reps;
}

// The first linear node of configuration fmt (NULL: f32) whose format has no ggml type, or -1.
static int no_ggml_type(const mxp_graph *g, const unsigned char *fmt) {
    for (int i = 0; fmt && i < g->n_nodes; i++)
        if (mxp_node_quantizable(&g->nodes[i]) && !mxp_format_get((mxp_format_id)fmt[i])->has_ggml_type) return i;
    return -1;
}

// One workload unit of configuration k, `reps` times; seconds per unit. ggml: its graph,
// computed as it was built (a decode graph rewrites the same position each time).
static double run_cfg(mxp_exec *ex, const mxp_workload *wl, mxp_ggml *gg, mxp_ggml_sub *sub, int reps,
                      const int32_t *tok) {
    if (!gg) return run_units(ex, wl, reps, tok);
    mxp_ggml_wake(gg);  // the pool polls for work, as between llama.cpp's tokens
    double t0 = mxp_now();
    for (int r = 0; r < reps; r++) {
        mxp_status st = mxp_ggml_sub_compute(sub, NULL);
        MXP_ASSERT(st == MXP_OK);  // the same graph computed once when it was built
    }
    return (mxp_now() - t0) / reps;
}

mxp_status mxp_e2e_time_configs(mxp_model *m, const mxp_workload *wl, const char *backend, int n_cfg,
                                const unsigned char *cfg_fmt, int max_rounds, double budget_s, mxp_e2e_time *ref,
                                mxp_e2e_time *out, char *engine, size_t engine_cap, volatile int *stop, mxp_err *err) {
    mxp_graph *g = &m->graph;
    const int L = wl->tokens, nn = g->n_nodes, K = n_cfg + 1;  // slot 0: the reference
    if (L < 1 || n_cfg < 0 || max_rounds < 1) return mxp_fail(err, MXP_ERR_ARG, "timing: bad workload or rounds");
    if (wl->batch > 1) return mxp_fail(err, MXP_ERR_UNSUPPORTED, "timing: batch %d: only batch 1 is timed", wl->batch);
    int use_ggml = !backend || !strcmp(backend, "ggml");
    if (!use_ggml && strcmp(backend, "native"))
        return mxp_fail(err, MXP_ERR_ARG, "timing: backend '%s': expected ggml or native", backend);
    int T = wl->decode ? L + 1 : L;
    if (g->max_pos > 0 && T > g->max_pos)
        return mxp_fail(err, MXP_ERR_ARG, "timing: workload needs %d positions, the model has %d", T, g->max_pos);
    for (int k = 0; k < n_cfg; k++) {
        memset(&out[k], 0, sizeof out[k]);
        out[k].timed = 1;
    }
    memset(ref, 0, sizeof *ref);
    ref->timed = 1;
    mxp_exec ex;
    mxp_qcache qc;
    mxp_ggml gg_s, *gg = NULL;
    mxp_ggml_sub *sub = NULL;
    mxp_status st = mxp_qcache_init(&qc, g, err);
    if (st) return st;
    st = mxp_exec_init(&ex, g, 1, T, wl->decode ? MXP_EXEC_KV_CACHE : 0, err);
    if (st) {
        mxp_qcache_free(&qc);
        return st;
    }
    if (use_ggml) {
        sub = calloc((size_t)K, sizeof *sub);
        if (!sub) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        else if (!(st = mxp_ggml_init(&gg_s, 0, 0, err))) gg = &gg_s;
    }
    if (engine && engine_cap) mxp_engine_describe(gg, engine, engine_cap);
    int rounds_cap = max_rounds;
    int32_t *ids = malloc((size_t)(T + 1) * sizeof *ids);
    double *t = malloc((size_t)K * rounds_cap * sizeof *t), *tmp = malloc((size_t)rounds_cap * sizeof *tmp);
    int *reps = calloc((size_t)K, sizeof *reps);
    if (!st && (!ids || !t || !tmp || !reps)) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i <= T; i++) ids[i] = (int32_t)(((int64_t)i * 7919 + 13) % g->vocab);
    // native: quantize every format any configuration needs (once), then switch slots freely
    for (int k = 0; k < K && !st && !gg; k++) {
        set_slots(g, k ? cfg_fmt + (size_t)(k - 1) * nn : NULL);
        st = mxp_exec_use_formats(&ex, &qc, MXP_QMODE_REAL, err);
    }
    // native: a weight stored in bf16/f16 runs its f32 slot from an f32 copy, as an f32 model
    // runs (the executor would otherwise widen tiles of it inside the timed runs; profile.c's
    // native timer does the same for its ranges)
    for (int i = 0; i < nn && !st && !gg; i++)
        if (g->nodes[i].op == MXP_OP_LINEAR && g->params[g->nodes[i].w].stored != MXP_FMT_F32)
            st = mxp_qcache_prepare(&qc, i, MXP_FMT_F32, MXP_QMODE_REAL, err);
    set_slots(g, NULL);
    if (!st) {
        if (wl->decode) st = mxp_exec_step(&ex, ids, L, err);  // fill the cache (f32 slots are as good as any)
        else st = mxp_exec_set_batch(&ex, ids, err);
    }
    // ggml: the exec in the timed pass (decode: the token at position L), then one graph per
    // configuration as llama.cpp builds it (f16 KV cache, logits of the last position only)
    if (!st && gg && wl->decode) st = mxp_exec_step(&ex, ids + L, 1, err);
    for (int k = 0; k < K && !st && gg; k++) {
        const unsigned char *fmt = k ? cfg_fmt + (size_t)(k - 1) * nn : NULL;
        int bad = no_ggml_type(g, fmt);
        if (bad >= 0) {
            mxp_e2e_time *o = &out[k - 1];
            o->timed = 0;
            o->time_s = o->gain_s = o->ci_s = NAN;
            snprintf(o->why, sizeof o->why, "%s has no ggml type (node %s), so ggml cannot run it",
                     mxp_format_get((mxp_format_id)fmt[bad])->name, g->nodes[bad].name);
            continue;
        }
        set_slots(g, fmt);
        st = mxp_ggml_sub_init(&sub[k], gg, &ex, &qc, 0, nn, 0, err);
        if (!st) st = mxp_ggml_sub_compute(&sub[k], err);
    }
    set_slots(g, NULL);
    // repeats per run: about 10 ms each, from one warm-up run per configuration
    for (int k = 0; k < K && !st; k++) {
        if (k && !out[k - 1].timed) continue;
        if (!gg) set_slots(g, k ? cfg_fmt + (size_t)(k - 1) * nn : NULL);
        run_cfg(&ex, wl, gg, sub ? &sub[k] : NULL, 1, ids + L);
        double one = run_cfg(&ex, wl, gg, sub ? &sub[k] : NULL, 1, ids + L);
        int r = one > 0 ? (int)ceil(0.010 / one) : 1000;
        reps[k] = r < 1 ? 1 : r > 1000 ? 1000 : r;
    }
    int rounds = 0;
    double t0 = mxp_now();
    while (!st && rounds < rounds_cap) {
        if (stop && *stop) {
            st = mxp_fail(err, MXP_ERR_INTERRUPTED, "interrupted while timing");
            break;
        }
        if (rounds >= 5 && mxp_now() - t0 > budget_s) break;
        for (int j = 0; j < K; j++) {
            int k = (j + rounds) % K;  // rotate the order
            if (k && !out[k - 1].timed) continue;
            if (!gg) set_slots(g, k ? cfg_fmt + (size_t)(k - 1) * nn : NULL);
            t[(size_t)k * rounds_cap + rounds] = run_cfg(&ex, wl, gg, sub ? &sub[k] : NULL, reps[k], ids + L);
        }
        rounds++;
    }
    if (!st) {
        for (int k = 0; k < K; k++) {
            mxp_e2e_time *o = k ? &out[k - 1] : ref;
            if (!o->timed) continue;
            const double *tk = t + (size_t)k * rounds_cap;
            for (int r = 0; r < rounds; r++) tmp[r] = tk[r];
            o->time_s = median(tmp, rounds);
            for (int r = 0; r < rounds; r++) tmp[r] = t[r] - tk[r];  // paired with the reference's run
            o->gain_s = median(tmp, rounds);
            o->ci_s = median_ci(tmp, rounds);
            o->rounds = rounds;
        }
    }
    set_slots(g, NULL);
    for (int k = 0; sub && k < K; k++)
        if (sub[k].gf) mxp_ggml_sub_free(&sub[k]);
    free(sub);
    if (gg) mxp_ggml_free(gg);
    mxp_exec_free(&ex);
    mxp_qcache_free(&qc);
    free(ids);
    free(t);
    free(tmp);
    free(reps);
    return st;
}

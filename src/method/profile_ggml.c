// profile_ggml.c: the ggml timer of the profiler (profile.h): a node range of the model runs as a
// ggml graph on ggml's CPU backend, the engine llama.cpp deploys with, so the latency table
// holds llama.cpp's relative speeds of the formats rather than mixprec's own kernels'.
// Translating a range and copying its weights (mxp_ggml_sub_init) happens in `ready`, outside
// the timed region; `run` times ggml_backend_graph_compute alone.
// Must not: touch the graph's slots (the measurement loop owns them).
#include <stdlib.h>
#include <string.h>

#include "method/profile.h"

#define N_KEEP 2  // translations kept: a configuration and its reference

typedef struct inst {
    int used;
    int first, last;
    int *fmts;          // (last - first) slot of each node of the range (0 for non-linear)
    unsigned long tick; // last use
    mxp_ggml_sub sub;
} inst;

typedef struct ggml_timer {
    mxp_timer base;
    mxp_ggml *gg;
    const mxp_exec *ex;
    mxp_qcache *qc;
    inst keep[N_KEEP];
    inst *cur;
    unsigned long tick;
} ggml_timer;

static int inst_matches(const inst *it, const mxp_graph *g, int first, int last) {
    if (!it->used || it->first != first || it->last != last) return 0;
    for (int i = first; i < last; i++)
        if (g->nodes[i].op == MXP_OP_LINEAR && it->fmts[i - first] != g->nodes[i].fmt) return 0;
    return 1;
}

static void inst_free(inst *it) {
    if (!it->used) return;
    mxp_ggml_sub_free(&it->sub);
    free(it->fmts);
    memset(it, 0, sizeof *it);
}

static mxp_status gt_ready(mxp_timer *tm, int first, int last, mxp_err *err) {
    ggml_timer *t = (ggml_timer *)tm;
    const mxp_graph *g = t->ex->g;
    t->tick++;
    for (int k = 0; k < N_KEEP; k++)
        if (inst_matches(&t->keep[k], g, first, last)) {
            t->cur = &t->keep[k];
            t->cur->tick = t->tick;
            return MXP_OK;
        }
    inst *it = &t->keep[0];
    for (int k = 1; k < N_KEEP; k++)
        if (!t->keep[k].used || (it->used && t->keep[k].tick < it->tick)) it = &t->keep[k];
    inst_free(it);
    t->cur = NULL;
    it->fmts = calloc((size_t)(last - first), sizeof *it->fmts);
    if (!it->fmts) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    for (int i = first; i < last; i++) it->fmts[i - first] = g->nodes[i].op == MXP_OP_LINEAR ? g->nodes[i].fmt : 0;
    mxp_status st = mxp_ggml_sub_init(&it->sub, t->gg, t->ex, t->qc, first, last, 0, err);  // as llama.cpp
    if (!st) st = mxp_ggml_sub_compute(&it->sub, err);  // ggml can run it (and first-touch of its memory)
    if (st) {
        if (it->sub.gf) mxp_ggml_sub_free(&it->sub);
        free(it->fmts);
        memset(it, 0, sizeof *it);
        return st;
    }
    it->used = 1;
    it->first = first;
    it->last = last;
    it->tick = t->tick;
    t->cur = it;
    return MXP_OK;
}

static float gt_touch(mxp_timer *tm, int first, int last) {
    ggml_timer *t = (ggml_timer *)tm;
    MXP_ASSERT(t->cur && t->cur->first == first && t->cur->last == last);
    float acc = mxp_ggml_sub_touch(&t->cur->sub);
    mxp_ggml_wake(t->gg);  // the pool polls for work when the timed compute starts
    return acc;
}

static void gt_evict(mxp_timer *tm, int first, int last) {
    ggml_timer *t = (ggml_timer *)tm;
    MXP_ASSERT(t->cur && t->cur->first == first && t->cur->last == last);
    mxp_ggml_sub_evict(&t->cur->sub);
}

static double gt_run(mxp_timer *tm, int first, int last) {
    ggml_timer *t = (ggml_timer *)tm;
    MXP_ASSERT(t->cur && t->cur->first == first && t->cur->last == last);
    double t0 = mxp_now();
    mxp_status st = mxp_ggml_sub_compute(&t->cur->sub, NULL);
    double dt = mxp_now() - t0;
    MXP_ASSERT(st == MXP_OK);  // the same graph computed once already in gt_ready
    return dt;
}

static void gt_free(mxp_timer *tm) {
    ggml_timer *t = (ggml_timer *)tm;
    if (!t) return;
    for (int k = 0; k < N_KEEP; k++) inst_free(&t->keep[k]);
    free(t);
}

mxp_status mxp_timer_ggml_new(mxp_ggml *gg, const mxp_exec *ex, mxp_qcache *qc, mxp_timer **out, mxp_err *err) {
    ggml_timer *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    t->base = (mxp_timer){.ready = gt_ready, .touch = gt_touch, .evict = gt_evict, .run = gt_run, .free = gt_free};
    t->gg = gg;
    t->ex = ex;
    t->qc = qc;
    *out = &t->base;
    return MXP_OK;
}

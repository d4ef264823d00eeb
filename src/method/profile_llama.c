// profile_llama.c: the latency table's predictions checked against llama.cpp itself. Every
// configuration of the whole-model check (K random ones) and every uniform candidate format
// is written as GGUF (mxp_apply) and timed by llama-bench (llama_bench.c) on the profile's
// workload, against uniform f32 in the same llama-bench runs; the predicted gains (sub-graph
// table, per-op, MAC) are compared with what llama.cpp measured, as fractions of the f32 time.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "arch/model.h"
#include "io/jsonout.h"
#include "method/llama_bench.h"
#include "method/plan.h"
#include "method/profile.h"

typedef struct lrow {
    char label[32];
    unsigned char *fmt;  // (n_nodes) format per node (linear nodes only)
    double pred_sg_s, pred_op_s, pred_mac_s, mixprec_s;
} lrow;

// Predictions of one whole configuration given per sub-graph (cfg[k]).
static void predict(const mxp_profile_table *t, const mxp_graph *g, const int *cfg, lrow *r) {
    mxp_format_id fm[256];
    for (int k = 0; k < t->part.n; k++) {
        const mxp_sg_space *sp = &t->space[k];
        const mxp_subgraph *sg = &t->part.sg[k];
        r->pred_sg_s += t->meas[t->cls[k]].cfg[cfg[k]].gain_s;
        r->pred_mac_s += mxp_profile_mac_gain(t, g, k, cfg[k]);
        mxp_sg_config_formats(sp, cfg[k], fm);
        for (int o = 0; o < sg->n_ops; o++) {
            r->fmt[sg->ops[o]] = (unsigned char)fm[o];
            if (fm[o] != MXP_FMT_F32) r->pred_op_s += t->shapes[t->shape_of[sg->ops[o]]].st[fm[o]].gain_s;
        }
    }
}

// The configuration of sub-graph k whose every op is in format f, or -1.
static int uniform_config(const mxp_profile_table *t, int k, mxp_format_id f) {
    const mxp_sg_space *sp = &t->space[k];
    mxp_format_id fm[256];
    for (int j = 0; j < sp->n_configs; j++) {
        mxp_sg_config_formats(sp, j, fm);
        int all = 1;
        for (int o = 0; o < sp->n_ops && all; o++) all = fm[o] == f;
        if (all) return j;
    }
    return -1;
}

mxp_status mxp_profile_check_llama(const mxp_model *m, const mxp_profile_table *t, const char *bench, int threads,
                                   mxp_profile_result *res, mxp_err *err) {
    const mxp_graph *g = &m->graph;
    if (t->wl.batch != 1) return mxp_fail(err, MXP_ERR_ARG, "--check-llama: llama-bench runs one sequence (--batch 1)");
    if (!(t->e2e_ref_s > 0)) return mxp_fail(err, MXP_ERR_ARG, "--check-llama needs the whole-model check (--check K)");
    int cap = t->n_check + t->n_formats;
    lrow *rows = calloc((size_t)cap, sizeof *rows);
    char **files = calloc((size_t)cap + 1, sizeof *files);
    int *cfg = calloc((size_t)t->part.n + 1, sizeof *cfg);
    const char **names = calloc((size_t)g->n_nodes + 1, sizeof *names);
    unsigned char *fm = calloc((size_t)g->n_nodes + 1, 1);
    mxp_status st = rows && files && cfg && names && fm ? MXP_OK : mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < t->n_check && !st; i++) {  // the K random configurations
        lrow *r = &rows[n];
        if (!(r->fmt = calloc((size_t)g->n_nodes, 1))) { st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory"); break; }
        snprintf(r->label, sizeof r->label, "random %d", i);
        predict(t, g, t->check[i].cfg, r);
        r->mixprec_s = t->check[i].measured_s;
        int gguf_ok = 1;
        for (int k = 0; k < g->n_nodes; k++)
            if (mxp_graph_is_op(g, k)) gguf_ok &= mxp_format_get((mxp_format_id)r->fmt[k])->has_ggml_type;
        if (!gguf_ok) {  // a format llama.cpp cannot hold
            res->llama_random_skipped++;
            free(r->fmt);
            memset(r, 0, sizeof *r);
            continue;
        }
        n++;
    }
    for (int f = 1; f < t->n_formats && !st; f++) {  // every uniform candidate (formats[0] is f32)
        const mxp_format *fd = mxp_format_get(t->formats[f]);
        int k = 0;
        for (; k < t->part.n && (cfg[k] = uniform_config(t, k, t->formats[f])) >= 0; k++) {}
        if (k < t->part.n || !fd->has_ggml_type) {
            if (res->n_llama_skipped < (int)(sizeof res->llama_skipped / sizeof *res->llama_skipped))
                snprintf(res->llama_skipped[res->n_llama_skipped++], sizeof res->llama_skipped[0], "%s", fd->name);
            continue;
        }
        lrow *r = &rows[n];
        if (!(r->fmt = calloc((size_t)g->n_nodes, 1))) { st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory"); break; }
        snprintf(r->label, sizeof r->label, "uniform %s", fd->name);
        predict(t, g, cfg, r);
        r->mixprec_s = NAN;
        n++;
    }
    // the GGUF files, in a private folder under $TMPDIR
    const char *tmp = getenv("TMPDIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/mixprec-llama-check-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int have_dir = 0;
    if (!st && !mkdtemp(dir)) st = mxp_fail(err, MXP_ERR_IO, "%s: cannot create a temporary folder: %s", dir, strerror(errno));
    else have_dir = !st;
    char plan[1100];
    snprintf(plan, sizeof plan, "%s/plan.json", dir);
    for (int i = 0; i <= n && !st; i++) {  // files[0]: f32; files[i + 1]: rows[i]
        if (!(files[i] = malloc(1100))) { st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory"); break; }
        snprintf(files[i], 1100, "%s/%d.gguf", dir, i);
        mxp_apply_report ar;
        if (i == 0) {
            st = mxp_apply(m->path, "uniform:f32", files[i], &ar, err);
        } else {
            int n_lin = 0;  // the linear ops' names and formats, in graph order
            for (int k = 0; k < g->n_nodes; k++)
                if (mxp_graph_is_op(g, k)) {
                    names[n_lin] = g->nodes[k].name;
                    fm[n_lin++] = rows[i - 1].fmt[k];
                }
            st = mxp_plan_write(plan, names, fm, n_lin, err);
            if (!st) st = mxp_apply(m->path, plan, files[i], &ar, err);
        }
        if (st) st = mxp_fail_prefix(err, "--check-llama, writing %s: ", i ? rows[i - 1].label : "uniform f32");
    }
    mxp_llama_speed *sp = st ? NULL : calloc((size_t)n + 1, sizeof *sp);
    if (!st && !sp) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    mxp_llama_bench_opts bo = {.threads = threads, .rounds = 3};
    if (t->wl.decode) {
        bo.decode = 16;  // tokens decoded after the workload's cached positions
        bo.depth = t->wl.tokens;
    } else {
        bo.prefill = t->wl.tokens;
    }
    if (!st) st = mxp_llama_bench_run(bench, (const char *const *)files, n + 1, &bo, dir, sp, res->llama_build,
                                      sizeof res->llama_build, err);
    if (!st) {
        res->llama = calloc((size_t)n, sizeof *res->llama);
        double *tmpv = malloc(3 * (size_t)n * sizeof *tmpv + 1);
        if (!res->llama || !tmpv) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        double ref = t->e2e_ref_s, ref_tps = t->wl.decode ? sp[0].decode_tps : sp[0].prefill_tps;
        for (int i = 0; i < n && !st; i++) {
            double tps = t->wl.decode ? sp[i + 1].decode_tps : sp[i + 1].prefill_tps;
            mxp_profile_llama_row *o = &res->llama[i];
            snprintf(o->label, sizeof o->label, "%s", rows[i].label);
            o->pred_subgraph = rows[i].pred_sg_s / ref;
            o->pred_op = rows[i].pred_op_s / ref;
            o->pred_mac = rows[i].pred_mac_s / ref;
            o->mixprec_measured = isnan(rows[i].mixprec_s) ? NAN : rows[i].mixprec_s / ref;
            o->llama_tps = tps;
            o->llama_ref_tps = ref_tps;
            o->llama_measured = 1 - ref_tps / tps;  // (t_f32 - t) / t_f32 with t = 1 / tokens per s
        }
        if (!st) {
            res->n_llama = n;
            double *e[3] = {tmpv, tmpv + n, tmpv + 2 * n};
            for (int i = 0; i < n; i++) {
                const mxp_profile_llama_row *o = &res->llama[i];
                e[0][i] = fabs(o->pred_subgraph - o->llama_measured);
                e[1][i] = fabs(o->pred_op - o->llama_measured);
                e[2][i] = fabs(o->pred_mac - o->llama_measured);
            }
            res->llama_mae_subgraph = n ? mxp_median_inplace(e[0], (size_t)n) : 0;
            res->llama_mae_op = n ? mxp_median_inplace(e[1], (size_t)n) : 0;
            res->llama_mae_mac = n ? mxp_median_inplace(e[2], (size_t)n) : 0;
        }
        free(tmpv);
    }
    for (int i = 0; i <= n && files; i++) {
        if (files[i]) remove(files[i]);
        free(files[i]);
    }
    if (have_dir) {
        remove(plan);
        rmdir(dir);
    }
    for (int i = 0; rows && i < n; i++) free(rows[i].fmt);
    free(rows);
    free(files);
    free(cfg);
    free(names);
    free(fm);
    free(sp);
    return st;
}

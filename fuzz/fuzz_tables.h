// fuzz_tables.h: the fixed model and the valid tables the sensitivity and latency fuzz
// targets read their input against. A one-layer synthetic Llama, candidate formats f32, bf16
// and q8_0, q/k/v and gate/up tied: a latency table of a few kilobytes. Built once (static
// storage, set up by LLVMFuzzerInitialize and never changed afterwards).
//
// Seeds: with MXP_FUZZ_WRITE_SEEDS=DIR set, LLVMFuzzerInitialize writes the valid table of
// the target's own kind to DIR/valid.json (fuzz_seed.h). Header-only; include in one target.
#ifndef MXP_FUZZ_TABLES_H
#define MXP_FUZZ_TABLES_H

#include <stdio.h>
#include <string.h>

#include "arch/model.h"
#include "method/profile.h"
#include "fuzz_seed.h"
#include "io/jsonout.h"
#include "method/sens_io.h"
#include "method/solve.h"

typedef struct fuzz_tables {
    mxp_model *model;
    char key[32];           // the latency table's cache key
    char *sens_json;        // a valid sensitivity table of the model (text)
    char *lat_json;         // a valid latency table of the model (text)
    cJSON *sens, *latj;     // the same, parsed
} fuzz_tables;

static const mxp_format_id fuzz_formats[] = {MXP_FMT_F32, MXP_FMT_BF16, MXP_FMT_Q8_0};
static const char *const fuzz_ties[] = {"q_proj,k_proj,v_proj", "gate_proj,up_proj"};
enum { FUZZ_SEQ = 8 };

static void fuzz_die(const char *what, const mxp_err *err) {
    fprintf(stderr, "fuzz setup: %s: %s\n", what, err ? err->msg : "");
    abort();
}

// Initialise t->lat for the model (what mxp_profile does before it measures), with fixed
// machine strings so that the cache key is the same on every machine.
static void fuzz_latency_table(fuzz_tables *t, mxp_profile_table *lat) {
    mxp_err err = {0};
    mxp_workload wl = {.decode = 0, .tokens = 4, .batch = 1};
    if (mxp_profile_table_init(lat, &t->model->graph, &wl, fuzz_formats, 3, fuzz_ties, 2, &err))
        fuzz_die("latency table", &err);
    lat->isa = "ref";
    lat->threads = 1;
    lat->rel_ci = 0.01;
    lat->budget_s = 1;
    snprintf(lat->cpu, sizeof lat->cpu, "fuzz");
    snprintf(lat->blas, sizeof lat->blas, "fuzz");
}

static void fuzz_tables_init(fuzz_tables *t, int write_lat) {
    mxp_err err = {0};
    static const mxp_model_config c = {.arch = MXP_ARCH_LLAMA, .vocab = 64, .dim = 32, .n_layers = 1, .n_heads = 2,
                                       .n_kv_heads = 1, .head_dim = 16, .ffn = 64, .max_pos = 32,
                                       .norm_eps = 1e-5f, .rope_theta = 10000.0};
    if (mxp_model_synthetic(&c, 3, &t->model, &err)) fuzz_die("model", &err);
    const mxp_graph *g = &t->model->graph;
    // sensitivity: made-up accumulators, two samples
    mxp_sens s;
    if (mxp_sens_init(&s, g, fuzz_formats, 3, FUZZ_SEQ, &err)) fuzz_die("sensitivity table", &err);
    s.samples = 2;
    s.loss_sum = 8.5;
    for (int i = 0; i < s.n_ops; i++)
        for (int f = 0; f < MXP_FMT_COUNT; f++) {
            double v = 1e-6 * (1 + i) * (1 + f);
            for (int mt = 0; mt < MXP_METRIC_COUNT; mt++) s.ops[i].sum[mt][f] = v;
            s.ops[i].sum_d4[f] = v * v;
            s.ops[i].sum_w[f] = 0.75 * v;
            s.ops[i].sum_a[f] = 0.25 * v;
        }
    cJSON *sj = mxp_sens_to_json(&s, MXP_METRIC_TAYLOR, NULL, 1);
    mxp_sens_free(&s);
    // latency: made-up measurements (every configuration a little faster than f32)
    mxp_profile_table lat;
    fuzz_latency_table(t, &lat);
    for (int c2 = 0; c2 < lat.n_cls; c2++) {
        mxp_class_meas *cm = &lat.meas[c2];
        cm->ref_time_s = 1e-3;
        for (int k = 0; k < lat.space[cm->rep].n_configs; k++)
            cm->cfg[k] = (mxp_cfg_stat){.time_s = 1e-3 - 1e-5 * k, .gain_s = 1e-5 * k, .ci_s = 1e-6, .repeats = 5};
    }
    for (int k = 0; k < lat.n_shapes; k++)
        for (int f = 0; f < MXP_FMT_COUNT; f++) lat.shapes[k].st[f] = (mxp_cfg_stat){.time_s = 1e-4, .repeats = 5};
    for (int f = 0; f < MXP_FMT_COUNT; f++) lat.rate[f] = 1e9;
    mxp_profile_cache_key(&lat, g, t->key);
    cJSON *lj = mxp_profile_to_json(&lat, g, cJSON_CreateObject(), t->key);
    mxp_profile_table_free(&lat);
    if (!sj || !lj) fuzz_die("tables to JSON", NULL);
    t->sens_json = cJSON_Print(sj);
    t->lat_json = cJSON_Print(lj);
    if (!t->sens_json || !t->lat_json) fuzz_die("printing the tables", NULL);
    // read back through the text, as every reader sees a table (the writer's exact sums are raw
    // number text in the tree it builds)
    cJSON_Delete(sj);
    sj = cJSON_Parse(t->sens_json);
    if (!sj) fuzz_die("parsing the printed sensitivity table", NULL);
    t->sens = sj;
    t->latj = lj;
    // the valid tables must be accepted by every reader the targets fuzz
    mxp_sens back;
    if (mxp_sens_init(&back, g, fuzz_formats, 3, FUZZ_SEQ, &err) || mxp_sens_restore(&back, sj, "sens", &err))
        fuzz_die("valid sensitivity table refused", &err);
    mxp_sens_free(&back);
    fuzz_latency_table(t, &lat);
    if (mxp_profile_from_json(&lat, g, lj, t->key, "latency", &err)) fuzz_die("valid latency table refused", &err);
    mxp_profile_table_free(&lat);
    mxp_solve_problem p;
    if (mxp_solve_problem_build(&p, sj, "sens", lj, "latency", NULL, &err)) fuzz_die("valid tables refused", &err);
    if (p.n_groups < 3) fuzz_die("too few groups", NULL);
    mxp_solve_problem_free(&p);
    const char *dir = getenv("MXP_FUZZ_WRITE_SEEDS");
    const char *own = write_lat ? t->lat_json : t->sens_json;
    if (dir) fuzz_write_seed(dir, "valid.json", own, strlen(own));
}

#endif

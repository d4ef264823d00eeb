// cmd_profile.c: mixprec profile MODEL --workload W -o latency.json [...] (docs/DESIGN.md 1.2).
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define MAX_TIES 64

int cmd_profile(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    const char *ties[MAX_TIES];
    mxp_profile_opts o = {.progress = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--workload") && has_val) {
            o.workload = argv[++i];
        } else if (!strcmp(a, "--batch") && has_val) {
            if (!cli_parse_pos_int(a, argv[++i], &o.batch)) return 2;
        } else if (!strcmp(a, "--formats") && has_val) {
            o.formats = argv[++i];
        } else if (!strcmp(a, "--tie") && has_val) {
            if (o.n_ties == MAX_TIES) return cli_usage_error("profile: too many --tie lists", "");
            ties[o.n_ties++] = argv[++i];
        } else if (!strcmp(a, "--data") && has_val) {
            o.data_path = argv[++i];
        } else if (!strcmp(a, "--seed") && has_val) {
            if (!cli_parse_u64(a, argv[++i], &o.seed)) return 2;
        } else if (!strcmp(a, "--rel-ci") && has_val) {
            if (!cli_parse_pos_double(a, argv[++i], &o.rel_ci)) return 2;
        } else if (!strcmp(a, "--budget") && has_val) {
            if (!cli_parse_pos_double(a, argv[++i], &o.budget_s)) return 2;
        } else if (!strcmp(a, "--check") && has_val) {
            if (!cli_parse_pos_int(a, argv[++i], &o.check)) return 2;
        } else if (!strcmp(a, "--check-llama")) {
            o.check_llama = 1;
        } else if (!strcmp(a, "--llama-bench") && has_val) {
            o.llama_bench = argv[++i];
        } else if (!strcmp(a, "--check-budget") && has_val) {
            if (!cli_parse_pos_double(a, argv[++i], &o.check_budget_s)) return 2;
        } else if (!strcmp(a, "--cache-dir") && has_val) {
            o.cache_dir = argv[++i];
        } else if (!strcmp(a, "--no-cache")) {
            o.no_cache = 1;
        } else if (!strcmp(a, "--backend") && has_val) {
            o.backend = argv[++i];
            if (strcmp(o.backend, "ggml") && strcmp(o.backend, "native"))
                return cli_usage_error("profile: --backend must be ggml or native, not ", o.backend);
        } else if (!strcmp(a, "--threads") && has_val) {
            if (!cli_parse_pos_int(a, argv[++i], &o.threads)) return 2;
        } else if (!strcmp(a, "--no-pin")) {
            o.no_pin = 1;
        } else if (!strcmp(a, "--quiet")) {
            o.progress = 0;
        } else if (!strcmp(a, "-o") && has_val) {
            out = argv[++i];
        } else if (a[0] == '-') {
            return cli_usage_error("profile: unknown option or missing value: ", a);
        } else if (!model) {
            model = a;
        } else {
            return cli_usage_error("profile: unexpected argument ", a);
        }
    }
    if (!model) return cli_usage_error("profile needs a MODEL", "");
    if (!o.workload) return cli_usage_error("profile needs --workload prefill:T or decode:L", "");
    if (!out && !o.check) return cli_usage_error("profile needs -o latency.json (or --check K)", "");
    o.ties = ties;
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_load(model, &m, &err)) return cli_fail(&err);
    mxp_profile_result r;
    mxp_status st = mxp_profile(m, &o, out, &r, &err);
    mxp_model_free(m);
    if (st) return cli_fail(&err);
    printf("timed on: %s\n", r.engine);
    printf("%d sub-graphs, %d measured (shared signatures), %d configurations%s\n", r.n_subgraphs, r.n_classes,
           r.n_configs, r.from_cache ? " (from the cache)" : "");
    printf("sum of sub-graph reference times: %.4g s; worst gain CI: %.2f%% of its sub-graph; %d configurations "
           "stopped by the time cap\n",
           r.ref_time_s, 100 * r.max_rel_ci, r.n_capped);
    if (r.cache_path[0]) printf("cache: %s\n", r.cache_path);
    if (r.n_check) {
        printf("\nwhole-model check: %d random configurations, end-to-end reference %.4g s\n", r.n_check, r.e2e_ref_s);
        printf("%4s %12s %10s %12s %12s %12s\n", "#", "measured ms", "+-ci ms", "subgraph ms", "per-op ms", "MAC ms");
        for (int i = 0; i < r.n_check; i++) {
            const mxp_profile_check_row *c = &r.check[i];
            printf("%4d %12.3f %10.3f %12.3f %12.3f %12.3f\n", i, 1e3 * c->measured_s, 1e3 * c->ci_s,
                   1e3 * c->pred_subgraph_s, 1e3 * c->pred_op_s, 1e3 * c->pred_mac_s);
        }
        printf("median |predicted - measured| gain, %% of the reference time: sub-graph %.2f%%, per-op %.2f%%, "
               "MAC %.2f%%\n",
               100 * r.mae_subgraph, 100 * r.mae_op, 100 * r.mae_mac);
    }
    if (r.n_llama) {
        printf("\nllama.cpp check (llama-bench, build %s): gains as %% of the f32 time\n", r.llama_build);
        printf("%-14s %10s %10s %10s %10s %10s %10s\n", "configuration", "llama.cpp", "mixprec", "subgraph", "per-op",
               "MAC", "tok/s");
        for (int i = 0; i < r.n_llama; i++) {
            const mxp_profile_llama_row *c = &r.llama[i];
            char mx[16] = "-";
            if (c->mixprec_measured == c->mixprec_measured) snprintf(mx, sizeof mx, "%+.1f", 100 * c->mixprec_measured);
            printf("%-14s %+10.1f %10s %+10.1f %+10.1f %+10.1f %10.1f\n", c->label, 100 * c->llama_measured, mx,
                   100 * c->pred_subgraph, 100 * c->pred_op, 100 * c->pred_mac, c->llama_tps);
        }
        printf("f32 in llama.cpp: %.1f tok/s\n", r.llama[0].llama_ref_tps);
        for (int i = 0; i < r.n_llama_skipped; i++)
            printf("uniform %s: no GGUF of it (no GGUF type, or an op cannot take it), not timed in llama.cpp\n",
                   r.llama_skipped[i]);
        if (r.llama_random_skipped)
            printf("%d random configurations hold a format without a GGUF type: not timed in llama.cpp\n",
                   r.llama_random_skipped);
        printf("median |predicted - llama.cpp measured| gain, %% of the f32 time: sub-graph %.2f%%, per-op %.2f%%, "
               "MAC %.2f%%\n",
               100 * r.llama_mae_subgraph, 100 * r.llama_mae_op, 100 * r.llama_mae_mac);
    }
    printf("profile: backend=%s threads=%d subgraphs=%d classes=%d configs=%d seconds=%.1f cache=%s check=%d "
           "mae_subgraph=%.4f mae_op=%.4f mae_mac=%.4f",
           o.backend ? o.backend : "ggml", r.threads, r.n_subgraphs, r.n_classes, r.n_configs, r.seconds, r.from_cache ? "hit" : "miss", r.n_check, r.mae_subgraph,
           r.mae_op, r.mae_mac);
    if (r.n_llama)
        printf(" llama_check=%d llama_mae_subgraph=%.4f llama_mae_op=%.4f llama_mae_mac=%.4f", r.n_llama,
               r.llama_mae_subgraph, r.llama_mae_op, r.llama_mae_mac);
    printf("\n");
    mxp_profile_result_free(&r);
    return 0;
}

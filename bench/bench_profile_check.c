// bench_profile_check.c: the latency table and its prediction check (mixprec profile
// --check) on the 0.85B-parameter Llama-shaped random-weight model of bench_e2e (hidden 2048,
// 16 layers, 32 heads / 8 kv heads, ffn 5632, vocab 32000), which has no files for the CLI.
//
// usage: bench_profile_check [--workload prefill:256|decode:512] [--check K] [--budget S]
//                            [--check-budget S] [--formats LIST] [--no-cache] [-o FILE]
// Prints the cost of the table (wall seconds), then per check row the measured end-to-end gain
// and the three predictions, and the median absolute error of each predictor as a fraction
// of the end-to-end reference time. q/k/v and gate/up are tied, as mixprec optimize ties them.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/model.h"

int main(int argc, char **argv) {
    const char *ties[] = {"q_proj,k_proj,v_proj", "gate_proj,up_proj"};
    mxp_profile_opts o = {.workload = "decode:512", .formats = "f32,bf16,f16,q8_0,q4_0", .ties = ties, .n_ties = 2,
                          .check = 8, .budget_s = 420, .check_budget_s = 240, .progress = 1, .seed = 1};
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        int v = i + 1 < argc;
        if (!strcmp(argv[i], "--workload") && v) o.workload = argv[++i];
        else if (!strcmp(argv[i], "--check") && v) o.check = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--budget") && v) o.budget_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--check-budget") && v) o.check_budget_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "--formats") && v) o.formats = argv[++i];
        else if (!strcmp(argv[i], "--no-cache")) o.no_cache = 1;
        else if (!strcmp(argv[i], "-o") && v) out = argv[++i];
        else {
            fprintf(stderr, "usage: bench_profile_check [--workload W] [--check K] [--budget S] [--check-budget S] "
                            "[--formats LIST] [--no-cache] [-o FILE]\n");
            return 2;
        }
    }
    mxp_model_config big = {.arch = MXP_ARCH_LLAMA, .vocab = 32000, .dim = 2048, .n_layers = 16, .n_heads = 32,
                            .n_kv_heads = 8, .head_dim = 64, .ffn = 5632, .max_pos = 4096, .norm_eps = 1e-5f,
                            .rope_theta = 10000.0};
    snprintf(big.arch_name, sizeof big.arch_name, "llama-0.85B");
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_synthetic(&big, 3, &m, &err)) {
        fprintf(stderr, "bench_profile_check: %s\n", err.msg);
        return 1;
    }
    printf("bench_profile_check: llama 0.85B (random weights), workload %s, formats %s, ties q/k/v and gate/up, "
           "OMP_WAIT_POLICY=%s\n",
           o.workload, o.formats, getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(unset)");
    mxp_profile_result r;
    mxp_status st = mxp_profile(m, &o, out, &r, &err);
    mxp_model_free(m);
    if (st) {
        fprintf(stderr, "bench_profile_check: %s\n", err.msg);
        return 1;
    }
    printf("%d sub-graphs, %d measured, %d configurations%s; worst gain CI %.2f%% of its sub-graph, %d capped\n",
           r.n_subgraphs, r.n_classes, r.n_configs, r.from_cache ? " (cached table)" : "", 100 * r.max_rel_ci,
           r.n_capped);
    printf("sum of sub-graph reference times %.4f s, end-to-end reference %.4f s\n", r.ref_time_s, r.e2e_ref_s);
    printf("%4s %12s %10s %12s %12s %12s\n", "#", "measured ms", "+-ci ms", "subgraph ms", "per-op ms", "MAC ms");
    for (int i = 0; i < r.n_check; i++) {
        const mxp_profile_check_row *c = &r.check[i];
        printf("%4d %12.3f %10.3f %12.3f %12.3f %12.3f\n", i, 1e3 * c->measured_s, 1e3 * c->ci_s, 1e3 * c->pred_subgraph_s,
               1e3 * c->pred_op_s, 1e3 * c->pred_mac_s);
    }
    printf("median |pred - measured| / reference: sub-graph %.2f%%, per-op %.2f%%, MAC %.2f%%; total %.0f s\n",
           100 * r.mae_subgraph, 100 * r.mae_op, 100 * r.mae_mac, r.seconds);
    mxp_profile_result_free(&r);
    return 0;
}

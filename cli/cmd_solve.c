// cmd_solve.c: mixprec solve SENS.json LATENCY.json -o PLAN.json [budget] [options]:
// the integer program of docs/DESIGN.md 1.3 (library: mxp_solve).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_RULES 256

int cmd_solve(int argc, char **argv) {
    const char *pos[2] = {0};
    int npos = 0;
    const char *force[MAX_RULES], *forbid[MAX_RULES];
    mxp_solve_opts o = {0};
    o.force = force;
    o.forbid = forbid;
    double ppl = 0;
    int has_ppl = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) {
            o.out_plan = argv[++i];
        } else if (!strcmp(a, "--max-loss-mse") && has_val) {
            if (!cli_parse_pos_double(a, argv[++i], &o.max_loss_mse)) return 2;
            o.has_max_loss = 1;
        } else if (!strcmp(a, "--max-ppl-increase") && has_val) {
            if (!cli_parse_ppl_increase(argv[++i], &ppl)) return 2;
            has_ppl = 1;
        } else if (!strcmp(a, "--min-gain") && has_val) {
            if (!cli_parse_nonneg_double(a, argv[++i], &o.min_gain)) return 2;
            o.has_min_gain = 1;
        } else if (!strcmp(a, "--max-bytes") && has_val) {
            if (!cli_parse_pos_double(a, argv[++i], &o.max_bytes)) return 2;
            o.has_max_bytes = 1;
        } else if (!strcmp(a, "--objective") && has_val) {
            o.objective = argv[++i];
        } else if ((!strcmp(a, "--force") || !strcmp(a, "--forbid")) && has_val) {
            int is_force = !strcmp(a, "--force");
            int *n = is_force ? &o.n_force : &o.n_forbid;
            if (*n >= MAX_RULES) return cli_usage_error("too many --force/--forbid rules", "");
            (is_force ? force : forbid)[(*n)++] = argv[++i];
        } else if (!strcmp(a, "--pareto") && has_val) {
            if (!cli_parse_pos_int(a, argv[++i], &o.pareto)) return 2;
        } else if (!strcmp(a, "--csv") && has_val) {
            o.out_csv = argv[++i];
        } else if (!strcmp(a, "--tensor-types") && has_val) {
            o.out_tensor_types = argv[++i];
        } else if (!strcmp(a, "--time-limit") && has_val) {
            if (!cli_parse_pos_double(a, argv[++i], &o.time_limit_s)) return 2;
        } else if (!strcmp(a, "--mip-gap") && has_val) {
            if (!cli_parse_nonneg_double(a, argv[++i], &o.mip_gap)) return 2;
        } else if (!strcmp(a, "--no-prune")) {
            o.no_prune = 1;
        } else if (a[0] == '-') {
            return cli_usage_error("solve: unknown option or missing value: ", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_usage_error("solve: unexpected argument ", a);
        }
    }
    if (npos != 2) return cli_usage_error("solve needs SENS.json and LATENCY.json", "");
    if (has_ppl && o.has_max_loss) return cli_usage_error("give --max-loss-mse or --max-ppl-increase, not both", "");
    if (has_ppl) {
        // |E[dL]| <= sqrt(E[dL^2]): a loss MSE of ln(1+P)^2 bounds the perplexity increase by P
        double l = log1p(ppl);
        o.max_loss_mse = l * l;
        o.has_max_loss = 1;
    }
    if (!o.out_plan && !o.out_tensor_types && !o.out_csv) return cli_usage_error("solve needs -o PLAN.json", "");
    o.sens_path = pos[0];
    o.latency_path = pos[1];
    mxp_err err = {0};
    mxp_solve_report r;
    mxp_status st = mxp_solve(&o, &r, &err);
    if (st) return cli_fail(&err);
    if (r.solved) {
        printf("%d ops in %d groups, %d configurations (%d after dominance pruning; %d ruled out by the tables, %d by "
               "ties/--force/--forbid)\n",
               r.n_ops, r.n_groups, r.n_configs, r.n_kept, r.n_dropped_input, r.n_dropped_user);
        if (o.has_max_loss) printf("budget: predicted loss MSE <= %.6g\n", o.max_loss_mse);
        printf("plan: predicted loss MSE %.6g, time gain %.6g s, MAC gain %.6g, weight bytes %.0f (saves %.0f)\n",
               r.loss_mse, r.time_gain_s, r.mac_gain, r.weight_bytes, r.mem_gain_bytes);
    }
    if (r.pareto_points) printf("pareto: %d budgets solved in %.3f s\n", r.pareto_points, r.pareto_seconds);
    printf("solve: status=%s gap=%.3g loss_mse=%.6g time_gain_s=%.6g weight_bytes=%.0f seconds=%.3f\n",
           r.solved ? r.status : "none", r.gap, r.loss_mse, r.time_gain_s, r.weight_bytes, r.seconds);
    return 0;
}

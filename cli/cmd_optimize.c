// cmd_optimize.c: mixprec optimize MODEL --data FILE --workload W (--max-ppl-increase P |
// --max-loss-mse X) -o DIR: calibrate, profile, solve, apply, then the measured check and
// the HTML report (library: mxp_optimize). Progress on stderr; one summary line on stdout.
// Ctrl-C stops after the current step (calibration: between batches) and leaves DIR as it was;
// a second Ctrl-C ends the process at once (files under DIR are still never half-written:
// every one is renamed into place whole).
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

// The one mutable global: a signal handler can reach nothing else. Set by SIGINT only.
static volatile int stop_requested;

static void on_sigint(int sig) {
    if (stop_requested) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_requested = 1;
    static const char msg[] = "\nmixprec: stopping after the current step (Ctrl-C again to quit now)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
}

int cmd_optimize(int argc, char **argv) {
    mxp_optimize_opts o = {.progress = 1, .stop = &stop_requested};
    int has_ppl = 0, has_loss = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--data") && has_val) o.data_path = argv[++i];
        else if (!strcmp(a, "--workload") && has_val) o.workload = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) o.out_dir = argv[++i];
        else if (!strcmp(a, "--formats") && has_val) o.formats = argv[++i];
        else if (!strcmp(a, "--max-ppl-increase") && has_val) {
            if (!cli_parse_ppl_increase(argv[++i], &o.max_ppl_increase)) return 2;
            has_ppl = 1;
        } else if (!strcmp(a, "--max-loss-mse") && has_val) {
            if (!cli_parse_pos_double(a, argv[++i], &o.max_loss_mse)) return 2;
            has_loss = 1;
        } else if (!strcmp(a, "--samples") && has_val) { if (!cli_parse_pos_int(a, argv[++i], &o.calib_samples)) return 2; }
        else if (!strcmp(a, "--seq") && has_val) { if (!cli_parse_pos_int(a, argv[++i], &o.seq_len)) return 2; }
        else if (!strcmp(a, "--eval-samples") && has_val) { if (!cli_parse_pos_int(a, argv[++i], &o.eval_samples)) return 2; }
        else if (!strcmp(a, "--pareto") && has_val) { if (!cli_parse_pos_int(a, argv[++i], &o.pareto)) return 2; }
        else if (!strcmp(a, "--profile-budget") && has_val) { if (!cli_parse_pos_double(a, argv[++i], &o.profile_budget_s)) return 2; }
        else if (!strcmp(a, "--seed") && has_val) { if (!cli_parse_u64(a, argv[++i], &o.seed)) return 2; }
        else if (!strcmp(a, "--no-baselines")) o.no_baselines = 1;
        else if (!strcmp(a, "--no-cache")) o.no_cache = 1;
        else if (!strcmp(a, "--llama-bench") && has_val) o.llama_bench = argv[++i];
        else if (!strcmp(a, "--no-llama-bench")) o.no_llama_bench = 1;
        else if (!strcmp(a, "--no-pin")) o.no_pin = 1;
        else if (!strcmp(a, "--profile-backend") && has_val) {
            o.profile_backend = argv[++i];
            if (strcmp(o.profile_backend, "ggml") && strcmp(o.profile_backend, "native"))
                return cli_usage_error("optimize: --profile-backend must be ggml or native, not ", o.profile_backend);
        }
        else if (!strcmp(a, "--quiet")) o.progress = 0;
        else if (a[0] == '-') return cli_usage_error("optimize: unknown option or missing value: ", a);
        else if (!o.model_path) o.model_path = a;
        else return cli_usage_error("optimize: unexpected argument ", a);
    }
    if (!o.model_path) return cli_usage_error("optimize needs a MODEL", "");
    if (!o.data_path) return cli_usage_error("optimize needs --data FILE", "");
    if (!o.workload) return cli_usage_error("optimize needs --workload prefill:T or decode:L", "");
    if (!o.out_dir) return cli_usage_error("optimize needs -o DIR", "");
    if (has_ppl == has_loss) return cli_usage_error("optimize needs one budget: --max-ppl-increase P or --max-loss-mse X", "");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    mxp_err err = {0};
    mxp_optimize_result r;
    mxp_status st = mxp_optimize(&o, &r, &err);
    if (st) return cli_fail(&err);
    printf("stages (s): calibrate %.1f, profile %.1f, solve %.1f, apply %.1f, measure %.1f, report %.1f; total %.1f\n",
           r.stage_s[0], r.stage_s[1], r.stage_s[2], r.stage_s[3], r.stage_s[4], r.stage_s[5], r.seconds);
    printf("target over %d budgets: loss MSE <= 1.5 x budget at %d, gain >= best uniform within budget at %d\n",
           r.target_budgets, r.target_loss_ok, r.target_gain_ok);
    if (r.target_llama_budgets)
        printf("target on llama.cpp's speeds: %s gain >= best uniform within budget at %d of %d budgets\n",
               strncmp(o.workload, "decode", 6) ? "prefill" : "decode", r.target_llama_gain_ok, r.target_llama_budgets);
    if (r.llama_measured)
        printf("llama.cpp: prefill %.1f tok/s (%.2fx f32), decode %.1f tok/s (%.2fx f32)\n", r.llama_prefill_tps,
               r.llama_prefill_tps / r.llama_ref_prefill_tps, r.llama_decode_tps, r.llama_decode_tps / r.llama_ref_decode_tps);
    else
        printf("llama.cpp: speed not measured (see the report's notes)\n");
    printf("report: %s/report.html\n", o.out_dir);
    printf("optimize: plan=%s/plan.json gguf=%s%s budget_loss_mse=%.9g predicted_loss_mse=%.9g measured_loss_mse=%.9g "
           "predicted_gain=%.4f measured_gain=%.4f tokens_per_s=%.1f ref_tokens_per_s=%.1f ppl_ref=%.4f ppl=%.4f "
           "kl=%.6g top1=%.4f target_loss_ok=%d/%d target_gain_ok=%d/%d seconds=%.1f\n",
           o.out_dir, r.gguf_written ? o.out_dir : "none", r.gguf_written ? "/model.gguf" : "", r.tau, r.predicted_loss_mse, r.measured_loss_mse,
           r.predicted_gain, r.measured_gain, r.tokens_per_s, r.ref_tokens_per_s, r.ppl_ref, r.ppl, r.kl, r.top1,
           r.target_loss_ok, r.target_budgets, r.target_gain_ok, r.target_budgets, r.seconds);
    return 0;
}

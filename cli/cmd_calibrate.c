// cmd_calibrate.c: mixprec calibrate MODEL --data FILE -o sens.json [...].
// Ctrl-C (SIGINT) or SIGTERM (what batch schedulers send before they kill a job) stops between
// batches: the accumulators so far are kept in sens.json.partial (continue with --resume) and
// sens.json is not written.
// Under mpirun or srun the processes share the samples (mxp_dist); rank 0 prints and writes.
// A failure on any rank prints its message and ends every rank (MPI_Abort, non-zero exit).
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

// The one mutable global: a signal handler can reach nothing else. Set by SIGINT and SIGTERM only.
static volatile int stop_requested;

static void on_sigint(int sig) {
    (void)sig;
    stop_requested = 1;
}

// Print the error and end the job: a rank that returned early would leave the others waiting
// in MPI. A stop is the exception: every rank stopped at the same point (rank 0 has saved the
// partial table and says where it is), so the job ends normally, with exit status 1.
static int fail(mxp_dist *d, const mxp_err *err) {
    if (err->code == MXP_ERR_INTERRUPTED) {
        if (d->rank == 0) cli_fail(err);
        mxp_dist_finalize(d);
        return 1;
    }
    if (d->size > 1) fprintf(stderr, "mixprec: error (rank %d of %d): %s\n", d->rank, d->size, err->msg);
    else cli_fail(err);
    mxp_dist_abort(d, 1);
    return 1;
}

int cmd_calibrate(int argc, char **argv) {
    const char *model = NULL;
    mxp_calib_opts o = {.progress = 1, .stop = &stop_requested};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--data") && has_val) o.data_path = argv[++i];
        else if (!strcmp(a, "-o") && has_val) o.out_path = argv[++i];
        else if (!strcmp(a, "--formats") && has_val) o.formats = argv[++i];
        else if (!strcmp(a, "--metric") && has_val) o.metric = argv[++i];
        else if (!strcmp(a, "--fisher")) o.fisher = 1;
        else if (!strcmp(a, "--resume")) o.resume = 1;
        else if (!strcmp(a, "--check-csv") && has_val) o.check_csv = argv[++i];
        else if (!strcmp(a, "--samples") && has_val) { if (!cli_parse_pos_int(a, argv[++i], &o.samples)) return 2; }
        else if (!strcmp(a, "--seq") && has_val) { if (!cli_parse_pos_int(a, argv[++i], &o.seq_len)) return 2; }
        else if (!strcmp(a, "--batch") && has_val) { if (!cli_parse_pos_int(a, argv[++i], &o.batch)) return 2; }
        else if (!strcmp(a, "--check") && has_val) { if (!cli_parse_pos_int(a, argv[++i], &o.check)) return 2; }
        else if (!strcmp(a, "--check-samples") && has_val) { if (!cli_parse_pos_int(a, argv[++i], &o.check_samples)) return 2; }
        else if (!strcmp(a, "--seed") && has_val) { if (!cli_parse_u64(a, argv[++i], &o.seed)) return 2; }
        else if (!strcmp(a, "--cache-mb") && has_val) {
            uint64_t mb;
            if (!cli_parse_u64(a, argv[++i], &mb)) return 2;
            if (mb > (1ull << 30)) return cli_usage_error("calibrate: --cache-mb is larger than 2^30: ", argv[i]);
            o.cache_mb = mb ? (long long)mb : -1;
        }
        else if (!strcmp(a, "--stream") && has_val) {
            const char *v = argv[++i];
            if (!strcmp(v, "auto")) o.stream = MXP_STREAM_AUTO;
            else if (!strcmp(v, "on")) o.stream = MXP_STREAM_ON;
            else if (!strcmp(v, "off")) o.stream = MXP_STREAM_OFF;
            else return cli_usage_error("calibrate: --stream expects on, off or auto, got ", v);
        }
        else if (!strcmp(a, "--max-memory") && has_val) { if (!cli_parse_size(a, argv[++i], &o.max_memory)) return 2; }
        else if (!strcmp(a, "--stop-after") && has_val) { if (!cli_parse_pos_int(a, argv[++i], &o.stop_after)) return 2; }
        else if (a[0] == '-') return cli_usage_error("calibrate: unknown option or missing value: ", a);
        else if (!model) model = a;
        else return cli_usage_error("calibrate: unexpected argument ", a);
    }
    if (!model) return cli_usage_error("calibrate needs a MODEL", "");
    if (!o.data_path) return cli_usage_error("calibrate needs --data FILE", "");
    if (!o.out_path) return cli_usage_error("calibrate needs -o FILE", "");
    if (o.max_memory && o.stream != MXP_STREAM_AUTO)
        return cli_usage_error("calibrate: --max-memory sets the limit of --stream auto; it does not go with --stream ",
                               o.stream == MXP_STREAM_ON ? "on" : "off");
    mxp_err err = {0};
    mxp_dist d;
    if (mxp_dist_init(&d, &err)) return cli_fail(&err);
    o.dist = &d;
    o.progress = d.rank == 0;
    mxp_model *m;
    if (mxp_model_load(model, &m, &err)) return fail(&d, &err);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    mxp_calib_result r;
    mxp_status st = mxp_calibrate(m, &o, &r, &err);
    mxp_model_free(m);
    if (st) return fail(&d, &err);
    if (d.rank == 0) {
        printf("calibrate: samples=%zu reference_loss=%.6f seconds=%.1f out=%s\n", r.samples, r.reference_loss,
               r.seconds, o.out_path);
        if (r.checked)
            printf("check: config_spearman_taylor=%.3f config_median_ratio_taylor=%.3g single_spearman_taylor=%.3f "
                   "single_median_ratio_taylor=%.3g\n",
                   r.config_spearman[0], r.config_median_ratio[0], r.single_spearman[0], r.single_median_ratio[0]);
        fflush(stdout);
    }
    mxp_dist_finalize(&d);
    return 0;
}

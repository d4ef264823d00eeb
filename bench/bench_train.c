// bench_train.c: forward+backward speed and peak memory of a Llama-shaped model with random
// weights, mixprec vs PyTorch in the same run.
//
// usage: bench_train [--batch B] [--iters K] [--rounds R] [--stream] [--no-torch]
//        (run from the repository root)
// Model: hidden 768, 12 layers, 12 heads, ffn 2048, vocab 32000, sequence 256 (134M params).
// One iteration = forward + mean cross-entropy + backward with every weight gradient formed
// (as PyTorch's loss.backward() does), one mxp_exec_pass. mixprec's modes: forming each linear
// op's weight gradient in one reused buffer (WGRAD_SCRATCH, what the sensitivity pass does),
// keeping a gradient per parameter (PARAM_GRADS, like PyTorch's .grad), and with --stream the
// scratch mode streamed (mxp_exec_init_stream over the graph's cut nodes: only the segment
// inputs kept, each segment's forward run again before its backward, as `calibrate --stream
// on` runs a batch). PyTorch runs as tools/bench_torch_train.py with the same shapes and
// thread count.
//
// Each mode runs in a process of its own (this program again, `--child MODE`), so that its
// peak RSS (getrusage's ru_maxrss, per process) is its own: the model's f32 weights (owned, so
// streaming's release of mapped weights changes nothing here) plus what the mode allocates.
// A round runs every mode once, then PyTorch, so the modes are interleaved over the R rounds;
// mixprec's figures are the medians of all R x K timed iterations (each child runs 2 warm-ups
// first), PyTorch's the median of its R runs' medians. The machine is shared and noisy: the
// load average is printed before and after. Last, the FLOP rate of every mode and of PyTorch
// against this machine's bare sgemm rate, measured in the same run: the ceiling of both.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <omp.h>

#include "arch/model.h"
#include "core/rng.h"
#include "method/partition.h"
#include "runtime/exec.h"
#include <cblas.h>  // after the project headers: its <complex.h> defines I

enum { T = 256, MAX_ITERS = 1000, MAX_ROUNDS = 100 };

enum { MODE_SCRATCH, MODE_PARAM, MODE_STREAM, N_MODES };
static const char *const mode_key[N_MODES] = {"scratch", "param", "stream"};
static const char *const mode_label[N_MODES] = {
    "mixprec, weight grads in scratch, in memory",
    "mixprec, a gradient per param, in memory",
    "mixprec, weight grads in scratch, streaming",
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static void load_avg(char *buf, size_t n) {
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;
    if (!f || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3) snprintf(buf, n, "(unknown)");
    else snprintf(buf, n, "%.2f %.2f %.2f", a, b, c);
    if (f) fclose(f);
}

// Bytes of the activations a backward pass must keep: every node value, plus the saved norm
// statistics and attention probabilities.
static double activation_mb(const mxp_graph *g, int B) {
    double floats = 0, N = (double)B * T;
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        floats += N * n->cols;
        if (n->op == MXP_OP_RMSNORM) floats += N;
        if (n->op == MXP_OP_ATTENTION) floats += (double)B * n->heads * T * T;
    }
    return floats * 4 / 1048576.0;
}

static mxp_model *make_model(void) {
    mxp_model_config c = {.arch = MXP_ARCH_LLAMA, .vocab = 32000, .dim = 768, .n_layers = 12, .n_heads = 12,
                          .n_kv_heads = 12, .head_dim = 64, .ffn = 2048, .max_pos = 2048, .norm_eps = 1e-5f,
                          .rope_theta = 10000.0};
    snprintf(c.arch_name, sizeof c.arch_name, "bench-llama-100M");
    mxp_model *m;
    mxp_err err = {0};
    if (mxp_model_synthetic(&c, 1, &m, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        exit(1);
    }
    return m;
}

// This machine's sgemm rate in GFLOP/s with the pass's threads: median of 7 timed calls of the
// pass's most common linear shape, rows x 2048 x 768 (gate/up projection's forward) and of a
// 2048^3 product, the larger of the two. A forward+backward of this model is almost all sgemm
// (the same OpenBLAS kernels PyTorch calls), so this bounds both programs' FLOP rates.
static double sgemm_gflops(int rows) {
    double best = 0;
    const int shapes[2][3] = {{rows, 2048, 768}, {2048, 2048, 2048}};
    for (int k = 0; k < 2; k++) {
        int M = shapes[k][0], N = shapes[k][1], K = shapes[k][2];
        float *a = malloc((size_t)M * K * sizeof *a), *b = malloc((size_t)K * N * sizeof *b),
              *c = malloc((size_t)M * N * sizeof *c);
        if (!a || !b || !c) {
            free(a), free(b), free(c);
            return 0;
        }
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 13) * 0.01f;
        for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 7) * 0.01f;
        double t[7];
        for (int r = -1; r < 7; r++) {
            double t0 = omp_get_wtime();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
            if (r >= 0) t[r] = omp_get_wtime() - t0;
        }
        double g = 2.0 * M * N * K / median(t, 7) / 1e9;
        if (g > best) best = g;
        free(a), free(b), free(c);
    }
    return best;
}

// Streaming: a segment's mapped weights leave the resident set after use, as calibrate does.
static mxp_status release_segment(void *ctx, int first, int last, int backward, mxp_err *err) {
    (void)backward;
    (void)err;
    mxp_model_release_nodes(ctx, first, last);
    return MXP_OK;
}

// The child: one mode, 2 warm-ups and K timed passes; prints one line to stdout,
// "child MODE loss=L rss_mb=R exec_bytes=E times=t1,t2,...".
static int child(int mode, int B, int iters) {
    mxp_model *m = make_model();
    const mxp_graph *g = &m->graph;
    int32_t *seq = malloc((size_t)B * (T + 1) * sizeof *seq);
    mxp_rng rng;
    mxp_rng_seed(&rng, 7);
    for (int i = 0; i < B * (T + 1); i++) seq[i] = (int32_t)mxp_rng_below(&rng, (uint64_t)g->vocab);
    unsigned flags = mode == MODE_PARAM ? MXP_EXEC_PARAM_GRADS : MXP_EXEC_WGRAD_SCRATCH;
    int *cuts = NULL, n_cuts = 0;
    mxp_exec ex;
    mxp_err err = {0};
    mxp_status st = mode == MODE_STREAM ? mxp_graph_cut_nodes(g, &cuts, &n_cuts, &err) : MXP_OK;
    if (!st)
        st = mode == MODE_STREAM ? mxp_exec_init_stream(&ex, g, B, T, flags, cuts, n_cuts, &err)
                                 : mxp_exec_init(&ex, g, B, T, flags, &err);
    if (!st) st = mxp_exec_set_batch(&ex, seq, &err);
    if (st) {
        fprintf(stderr, "bench_train (%s): %s\n", mode_key[mode], err.msg);
        return 1;
    }
    size_t bytes = mxp_exec_bytes(g, B, T, flags, cuts, n_cuts);
    double *t = calloc((size_t)iters, sizeof *t), loss = 0;
    for (int it = -2; it < iters; it++) {
        double t0 = mxp_now();
        st = mxp_exec_pass(&ex, 1.0f / (float)ex.N, NULL, &loss, NULL, mode == MODE_STREAM ? release_segment : NULL, m,
                           &err);
        if (st) {
            fprintf(stderr, "bench_train (%s): %s\n", mode_key[mode], err.msg);
            return 1;
        }
        if (it >= 0) t[it] = mxp_now() - t0;
    }
    printf("child %s loss=%.17g rss_mb=%.1f exec_bytes=%zu times=", mode_key[mode], loss, peak_rss_mb(), bytes);
    for (int i = 0; i < iters; i++) printf("%s%.6f", i ? "," : "", t[i]);
    printf("\n");
    free(t);
    mxp_exec_free(&ex);
    free(cuts);
    free(seq);
    mxp_model_free(m);
    return 0;
}

typedef struct mode_result {
    double *times;  // (R * K) seconds per iteration
    int n;
    double rss_mb;  // the largest peak RSS of its children
    size_t exec_bytes;
    char loss[32];
} mode_result;

// Run this program as `--child MODE` and add its line to r. Returns 0 on failure.
static int run_child(const char *self, int mode, int B, int iters, mode_result *r) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "'%s' --child %s --batch %d --iters %d", self, mode_key[mode], B, iters);
    FILE *p = popen(cmd, "r");
    char line[65536];
    int ok = 0;
    while (p && fgets(line, sizeof line, p)) {
        if (strncmp(line, "child ", 6)) continue;
        char *loss = strstr(line, " loss="), *rss = strstr(line, " rss_mb="), *eb = strstr(line, " exec_bytes="),
             *ts = strstr(line, " times=");
        if (!loss || !rss || !eb || !ts) continue;
        snprintf(r->loss, sizeof r->loss, "%.*s", (int)strcspn(loss + 6, " "), loss + 6);
        double mb = strtod(rss + 8, NULL);
        if (mb > r->rss_mb) r->rss_mb = mb;
        r->exec_bytes = strtoull(eb + 12, NULL, 10);
        char *s = ts + 7;
        for (int i = 0; i < iters; i++) {
            char *end;
            r->times[r->n++] = strtod(s, &end);
            s = end + (*end == ',');
        }
        ok = 1;
    }
    if (!p || pclose(p) != 0) ok = 0;
    return ok;
}

int main(int argc, char **argv) {
    int B = 1, iters = 5, rounds = 1, torch = 1, stream = 0, child_mode = -1;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = (int)strtol(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = (int)strtol(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = (int)strtol(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--no-torch")) torch = 0;
        else if (!strcmp(argv[i], "--stream")) stream = 1;
        else if (!strcmp(argv[i], "--child") && i + 1 < argc) {
            ++i;
            for (int k = 0; k < N_MODES; k++)
                if (!strcmp(argv[i], mode_key[k])) child_mode = k;
            if (child_mode < 0) end = argv[i];
        } else {
            end = argv[i];
        }
        if (end && *end) {
            fprintf(stderr, "usage: bench_train [--batch B] [--iters K] [--rounds R] [--stream] [--no-torch]\n");
            return 2;
        }
    }
    if (B < 1 || B > 64 || iters < 1 || iters > MAX_ITERS || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "bench_train: --batch 1..64, --iters 1..%d, --rounds 1..%d\n", MAX_ITERS, MAX_ROUNDS);
        return 2;
    }
    if (child_mode >= 0) return child(child_mode, B, iters);

    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0 || strchr(self, '\'')) {
        fprintf(stderr, "bench_train: cannot find this program's path to start the mode processes\n");
        return 1;
    }
    self[len] = 0;
    mxp_model *m = make_model();
    size_t nparams = 0;
    for (int p = 0; p < m->graph.n_params; p++) nparams += m->graph.params[p].nelem;
    // FLOPs of one iteration, counted as tools/bench_torch_train.py counts them: every linear
    // weight 6 x tokens (forward 2, backward 4) and attention's two T x T products 3 x 4 L B T^2 C
    double n_matmul = 0;
    for (int i = 0; i < m->graph.n_nodes; i++)
        if (m->graph.nodes[i].op == MXP_OP_LINEAR) n_matmul += (double)m->graph.params[m->graph.nodes[i].w].nelem;
    const double flops = 6 * n_matmul * B * T + 3.0 * 4 * m->config.n_layers * B * (double)T * T * m->config.dim;
    double weights_mb = nparams * 4.0 / 1048576.0, act = activation_mb(&m->graph, B);
    double rss_model = peak_rss_mb();
    int *cuts = NULL, n_cuts = 0;
    mxp_err err = {0};
    if (mxp_graph_cut_nodes(&m->graph, &cuts, &n_cuts, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    free(cuts);
    mxp_model_free(m);  // the children make their own
    int threads = omp_get_max_threads();
    char la[64];
    load_avg(la, sizeof la);
    printf("model: llama hidden 768, 12 layers, 12 heads, ffn 2048, vocab 32000; %.1f M params (%.0f MB f32)\n",
           nparams / 1e6, weights_mb);
    printf("batch %d x seq %d, %d threads, OMP_WAIT_POLICY=%s; %d round(s) of every mode%s, %d iterations each\n", B, T,
           threads, getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(unset)", rounds,
           torch ? " and PyTorch" : "", iters);
    if (stream) printf("streaming: %d segments between the graph's cut nodes\n", n_cuts);
    printf("load average before: %s\n", la);
    fflush(stdout);

    const int n_modes = stream ? N_MODES : MODE_STREAM;
    mode_result res[N_MODES] = {0};
    for (int k = 0; k < n_modes; k++) res[k].times = calloc((size_t)rounds * iters, sizeof(double));
    double torch_tps[MAX_ROUNDS];
    int n_torch = 0;
    const double tok = (double)B * T;
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < n_modes; k++) {
            int before = res[k].n;
            if (!run_child(self, k, B, iters, &res[k])) {
                fprintf(stderr, "bench_train: the %s run failed\n", mode_key[k]);
                return 1;
            }
            printf("round %d  %-44s %8.1f tokens/s (median of %d)\n", r + 1, mode_label[k],
                   tok / median(res[k].times + before, iters), iters);
            fflush(stdout);
        }
        if (!torch) continue;
        char cmd[256];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/bench_torch_train.py --batch %d --threads %d --iters %d", B,
                 threads, iters);
        FILE *p = popen(cmd, "r");
        char line[512];
        double tps = 0;
        while (p && fgets(line, sizeof line, p)) {
            fputs("  torch| ", stdout);
            fputs(line, stdout);
            if (!strncmp(line, "torch_fwd_bwd_tokens_per_s=", 27)) tps = atof(line + 27);
        }
        if (p) pclose(p);
        if (tps > 0) torch_tps[n_torch++] = tps;
        printf("round %d  %-44s %8.1f tokens/s\n", r + 1, "PyTorch", tps);
        fflush(stdout);
    }
    load_avg(la, sizeof la);
    printf("load average after: %s\n", la);

    double tps[N_MODES];
    printf("\n%-46s %10s %8s %13s %16s\n", "", "tokens/s", "s/iter", "peak RSS MB", "executor est MB");
    for (int k = 0; k < n_modes; k++) {
        double s = median(res[k].times, res[k].n);
        tps[k] = tok / s;
        printf("%-46s %10.1f %8.3f %13.0f %16.0f\n", mode_label[k], tps[k], s, res[k].rss_mb,
               res[k].exec_bytes / 1048576.0);
    }
    int same = 1;
    for (int k = 1; k < n_modes; k++) same &= !strcmp(res[k].loss, res[0].loss);
    printf("loss %s in every mode: %s\n", res[0].loss, same ? "the same" : "DIFFERENT");
    printf("peak RSS: each mode in a process of its own (ru_maxrss); the model's weights alone: %.0f MB\n", rss_model);
    printf("activations kept for backward A = %.0f MB\n", act);
    printf("memory goal: scratch-mode peak %.0f MB vs 1.5 x weights + A = %.0f MB (%s)\n", res[MODE_SCRATCH].rss_mb,
           1.5 * weights_mb + act, res[MODE_SCRATCH].rss_mb <= 1.5 * weights_mb + act ? "met" : "NOT met");
    if (stream)
        printf("streaming/in memory (scratch mode): %.2fx tokens/s (target >= 0.8x: %s), %.2fx peak RSS, %.2fx "
               "executor estimate\n",
               tps[MODE_STREAM] / tps[MODE_SCRATCH], tps[MODE_STREAM] >= 0.8 * tps[MODE_SCRATCH] ? "met" : "NOT met",
               res[MODE_STREAM].rss_mb / res[MODE_SCRATCH].rss_mb,
               (double)res[MODE_STREAM].exec_bytes / (double)res[MODE_SCRATCH].exec_bytes);
    double peak = sgemm_gflops(B * T);
    printf("FLOPs per iteration %.1f G; this machine's OpenBLAS sgemm with %d threads: %.1f GFLOP/s (median of 7)\n",
           flops / 1e9, threads, peak);
    for (int k = 0; k < n_modes; k++)
        printf("  %-46s %6.1f GFLOP/s = %.2f of the sgemm rate\n", mode_label[k], tps[k] / tok * flops / 1e9,
               tps[k] / tok * flops / 1e9 / peak);
    double t_tps = n_torch ? median(torch_tps, n_torch) : 0;
    if (torch && t_tps > 0)
        printf("  %-46s %6.1f GFLOP/s = %.2f of the sgemm rate; 1.5x PyTorch = %.1f GFLOP/s = %.2f of it\n", "PyTorch",
               t_tps / tok * flops / 1e9, t_tps / tok * flops / 1e9 / peak, 1.5 * t_tps / tok * flops / 1e9,
               1.5 * t_tps / tok * flops / 1e9 / peak);
    if (torch && t_tps > 0) {
        printf("PyTorch fwd+bwd: %.1f tokens/s (median of %d runs)\n", t_tps, n_torch);
        printf("ratio mixprec/PyTorch: %.2fx (scratch mode), %.2fx (per-param grads)", tps[MODE_SCRATCH] / t_tps,
               tps[MODE_PARAM] / t_tps);
        if (stream)
            printf(", %.2fx (streaming; target >= 1.5x: %s)", tps[MODE_STREAM] / t_tps,
                   tps[MODE_STREAM] >= 1.5 * t_tps ? "met" : "NOT met");
        printf("\n");
    } else if (torch) {
        printf("PyTorch run failed (is python3-torch installed?)\n");
    }
    for (int k = 0; k < n_modes; k++) free(res[k].times);
    return same ? 0 : 1;
}

// bench_train.c: forward+backward speed and peak memory of a Llama-shaped model with random
// weights, mixprec vs PyTorch in the same run.
//
// usage: bench_train [--batch B] [--iters K] [--no-torch]   (run from the repository root)
// Model: hidden 768, 12 layers, 12 heads, ffn 2048, vocab 32000, sequence 256 (~110M params).
// One iteration = forward + mean cross-entropy + backward with every weight gradient formed
// (as PyTorch's loss.backward() does). mixprec is timed twice: keeping a gradient per
// parameter (PARAM_GRADS, like PyTorch's .grad) and forming each linear op's weight gradient
// in one reused buffer (WGRAD_SCRATCH, what the sensitivity pass does). PyTorch runs as
// tools/bench_torch_train.py in a child process with the same shapes and thread count.
// Medians of K iterations after 2 warm-ups; the machine is shared and noisy, repeat runs.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <omp.h>

#include "arch/model.h"
#include "core/rng.h"
#include "runtime/exec.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

// Bytes of the activations a backward pass must keep: every node value, plus the saved norm
// statistics and attention probabilities.
static double activation_mb(const mxp_graph *g, int B, int T) {
    double floats = 0, N = (double)B * T;
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        floats += N * n->cols;
        if (n->op == MXP_OP_RMSNORM) floats += N;
        if (n->op == MXP_OP_ATTENTION) floats += (double)B * n->heads * T * T;
    }
    return floats * 4 / 1048576.0;
}

// Returns median seconds per iteration.
static double time_mode(const mxp_graph *g, int B, int T, unsigned flags, int iters, const int32_t *seq) {
    mxp_exec ex;
    mxp_err err = {0};
    if (mxp_exec_init(&ex, g, B, T, flags, &err) || mxp_exec_set_batch(&ex, seq, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        exit(1);
    }
    double *t = calloc((size_t)iters, sizeof *t);
    for (int it = -2; it < iters; it++) {
        double t0 = mxp_now();
        mxp_exec_zero_grads(&ex);
        mxp_exec_forward(&ex, 0, g->n_nodes);
        mxp_exec_loss(&ex, NULL);
        if (mxp_exec_backward(&ex, 0, g->n_nodes, 1.0f / (float)ex.N, NULL, NULL, &err)) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            exit(1);
        }
        if (it >= 0) t[it] = mxp_now() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    double med = t[iters / 2];
    free(t);
    mxp_exec_free(&ex);
    return med;
}

int main(int argc, char **argv) {
    int B = 1, iters = 5, torch = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = 0;
        else {
            fprintf(stderr, "usage: bench_train [--batch B] [--iters K] [--no-torch]\n");
            return 2;
        }
    }
    if (B < 1 || iters < 1) return 2;
    const int T = 256;
    mxp_model_config c = {.arch = MXP_ARCH_LLAMA, .vocab = 32000, .dim = 768, .n_layers = 12, .n_heads = 12,
                          .n_kv_heads = 12, .head_dim = 64, .ffn = 2048, .max_pos = 2048, .norm_eps = 1e-5f,
                          .rope_theta = 10000.0};
    snprintf(c.arch_name, sizeof c.arch_name, "bench-llama-100M");
    mxp_model *m;
    mxp_err err = {0};
    if (mxp_model_synthetic(&c, 1, &m, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    size_t nparams = 0;
    for (int p = 0; p < m->graph.n_params; p++) nparams += m->graph.params[p].nelem;
    double weights_mb = nparams * 4.0 / 1048576.0;
    int32_t *seq = malloc((size_t)B * (T + 1) * sizeof *seq);
    mxp_rng rng;
    mxp_rng_seed(&rng, 7);
    for (int i = 0; i < B * (T + 1); i++) seq[i] = (int32_t)mxp_rng_below(&rng, (uint64_t)c.vocab);
    int threads = omp_get_max_threads();
    printf("model: llama hidden 768, 12 layers, 12 heads, ffn 2048, vocab 32000; %.1f M params (%.0f MB f32)\n",
           nparams / 1e6, weights_mb);
    printf("batch %d x seq %d, %d threads, OMP_WAIT_POLICY=%s, median of %d iterations\n", B, T, threads,
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(unset)", iters);

    double rss0 = peak_rss_mb();
    double t_scratch = time_mode(&m->graph, B, T, MXP_EXEC_WGRAD_SCRATCH, iters, seq);
    double rss_scratch = peak_rss_mb();
    double t_full = time_mode(&m->graph, B, T, MXP_EXEC_PARAM_GRADS, iters, seq);
    double rss_full = peak_rss_mb();
    double tok = (double)B * T;
    printf("mixprec fwd+bwd (weight grads in scratch): %8.1f tokens/s  (%.3f s/iter)  peak RSS %.0f MB\n",
           tok / t_scratch, t_scratch, rss_scratch);
    printf("mixprec fwd+bwd (a gradient per param):    %8.1f tokens/s  (%.3f s/iter)  peak RSS %.0f MB\n",
           tok / t_full, t_full, rss_full);
    double act = activation_mb(&m->graph, B, T);
    printf("peak RSS before any executor (weights): %.0f MB; activations kept for backward A = %.0f MB\n", rss0, act);
    printf("memory goal: scratch-mode peak %.0f MB vs 1.5 x weights + A = %.0f MB (%s)\n", rss_scratch,
           1.5 * weights_mb + act, rss_scratch <= 1.5 * weights_mb + act ? "met" : "NOT met");
    if (torch) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/bench_torch_train.py --batch %d --threads %d --iters %d", B,
                 threads, iters);
        FILE *p = popen(cmd, "r");
        double torch_tps = 0;
        char line[512];
        while (p && fgets(line, sizeof line, p)) {
            fputs("  torch| ", stdout);
            fputs(line, stdout);
            if (!strncmp(line, "torch_fwd_bwd_tokens_per_s=", 27)) torch_tps = atof(line + 27);
        }
        if (p) pclose(p);
        if (torch_tps > 0) {
            printf("PyTorch fwd+bwd: %.1f tokens/s\n", torch_tps);
            printf("ratio mixprec/PyTorch: %.2fx (scratch mode), %.2fx (per-param grads)\n", tok / t_scratch / torch_tps,
                   tok / t_full / torch_tps);
        } else {
            printf("PyTorch run failed (is python3-torch installed?)\n");
        }
    }
    free(seq);
    mxp_model_free(m);
    return 0;
}

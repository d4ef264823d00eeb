// bench_e2e.c: end-to-end inference speed per uniform format on Llama-shaped random-weight
// models, in one run: decode (one token at a time with a KV cache after a 32-token prompt)
// and prefill (256 tokens) tokens/s, and the speed-up vs f32 measured side by side.
//
// usage: bench_e2e [--model 100m|1b|both] [--decode N] [--repeats R]
// 100m: hidden 768, 12 layers, 12 heads, ffn 2048, vocab 32000 (~134M params incl. embeddings)
// 1b:   hidden 2048, 16 layers, 32 heads (8 kv heads), ffn 5632, vocab 32000 (852.6M params: 0.85B)
// Each figure is the median of R repeats; formats are interleaved per repeat so that machine
// noise hits all of them alike. The machine is shared and noisy: compare ratios, not absolutes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "arch/model.h"
#include "core/rng.h"
#include "runtime/exec.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void set_all(mxp_graph *g, mxp_format_id f) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == MXP_OP_LINEAR) g->nodes[i].fmt = f;
}

static void die(const mxp_err *err) {
    fprintf(stderr, "bench_e2e: %s\n", err->msg);
    exit(1);
}

// tokens/s of n decode steps after a prompt, and of one prefill of T tokens.
static void measure(mxp_model *m, mxp_qcache *qc, const int32_t *ids, int prompt, int n, int T, double *dec,
                    double *pre) {
    mxp_err err = {0};
    mxp_exec ex;
    if (mxp_exec_init(&ex, &m->graph, 1, prompt + n, MXP_EXEC_KV_CACHE, &err) ||
        mxp_exec_use_formats(&ex, qc, MXP_QMODE_REAL, &err) || mxp_exec_step(&ex, ids, prompt, &err))
        die(&err);
    double t0 = mxp_now();
    for (int i = 0; i < n; i++)
        if (mxp_exec_step(&ex, ids + prompt + i, 1, &err)) die(&err);
    *dec = n / (mxp_now() - t0);
    mxp_exec_free(&ex);
    if (mxp_exec_init(&ex, &m->graph, 1, T, MXP_EXEC_KV_CACHE, &err) ||
        mxp_exec_use_formats(&ex, qc, MXP_QMODE_REAL, &err))
        die(&err);
    t0 = mxp_now();
    if (mxp_exec_step(&ex, ids, T, &err)) die(&err);
    *pre = T / (mxp_now() - t0);
    mxp_exec_free(&ex);
}

static void run_model(const char *label, const mxp_model_config *c, int n_decode, int repeats) {
    mxp_err err = {0};
    mxp_model *m;
    if (mxp_model_synthetic(c, 3, &m, &err)) die(&err);
    size_t nparams = 0;
    for (int p = 0; p < m->graph.n_params; p++) nparams += m->graph.params[p].nelem;
    const int prompt = 32, T = 256;
    int32_t *ids = malloc((size_t)(prompt + n_decode + T) * sizeof *ids);
    mxp_rng rng;
    mxp_rng_seed(&rng, 9);
    for (int i = 0; i < prompt + n_decode + T; i++) ids[i] = (int32_t)mxp_rng_below(&rng, (uint64_t)c->vocab);
    printf("\n== %s: %.1f M params, hidden %d, %d layers, %d heads (%d kv), ffn %d, vocab %d; %d threads\n", label,
           nparams / 1e6, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->ffn, c->vocab, omp_get_max_threads());
    printf("decode: %d tokens after a %d-token prompt; prefill: %d tokens; median of %d repeats\n", n_decode, prompt, T,
           repeats);
    mxp_qcache qc;
    if (mxp_qcache_init(&qc, &m->graph, &err)) die(&err);
    double dec[MXP_FMT_COUNT][16], pre[MXP_FMT_COUNT][16];
    // prepare every format's weights once (the cache keeps them)
    for (int f = 1; f < MXP_FMT_COUNT; f++) {
        set_all(&m->graph, (mxp_format_id)f);
        for (int i = 0; i < m->graph.n_nodes; i++)
            if (m->graph.nodes[i].op == MXP_OP_LINEAR && mxp_qcache_prepare(&qc, i, (mxp_format_id)f, MXP_QMODE_REAL, &err))
                die(&err);
    }
    for (int r = 0; r < repeats; r++)
        for (int f = 0; f < MXP_FMT_COUNT; f++) {
            set_all(&m->graph, (mxp_format_id)f);
            measure(m, &qc, ids, prompt, n_decode, T, &dec[f][r], &pre[f][r]);
            fprintf(stderr, "  repeat %d %-8s decode %.2f tok/s prefill %.1f tok/s\n", r,
                    mxp_format_get((mxp_format_id)f)->name, dec[f][r], pre[f][r]);
        }
    double med_dec[MXP_FMT_COUNT], med_pre[MXP_FMT_COUNT];
    for (int f = 0; f < MXP_FMT_COUNT; f++) {
        qsort(dec[f], (size_t)repeats, sizeof(double), cmp_double);
        qsort(pre[f], (size_t)repeats, sizeof(double), cmp_double);
        med_dec[f] = dec[f][repeats / 2];
        med_pre[f] = pre[f][repeats / 2];
    }
    printf("%-9s %12s %10s %14s %10s %12s\n", "format", "decode tok/s", "vs f32", "prefill tok/s", "vs f32", "weights GB");
    for (int f = 0; f < MXP_FMT_COUNT; f++) {
        double bytes = 0;
        for (int i = 0; i < m->graph.n_nodes; i++) {
            const mxp_node *n = &m->graph.nodes[i];
            size_t b;
            if (n->op == MXP_OP_LINEAR &&
                !mxp_format_matrix_bytes((mxp_format_id)f, m->graph.params[n->w].shape[0], m->graph.params[n->w].shape[1], &b, NULL))
                bytes += (double)b;
        }
        printf("%-9s %12.2f %9.2fx %14.1f %9.2fx %12.3f\n", mxp_format_get((mxp_format_id)f)->name, med_dec[f],
               med_dec[f] / med_dec[0], med_pre[f], med_pre[f] / med_pre[0], bytes / 1e9);
    }
    mxp_qcache_free(&qc);
    free(ids);
    mxp_model_free(m);
}

int main(int argc, char **argv) {
    const char *which = "both";
    int n_decode = 32, repeats = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) which = argv[++i];
        else if (!strcmp(argv[i], "--decode") && i + 1 < argc) n_decode = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_e2e [--model 100m|1b|both] [--decode N] [--repeats R]\n");
            return 2;
        }
    }
    if (n_decode < 1 || repeats < 1 || repeats > 16) return 2;
    printf("bench_e2e: kernels %s, OMP_WAIT_POLICY=%s\n", mxp_kernel_impl_name(),
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(unset)");
    mxp_model_config small = {.arch = MXP_ARCH_LLAMA, .vocab = 32000, .dim = 768, .n_layers = 12, .n_heads = 12,
                              .n_kv_heads = 12, .head_dim = 64, .ffn = 2048, .max_pos = 4096, .norm_eps = 1e-5f,
                              .rope_theta = 10000.0};
    mxp_model_config big = {.arch = MXP_ARCH_LLAMA, .vocab = 32000, .dim = 2048, .n_layers = 16, .n_heads = 32,
                            .n_kv_heads = 8, .head_dim = 64, .ffn = 5632, .max_pos = 4096, .norm_eps = 1e-5f,
                            .rope_theta = 10000.0};
    snprintf(small.arch_name, sizeof small.arch_name, "llama-100M");
    snprintf(big.arch_name, sizeof big.arch_name, "llama-1B");
    if (!strcmp(which, "100m") || !strcmp(which, "both")) run_model("llama 0.13B", &small, n_decode, repeats);
    if (!strcmp(which, "1b") || !strcmp(which, "both")) run_model("llama 0.85B", &big, n_decode, repeats);
    return 0;
}

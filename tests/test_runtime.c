// test_runtime.c: the mixed-precision runtime.
//  1. For every format, the real mode (quantized weights, real kernels) and the fake-quant
//     mode (f32 compute on dequantize(quantize(.)) weights and activations) give the same
//     logits within float-summation rounding: |real - fake| <= 2e-4 * max|fake| + 1e-3 |fake|
//     for formats that keep f32 activations. Formats that round activations (every one but
//     f32 and f8_e4m3, as llama.cpp does) can see a last-bit difference of an input flip one
//     rounding step, which later layers carry: 2e-2 * max|fake| for them (a wrong weight or a
//     missing activation rounding moves logits by far more; per matrix product the two paths
//     agree to float rounding, tests/test_quant_matmul.c). The sensitivity analysis relies on
//     fake-quant reproducing the kernels.
//  2. KV-cache inference (prefill then one token at a time) gives the logits of a full
//     forward pass, in f32 and in a quantized format, for Llama (RoPE, GQA) and GPT-2
//     (learned positions).
//  3. A quantized model is measurably different from f32 (the formats are really applied) and
//     a format that cannot hold the op's width gives a clean error naming the module.
// Models: synthetic random-weight models whose widths are multiples of 32 (one of 256, for
// the k-quants), and models/tiny (the trained fixture) when present. A format is run on a
// model when every linear op can take it.
#include <math.h>
#include <string.h>

#include "arch/model.h"
#include "check.h"
#include "core/rng.h"
#include "runtime/exec.h"

static void set_all(mxp_graph *g, mxp_format_id f) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == MXP_OP_LINEAR) g->nodes[i].fmt = f;
}

// Can every linear op take format f (its input width a multiple of the block)?
static int fits_all(const mxp_graph *g, mxp_format_id f) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == MXP_OP_LINEAR && g->nodes[g->nodes[i].in[0]].cols % mxp_format_get(f)->block_size) return 0;
    return 1;
}

static void random_seq(int32_t *seq, int n, int vocab, uint64_t seed) {
    mxp_rng r;
    mxp_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) seq[i] = (int32_t)mxp_rng_below(&r, (uint64_t)vocab);
}

// Full forward logits (B*T, V) in the given mode; returns a malloc'd copy.
static float *run_full(mxp_model *m, mxp_qcache *qc, mxp_qmode mode, const int32_t *seq, int B, int T) {
    mxp_exec ex;
    mxp_err err = {0};
    if (mxp_exec_init(&ex, &m->graph, B, T, 0, &err) || mxp_exec_use_formats(&ex, qc, mode, &err) ||
        mxp_exec_set_batch(&ex, seq, &err)) {
        CHECK(0, "%s", err.msg);
        return NULL;
    }
    mxp_exec_forward(&ex, 0, m->graph.n_nodes);
    size_t n = (size_t)B * T * m->graph.vocab;
    float *out = malloc(n * sizeof(float));
    memcpy(out, ex.val[m->graph.n_nodes - 1], n * sizeof(float));
    mxp_exec_free(&ex);
    return out;
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

static void check_model(const char *label, mxp_model *m) {
    const int B = 2, T = 24, V = m->graph.vocab;
    int32_t *seq = malloc((size_t)B * (T + 1) * sizeof *seq);
    random_seq(seq, B * (T + 1), V, 11);
    mxp_qcache qc;
    mxp_err err = {0};
    CHECK(mxp_qcache_init(&qc, &m->graph, &err) == MXP_OK, "%s", err.msg);
    size_t n = (size_t)B * T * V;
    set_all(&m->graph, MXP_FMT_F32);
    float *ref = run_full(m, &qc, MXP_QMODE_REAL, seq, B, T);
    for (int f = MXP_FMT_F32; f < MXP_FMT_COUNT; f++) {
        if (!fits_all(&m->graph, (mxp_format_id)f)) continue;  // the k-quants need widths of 256
        set_all(&m->graph, (mxp_format_id)f);
        float *real = run_full(m, &qc, MXP_QMODE_REAL, seq, B, T);
        float *fake = run_full(m, &qc, MXP_QMODE_FAKE, seq, B, T);
        if (!real || !fake || !ref) return;
        char what[128];
        snprintf(what, sizeof what, "%s %s real vs fake-quant logits", label, mxp_format_get((mxp_format_id)f)->name);
        const double atol_frac = mxp_format_get((mxp_format_id)f)->act == MXP_ACT_F32 ? 2e-4 : 2e-2;
        CHECK_CLOSE(what, real, fake, n, atol_frac * max_abs(fake, n), 1e-3);
        // distance from f32: zero only for f32
        double d = 0;
        for (size_t i = 0; i < n; i++) d = fmax(d, fabs(real[i] - ref[i]));
        if (f == MXP_FMT_F32) CHECK(d == 0, "%s f32 via the runtime differs from f32 by %g", label, d);
        else CHECK(d > 1e-6, "%s %s: logits identical to f32 (format not applied?)", label, what);
        fprintf(stderr, "%s %-8s max |logit - f32 logit| = %.3g\n", label, mxp_format_get((mxp_format_id)f)->name, d);
        free(real);
        free(fake);
    }
    // KV cache: prefill T-4 tokens then 4 single steps == full forward rows. The two paths
    // round differently inside attention (different blockings), so formats that round
    // activations (bf16, q4_0) can flip a rounding step and move a logit by a discrete
    // amount: tight tolerance for f32, 2% of the largest logit for bf16 and q4_0 (a wrong
    // cache position or rotary offset moves logits by far more).
    for (int pass = 0; pass < 3; pass++) {
        mxp_format_id f = pass == 0 ? MXP_FMT_F32 : pass == 1 ? MXP_FMT_BF16 : MXP_FMT_Q4_0;
        double atol_frac = f == MXP_FMT_F32 ? 1e-4 : 2e-2;
        set_all(&m->graph, f);
        float *full = run_full(m, &qc, MXP_QMODE_REAL, seq, B, T);
        mxp_exec ex;
        if (mxp_exec_init(&ex, &m->graph, B, T, MXP_EXEC_KV_CACHE, &err) ||
            mxp_exec_use_formats(&ex, &qc, MXP_QMODE_REAL, &err)) {
            CHECK(0, "%s", err.msg);
            return;
        }
        int pre = T - 4;
        int32_t *tok = malloc((size_t)B * T * sizeof *tok);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < pre; t++) tok[b * pre + t] = seq[b * (T + 1) + t];
        CHECK(mxp_exec_step(&ex, tok, pre, &err) == MXP_OK, "%s", err.msg);
        float *got = malloc((size_t)B * V * sizeof *got), *want = malloc((size_t)B * V * sizeof *want);
        for (int t = pre; t < T; t++) {
            for (int b = 0; b < B; b++) tok[b] = seq[b * (T + 1) + t];
            CHECK(mxp_exec_step(&ex, tok, 1, &err) == MXP_OK, "%s", err.msg);
            for (int b = 0; b < B; b++) {
                memcpy(got + (size_t)b * V, ex.val[m->graph.n_nodes - 1] + (size_t)b * V, (size_t)V * sizeof(float));
                memcpy(want + (size_t)b * V, full + ((size_t)b * T + t) * V, (size_t)V * sizeof(float));
            }
            char what[128];
            snprintf(what, sizeof what, "%s %s KV-cache step %d vs full forward", label, mxp_format_get(f)->name, t);
            CHECK_CLOSE(what, got, want, (size_t)B * V, atol_frac * max_abs(want, (size_t)B * V), 1e-3);
        }
        // overflowing the cache is a clean error
        CHECK(mxp_exec_step(&ex, tok, 1, &err) == MXP_ERR_ARG, "cache overflow must be refused");
        mxp_exec_free(&ex);
        free(tok);
        free(got);
        free(want);
        free(full);
    }
    set_all(&m->graph, MXP_FMT_F32);
    mxp_qcache_free(&qc);
    free(ref);
    free(seq);
}

int main(void) {
    mxp_err err = {0};
    mxp_model_config llama = {.arch = MXP_ARCH_LLAMA, .vocab = 300, .dim = 128, .n_layers = 2, .n_heads = 4,
                              .n_kv_heads = 2, .head_dim = 32, .ffn = 224, .max_pos = 64, .norm_eps = 1e-5f,
                              .rope_theta = 10000.0};
    mxp_model_config gpt2 = {.arch = MXP_ARCH_GPT2, .vocab = 300, .dim = 128, .n_layers = 2, .n_heads = 4,
                             .n_kv_heads = 4, .head_dim = 32, .ffn = 512, .max_pos = 64, .norm_eps = 1e-5f,
                             .tied = 1, .qkv_bias = 1, .o_bias = 1, .mlp_bias = 1};
    mxp_model *m;
    CHECK(mxp_model_synthetic(&llama, 5, &m, &err) == MXP_OK, "%s", err.msg);
    check_model("llama(synthetic)", m);
    mxp_model_free(m);
    // widths of 256: every format, the k-quants included
    mxp_model_config wide = llama;
    wide.dim = 256, wide.n_heads = 8, wide.ffn = 512;
    CHECK(mxp_model_synthetic(&wide, 8, &m, &err) == MXP_OK, "%s", err.msg);
    check_model("llama(synthetic, 256)", m);
    mxp_model_free(m);
    const char *archs[3] = {"MistralForCausalLM", "LlamaForCausalLM", "Qwen2ForCausalLM"};
    for (int a = 0; a < 3; a++) {  // only Mistral honours sliding_window (Qwen2: use_sliding_window)
        char json[512];
        snprintf(json, sizeof json,
                 "{\"architectures\": [\"%s\"], \"vocab_size\": 300, \"hidden_size\": 128, "
                 "\"intermediate_size\": 224, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                 "\"sliding_window\": 5}",
                 archs[a]);
        mxp_model_config c;
        CHECK(mxp_config_from_hf_json(&c, json, strlen(json), "config.json", &err) == MXP_OK, "%s", err.msg);
        CHECK(c.sliding_window == (a == 0 ? 5 : 0), "%s: sliding_window %d", archs[a], c.sliding_window);
    }
    // Mistral's sliding window (5 of 24 positions): the KV-cache steps run past it. Against the
    // same weights without a window, logits agree exactly where every key is still inside it
    // (positions < 5) and differ after.
    mxp_model_config mistral = llama;
    mistral.sliding_window = 5;
    CHECK(mxp_model_synthetic(&mistral, 5, &m, &err) == MXP_OK, "%s", err.msg);
    check_model("mistral(synthetic, window 5)", m);
    {
        mxp_model *full;
        CHECK(mxp_model_synthetic(&llama, 5, &full, &err) == MXP_OK, "%s", err.msg);
        const int B = 2, T = 24, V = llama.vocab;
        int32_t seq[2 * 25];
        random_seq(seq, B * (T + 1), V, 12);
        mxp_qcache qw, qf;
        CHECK(mxp_qcache_init(&qw, &m->graph, &err) == MXP_OK && mxp_qcache_init(&qf, &full->graph, &err) == MXP_OK,
              "%s", err.msg);
        float *lw = run_full(m, &qw, MXP_QMODE_REAL, seq, B, T), *lf = run_full(full, &qf, MXP_QMODE_REAL, seq, B, T);
        if (lw && lf) {
            double inside = 0, after = 0;
            for (int b = 0; b < B; b++)
                for (int t = 0; t < T; t++)
                    for (int v = 0; v < V; v++) {
                        size_t i = ((size_t)b * T + t) * V + v;
                        double d = fabs(lw[i] - lf[i]);
                        if (t < 5) inside = fmax(inside, d);
                        else after = fmax(after, d);
                    }
            CHECK(inside == 0, "window 5: positions inside the window differ from full attention by %g", inside);
            CHECK(after > 1e-3, "window 5: positions past the window equal full attention (max diff %g)", after);
        }
        free(lw);
        free(lf);
        mxp_qcache_free(&qw);
        mxp_qcache_free(&qf);
        mxp_model_free(full);
    }
    mxp_model_free(m);
    CHECK(mxp_model_synthetic(&gpt2, 6, &m, &err) == MXP_OK, "%s", err.msg);
    check_model("gpt2(synthetic)", m);
    mxp_model_free(m);
    if (mxp_model_load("models/tiny", &m, &err) == MXP_OK) {
        check_model("models/tiny", m);
        mxp_model_free(m);
    } else {
        fprintf(stderr, "models/tiny not loaded (%s)\n", err.msg);
    }
    // a width that is not a multiple of 32 cannot be q8_0: clean error naming the module
    mxp_model_config odd = llama;
    odd.ffn = 200;
    CHECK(mxp_model_synthetic(&odd, 7, &m, &err) == MXP_OK, "%s", err.msg);
    set_all(&m->graph, MXP_FMT_Q8_0);
    mxp_qcache qc;
    mxp_exec ex;
    CHECK(mxp_qcache_init(&qc, &m->graph, &err) == MXP_OK, "%s", err.msg);
    CHECK(mxp_exec_init(&ex, &m->graph, 1, 8, 0, &err) == MXP_OK, "%s", err.msg);
    mxp_status st = mxp_exec_use_formats(&ex, &qc, MXP_QMODE_REAL, &err);
    CHECK(st == MXP_ERR_ARG && strstr(err.msg, "down_proj"), "odd width: status %d, message '%s'", st, err.msg);
    mxp_exec_free(&ex);
    mxp_qcache_free(&qc);
    mxp_model_free(m);
    CHECK_DONE();
}

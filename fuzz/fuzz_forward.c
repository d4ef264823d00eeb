// fuzz_forward.c: libFuzzer target for the whole f32 path behind a config.json: parse it
// (mxp_config_from_hf_json), shrink the dimensions so one run takes milliseconds (hidden
// <= 64, layers <= 2, vocab <= 256, ffn <= 128, heads <= 8, head_dim <= 1100, a few tokens),
// build a model with random weights, and run one forward, the loss, one backward with
// parameter gradients, and KV-cache decode one token at a time. Every input must give
// MXP_OK or a clean error whose message names something; the KV-cache logits must equal the
// full forward's (where both are finite). Bytes after the JSON value pick the tokens.
#include <math.h>
#include <string.h>

#include "arch/config.h"
#include "arch/model.h"
#include "core/rng.h"
#include "runtime/exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int imin(int a, int b) { return a < b ? a : b; }

// Shrink c to a tiny model of the same shape family (the fuzzer may describe huge ones validly).
static void shrink(mxp_model_config *c) {
    c->n_layers = imin(c->n_layers, 2);
    c->vocab = imin(c->vocab, 256);
    c->ffn = imin(c->ffn, 128);
    c->n_heads = imin(c->n_heads, 8);
    c->n_kv_heads = imin(c->n_kv_heads, c->n_heads);
    while (c->n_heads % c->n_kv_heads) c->n_kv_heads--;
    if (c->arch == MXP_ARCH_GPT2) {  // head_dim = hidden / heads, even
        c->n_kv_heads = c->n_heads;
        c->head_dim = imin(c->head_dim, 64 / c->n_heads) & ~1;
        if (c->head_dim < 2) c->head_dim = 2;
        c->dim = c->n_heads * c->head_dim;
        c->max_pos = imin(c->max_pos, 64);
    } else {
        c->dim = imin(c->dim, 64);
        c->head_dim = imin(c->head_dim, 1100);
        if (c->n_heads * c->head_dim > 2200) c->n_heads = c->n_kv_heads = 2;
    }
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

// A failed call must say why.
#define CLEAN(st, err) MXP_ASSERT((st) == MXP_OK || (err).msg[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mxp_model_config c;
    mxp_err err = {0};
    mxp_status st = mxp_config_from_hf_json(&c, (const char *)data, size, "fuzz.json", &err);
    if (st) {
        MXP_ASSERT(strstr(err.msg, "fuzz.json"));
        return 0;
    }
    shrink(&c);
    mxp_rng rng;
    mxp_rng_seed(&rng, fnv1a(data, size));
    mxp_model *m;
    memset(&err, 0, sizeof err);
    st = mxp_model_synthetic(&c, mxp_rng_below(&rng, 1000), &m, &err);
    CLEAN(st, err);
    if (st) return 0;
    const mxp_graph *g = &m->graph;
    const int B = 1 + (int)mxp_rng_below(&rng, 2), T = 1 + (int)mxp_rng_below(&rng, 8), V = g->vocab;
    int32_t seq[2 * 9];
    for (int i = 0; i < B * (T + 1); i++) seq[i] = (int32_t)mxp_rng_below(&rng, (uint64_t)V);

    mxp_exec ex;
    memset(&err, 0, sizeof err);
    st = mxp_exec_init(&ex, g, B, T, MXP_EXEC_PARAM_GRADS, &err);
    CLEAN(st, err);
    if (st) {  // only a sequence longer than the model's positions may be refused
        MXP_ASSERT(st == MXP_ERR_ARG && g->max_pos > 0 && T > g->max_pos);
        mxp_model_free(m);
        return 0;
    }
    float *logits = NULL;
    st = mxp_exec_set_batch(&ex, seq, &err);
    MXP_ASSERT(st == MXP_OK);  // the ids are in range
    mxp_exec_forward(&ex, 0, g->n_nodes);
    mxp_exec_loss(&ex, NULL);
    mxp_exec_zero_grads(&ex);
    st = mxp_exec_backward(&ex, 0, g->n_nodes, 1.0f / (float)ex.N, NULL, NULL, &err);
    CLEAN(st, err);
    size_t nl = (size_t)B * T * V;
    logits = malloc(nl * sizeof *logits);
    if (logits) memcpy(logits, ex.val[g->n_nodes - 1], nl * sizeof *logits);
    mxp_exec_free(&ex);

    // KV cache, one token at a time: the same logits as the full forward
    memset(&err, 0, sizeof err);
    st = mxp_exec_init(&ex, g, B, T, MXP_EXEC_KV_CACHE, &err);
    CLEAN(st, err);
    for (int t = 0; !st && t < T; t++) {
        int32_t tok[2];
        for (int b = 0; b < B; b++) tok[b] = seq[b * (T + 1) + t];
        st = mxp_exec_step(&ex, tok, 1, &err);
        MXP_ASSERT(st == MXP_OK);
        for (int b = 0; logits && b < B; b++) {
            const float *got = ex.val[g->n_nodes - 1] + (size_t)b * V, *want = logits + ((size_t)b * T + t) * V;
            double scale = 0;
            int finite = 1;
            for (int v = 0; v < V; v++) {
                finite &= isfinite(got[v]) && isfinite(want[v]);
                scale = fmax(scale, fabs(want[v]));
            }
            for (int v = 0; finite && v < V; v++) MXP_ASSERT(fabs(got[v] - want[v]) <= 1e-3 * (1 + scale));
        }
    }
    if (!st) mxp_exec_free(&ex);
    free(logits);
    mxp_model_free(m);
    return 0;
}

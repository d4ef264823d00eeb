// generate.c: text generation (mxp_generate in mixprec.h): encode the prompt with the
// model's tokenizer, compute the logits of the context's last position, pick the next token
// greedily or by seeded sampling (temperature, top-k), decode. No kernels and no model code
// here; it must not change the model.
//
// ggml (default): the whole model as one ggml graph (ggml_graph.h) with a KV cache, fed one
// token at a time (mxp_ggml_sub_decode), the way llama.cpp decodes.
//
// native: the executor, sized once for a window of W = min(prompt + n_tokens, max positions)
// tokens.
// While the context is shorter than W, the rest of the window is padding (id 0):
// the graph is causal, so the logits at the context's last position do not depend on it.
#include <math.h>
#include <string.h>

#include "arch/model.h"
#include "core/rng.h"
#include "io/tokenizer.h"
#include "runtime/exec.h"
#include "runtime/ggml_graph.h"
#include "runtime/qcache.h"

void mxp_generate_result_free(mxp_generate_result *r) {
    if (!r) return;
    free(r->text);
    free(r->ids);
    memset(r, 0, sizeof *r);
}

// Index of the largest logit (lowest index on ties).
static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

typedef struct cand {
    float logit;
    int32_t id;
} cand;

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;  // descending
    return (x->id > y->id) - (x->id < y->id);
}

// Sample from softmax(logits / temp) restricted to the top_k largest (0: all). c: (n) scratch.
static int32_t sample(const float *logits, int n, double temp, int top_k, cand *c, mxp_rng *rng) {
    for (int i = 0; i < n; i++) c[i] = (cand){logits[i], i};
    int k = n;
    if (top_k > 0 && top_k < n) {
        qsort(c, (size_t)n, sizeof *c, cmp_cand);  // full sort: vocabularies are small enough
        k = top_k;
    }
    double mx = -INFINITY, total = 0;
    for (int i = 0; i < k; i++)
        if (c[i].logit > mx) mx = c[i].logit;
    for (int i = 0; i < k; i++) total += exp(((double)c[i].logit - mx) / temp);
    double u = mxp_rng_uniform(rng) * total, acc = 0;
    for (int i = 0; i < k; i++) {
        acc += exp(((double)c[i].logit - mx) / temp);
        if (u < acc) return c[i].id;
    }
    return c[k - 1].id;  // rounding left u at the very top
}

// The ggml decoder: the model's graph for one token with a cache of W slots.
typedef struct gdec {
    mxp_ggml gg;
    mxp_qcache qc;
    mxp_ggml_sub sub;
    float *logits;  // (vocab)
    int have_gg, have_qc;
} gdec;

static mxp_status gdec_init(gdec *d, const mxp_graph *g, int W, mxp_err *err) {
    memset(d, 0, sizeof *d);
    mxp_exec ex;
    mxp_status st = mxp_exec_init(&ex, g, 1, W, MXP_EXEC_KV_CACHE, err);
    if (st) return st;
    // the pass the graph is built for: one token at the cache's last slot (its write slot);
    // the executor only describes the pass here, it runs nothing
    ex.Tq = 1;
    ex.pos0 = W - 1;
    ex.tokens[0] = 0;
    if (!(st = mxp_qcache_init(&d->qc, g, err))) d->have_qc = 1;
    if (!st && !(st = mxp_ggml_init(&d->gg, 0, 0, err))) d->have_gg = 1;
    if (!st) st = mxp_ggml_sub_init(&d->sub, &d->gg, &ex, &d->qc, 0, g->n_nodes, 0, err);
    if (!st && !(d->logits = malloc((size_t)g->vocab * sizeof *d->logits)))
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    mxp_exec_free(&ex);
    return st;
}

static void gdec_free(gdec *d) {
    if (d->sub.gf) mxp_ggml_sub_free(&d->sub);
    if (d->have_gg) mxp_ggml_free(&d->gg);
    if (d->have_qc) mxp_qcache_free(&d->qc);
    free(d->logits);
    memset(d, 0, sizeof *d);
}

// Token `tok` at position p; its logits in d->logits.
static mxp_status gdec_step(gdec *d, int32_t tok, int p, mxp_err *err) {
    mxp_status st = mxp_ggml_sub_decode(&d->sub, tok, p, err);
    if (!st) mxp_ggml_sub_output(&d->sub, d->logits);
    return st;
}

mxp_status mxp_generate(mxp_model *m, const mxp_generate_opts *o, mxp_generate_result *r, mxp_err *err) {
    memset(r, 0, sizeof *r);
    int use_ggml = !o->backend || !strcmp(o->backend, "ggml");
    if (!use_ggml && strcmp(o->backend, "native"))
        return mxp_fail(err, MXP_ERR_ARG, "--backend '%s': expected ggml or native", o->backend);
    r->backend = use_ggml ? "ggml" : "native";
    if (o->n_tokens < 1) return mxp_fail(err, MXP_ERR_ARG, "--tokens must be positive (got %d)", o->n_tokens);
    if (!(o->temperature >= 0) || !isfinite(o->temperature))
        return mxp_fail(err, MXP_ERR_ARG, "--temperature must be a finite number >= 0");
    if (o->top_k < 0) return mxp_fail(err, MXP_ERR_ARG, "--top-k must be >= 0");
    const mxp_graph *g = &m->graph;
    const mxp_tokenizer *tok = NULL;
    mxp_status st = mxp_model_tokenizer(m, &tok, err);
    if (st) return mxp_fail_prefix(err, "generate needs the model's tokenizer: ");
    int32_t *prompt = NULL, *ctx = NULL, *win = NULL, bos;
    size_t np = 0;
    cand *cands = NULL;
    char *text = NULL;
    mxp_exec ex = {0};
    gdec gd = {0};
    const char *p = o->prompt ? o->prompt : "";
    if (p[0]) {
        unsigned fl = mxp_tokenizer_add_bos(tok) ? MXP_TOK_ADD_BOS : 0u;
        st = mxp_tokenizer_encode(tok, p, strlen(p), fl, &prompt, &np, err);
        if (st) mxp_fail_prefix(err, "--prompt: ");
    } else if (mxp_tokenizer_bos(tok, &bos)) {
        prompt = malloc(sizeof *prompt);
        if (!prompt) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        else prompt[np++] = bos;
    } else {
        st = mxp_fail(err, MXP_ERR_ARG, "--prompt is empty and the tokenizer has no BOS token to start from");
    }
    if (!st && np == 0) st = mxp_fail(err, MXP_ERR_ARG, "--prompt encodes to no tokens");
    size_t total = np + (size_t)o->n_tokens;
    size_t W = total;
    if (g->max_pos > 0 && W > (size_t)g->max_pos) W = (size_t)g->max_pos;
    if (!st) {
        ctx = malloc(total * sizeof *ctx);
        win = calloc(W + 1, sizeof *win);
        cands = malloc((size_t)g->vocab * sizeof *cands);
        r->ids = malloc((size_t)o->n_tokens * sizeof *r->ids);
        if (!ctx || !win || !cands || !r->ids) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    if (!st && use_ggml && W < total && !o->backend) {
        // the default: a context longer than the cache runs on the executor, whose window slides
        use_ggml = 0;
        r->backend = "native";
        r->note = "the context exceeds the model's positions, so the executor ran it (its window slides; "
                  "ggml's KV cache does not)";
    }
    if (!st && use_ggml && W < total)
        st = mxp_fail(err, MXP_ERR_ARG,
                      "generate on ggml: %zu prompt tokens + %d new ones exceed the model's %d positions (fewer --tokens, "
                      "or --backend native, which slides the window)",
                      np, o->n_tokens, g->max_pos);
    if (!st && use_ggml) {
        st = gdec_init(&gd, g, (int)W, err);
        // the prompt, one token at a time; the last one is timed with the new tokens
        for (size_t i = 0; !st && i + 1 < np; i++) st = gdec_step(&gd, prompt[i], (int)i, err);
    } else if (!st) {
        st = mxp_exec_init(&ex, g, 1, (int)W, 0, err);
    }
    mxp_rng rng;
    mxp_rng_seed(&rng, o->seed);
    size_t n = np, text_len = 0;
    if (!st) memcpy(ctx, prompt, np * sizeof *ctx);
    double t0 = mxp_now();
    while (!st && r->n_ids < (size_t)o->n_tokens) {
        const float *logits;
        if (use_ggml) {
            // the context's last token at its position: its keys and values join the cache
            if ((st = gdec_step(&gd, ctx[n - 1], (int)(n - 1), err))) break;
            logits = gd.logits;
        } else {
            // the last min(n, W) tokens of the context, then padding; targets are unused
            size_t len = n < W ? n : W;
            memset(win, 0, (W + 1) * sizeof *win);
            memcpy(win, ctx + (n - len), len * sizeof *win);
            if ((st = mxp_exec_set_batch(&ex, win, err))) break;
            mxp_exec_forward(&ex, 0, g->n_nodes);
            logits = ex.val[g->n_nodes - 1] + (len - 1) * (size_t)g->vocab;  // (vocab)
        }
        int32_t next = o->temperature == 0 ? argmax(logits, g->vocab)
                                           : sample(logits, g->vocab, o->temperature, o->top_k, cands, &rng);
        ctx[n++] = next;
        r->ids[r->n_ids++] = next;
        // decode everything generated so far and pass on what the new token added (a token
        // alone can decode differently from the same token in context)
        char *dec = NULL;
        size_t dl = 0;
        if ((st = mxp_tokenizer_decode(tok, r->ids, r->n_ids, MXP_TOK_KEEP_PREFIX, &dec, &dl, err))) break;
        if (o->on_text && dl > text_len) o->on_text(o->ctx, dec + text_len, dl - text_len);
        free(text);
        text = dec;
        text_len = dl;
    }
    r->seconds = mxp_now() - t0;
    if (!st) {
        r->text = text;
        r->text_len = text_len;
        r->prompt_tokens = np;
        text = NULL;
    } else {
        free(r->ids);
        r->ids = NULL;
        r->n_ids = 0;
    }
    free(text);
    if (use_ggml) gdec_free(&gd);
    else mxp_exec_free(&ex);
    free(cands);
    free(win);
    free(ctx);
    free(prompt);
    return st;
}

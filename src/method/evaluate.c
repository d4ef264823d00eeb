// evaluate.c: loss and perplexity of a model on held-out data, and the model description.
// Reads data, runs the executor forward in batches, reports. No kernels here.
#include <math.h>
#include <string.h>

#include "arch/model.h"
#include "io/data.h"
#include "runtime/exec.h"

void mxp_model_print_info(const mxp_model *m, FILE *f) {
    const mxp_model_config *c = &m->config;
    size_t nparams = 0;
    for (int p = 0; p < m->graph.n_params; p++) nparams += m->graph.params[p].nelem;
    int nlin = 0;
    for (int i = 0; i < m->graph.n_nodes; i++) nlin += m->graph.nodes[i].op == MXP_OP_LINEAR;
    fprintf(f, "model: %s\n", m->path);
    fprintf(f, "architecture: %s (%s graph)\n", c->arch_name, c->arch == MXP_ARCH_GPT2 ? "gpt2" : "llama");
    fprintf(f, "vocab %d, hidden %d, layers %d, heads %d (kv %d, head_dim %d), ffn %d, max positions %d\n", c->vocab,
            c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn, c->max_pos);
    if (c->arch == MXP_ARCH_LLAMA)
        fprintf(f, "rms_norm_eps %g, rope_theta %g%s, tied embeddings %s, qkv bias %s\n", (double)c->norm_eps,
                c->rope_theta, c->rope_scaling == MXP_ROPE_LLAMA3 ? " (llama3 scaling)" : "", c->tied ? "yes" : "no",
                c->qkv_bias ? "yes" : "no");
    fprintf(f, "parameters: %zu (%.2f M), graph: %d nodes, %d quantizable linear ops\n", nparams, nparams / 1e6,
            m->graph.n_nodes, nlin);
    const mxp_tensor_set *ts = m->is_gguf ? &m->gguf.tensors : &m->files;
    fprintf(f, "tensors (%d):\n", ts->n);
    for (int i = 0; i < ts->n; i++) {
        const mxp_tensor_info *t = &ts->tensors[i];
        fprintf(f, "  %-48s %-5s [", t->name, mxp_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) fprintf(f, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        fprintf(f, "]\n");
    }
}

static void progress(const char *what, size_t done, size_t total, double t0) {
    double el = mxp_now() - t0;
    double eta = done ? el * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\r%s: %zu/%zu  %.1fs elapsed, ETA %.1fs   ", what, done, total, el, eta);
    if (done == total) fprintf(stderr, "\n");
}

mxp_status mxp_eval(mxp_model *m, const mxp_eval_opts *o, mxp_eval_result *r, mxp_err *err) {
    memset(r, 0, sizeof *r);
    const mxp_graph *g = &m->graph;
    int T = o->seq_len ? o->seq_len : 256;
    if (!o->seq_len && g->max_pos > 0 && T > g->max_pos) T = g->max_pos;
    int B = o->batch ? o->batch : 1;
    if (T < 1 || B < 1) return mxp_fail(err, MXP_ERR_ARG, "--seq and --batch must be positive");
    if (o->max_samples < 0) return mxp_fail(err, MXP_ERR_ARG, "--samples must be positive");
    // Text goes through the model's tokenizer; only the evaluation split is scored (data.h).
    mxp_tokens toks = {0};
    mxp_status st = mxp_data_load_tok_path(&toks, o->data_path, m->tokenizer_dir, err);
    if (st) return st;
    int32_t *seq = NULL;
    size_t want = 0;
    st = mxp_data_samples(&toks, MXP_SPLIT_EVAL, T, (size_t)o->max_samples, 0, o->data_path, &seq, &want, err);
    mxp_tokens_free(&toks);
    if (st) return st;
    if ((size_t)B > want) B = (int)want;
    mxp_exec ex = {0};
    st = mxp_exec_init(&ex, g, B, T, 0, err);
    double total = 0, t0 = mxp_now();
    size_t done = 0;
    while (!st && done < want) {
        // a final partial batch is padded by repeating its last window and not counted
        int nb = (int)((want - done) < (size_t)B ? (want - done) : (size_t)B);
        int32_t *batch = malloc((size_t)B * (T + 1) * sizeof *batch);
        if (!batch) { st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory"); break; }
        for (int b = 0; b < B; b++)
            memcpy(batch + (size_t)b * (T + 1), seq + (done + (size_t)(b < nb ? b : nb - 1)) * (T + 1),
                   (size_t)(T + 1) * sizeof *batch);
        st = mxp_exec_set_batch(&ex, batch, err);
        free(batch);
        if (st) break;
        mxp_exec_forward(&ex, 0, g->n_nodes);
        double *sl = malloc((size_t)B * sizeof *sl);
        if (!sl) { st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory"); break; }
        mxp_exec_loss(&ex, sl);
        for (int b = 0; b < nb; b++) total += sl[b];
        free(sl);
        done += (size_t)nb;
        if (o->progress) progress("eval", done, want, t0);
    }
    double secs = mxp_now() - t0;
    if (!st) {
        r->samples = want;
        r->tokens = want * (size_t)T;
        r->loss = total / (double)want;
        r->perplexity = exp(r->loss);
        r->seconds = secs;
        r->tokens_per_s = secs > 0 ? (double)r->tokens / secs : 0;
    }
    mxp_exec_free(&ex);
    free(seq);
    return st;
}

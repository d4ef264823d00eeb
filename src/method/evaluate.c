// evaluate.c: loss and perplexity of a model on held-out data, and the model description.
// Reads data, runs the executor forward in batches, reports. No kernels here. Speeds: by
// default the whole model as a ggml graph (optimize_time.c, the engine llama.cpp runs);
// --backend native times the executor's own passes.
#include <math.h>
#include <string.h>

#include "arch/model.h"
#include "io/data.h"
#include "method/optimize.h"
#include "method/plan.h"
#include "runtime/exec.h"

void mxp_model_print_info(const mxp_model *m, FILE *f) {
    const mxp_model_config *c = &m->config;
    size_t nparams = 0;
    for (int p = 0; p < m->graph.n_params; p++) nparams += m->graph.params[p].nelem;
    int nlin = mxp_graph_n_ops(&m->graph);
    fprintf(f, "model: %s\n", m->path);
    fprintf(f, "architecture: %s (%s graph)\n", c->arch_name, c->arch == MXP_ARCH_GPT2 ? "gpt2" : "llama");
    fprintf(f, "vocab %d, hidden %d, layers %d, heads %d (kv %d, head_dim %d), ffn %d, max positions %d\n", c->vocab,
            c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn, c->max_pos);
    if (c->arch == MXP_ARCH_LLAMA)
        fprintf(f, "rms_norm_eps %g, rope_theta %g%s, tied embeddings %s, qkv bias %s\n", (double)c->norm_eps,
                c->rope_theta, c->rope_scaling == MXP_ROPE_LLAMA3 ? " (llama3 scaling)" : "", c->tied ? "yes" : "no",
                c->qkv_bias ? "yes" : "no");
    fprintf(f, "parameters: %zu (%.2f M), graph: %d nodes, %d plan ops\n", nparams, nparams / 1e6,
            m->graph.n_nodes, nlin);
    for (int i = 0; i < m->graph.n_nodes; i++) {
        int tie = mxp_graph_is_op(&m->graph, i) ? mxp_graph_tied_node(&m->graph, i) : -1;
        if (tie >= 0)
            fprintf(f, "plan op %s also holds %s %s (tied weight: one tensor, one format)\n", m->graph.nodes[i].name,
                    mxp_op_name(m->graph.nodes[tie].op), m->graph.nodes[tie].name);
    }
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

// Per batch: KL(p || q) and top-1 agreement of two logit sets (rows, V), summed over rows.
static void compare_logits(const float *p_logits, const float *q_logits, int rows, int V, double *kl_sum,
                           double *agree) {
    double kl_total = 0, agree_total = 0;
#pragma omp parallel for reduction(+ : kl_total, agree_total) schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *a = p_logits + (size_t)r * V, *b = q_logits + (size_t)r * V;
        double ma = a[0], mb = b[0];
        int ia = 0, ib = 0;
        for (int v = 1; v < V; v++) {
            if (a[v] > ma) { ma = a[v]; ia = v; }
            if (b[v] > mb) { mb = b[v]; ib = v; }
        }
        double za = 0, zb = 0;
        for (int v = 0; v < V; v++) {
            za += exp(a[v] - ma);
            zb += exp(b[v] - mb);
        }
        double lza = log(za), lzb = log(zb), kl = 0;
        for (int v = 0; v < V; v++) {
            double la = a[v] - ma - lza, lb = b[v] - mb - lzb;
            kl += exp(la) * (la - lb);
        }
        kl_total += kl;
        agree_total += ia == ib;
    }
    *kl_sum += kl_total;
    *agree += agree_total;
}

// Decode speed: prefill a prompt of `prompt` tokens, then n greedy steps of one token with the
// KV cache; returns decode tokens/s over all but the first quarter of the steps (warm-up;
// at least one step is timed) with the formats in the graph slots and real kernels.
static mxp_status decode_speed(mxp_model *m, mxp_qcache *qc, const int32_t *prompt_ids, int prompt, int n,
                               double *tps, mxp_err *err) {
    const mxp_graph *g = &m->graph;
    mxp_exec ex;
    mxp_status st = mxp_exec_init(&ex, g, 1, prompt + n, MXP_EXEC_KV_CACHE, err);
    if (st) return st;
    st = mxp_exec_use_formats(&ex, qc, MXP_QMODE_REAL, err);
    if (!st) st = mxp_exec_step(&ex, prompt_ids, prompt, err);
    int warm = n / 4;
    double t0 = mxp_now();
    for (int i = 0; i < n && !st; i++) {
        if (i == warm) t0 = mxp_now();
        const float *logits = ex.val[g->n_nodes - 1] + (size_t)(ex.Tq - 1) * g->vocab;
        int32_t best = 0;
        for (int v = 1; v < g->vocab; v++)
            if (logits[v] > logits[best]) best = v;
        st = mxp_exec_step(&ex, &best, 1, err);
    }
    double secs = mxp_now() - t0;
    *tps = secs > 0 ? (n - warm) / secs : 0;
    mxp_exec_free(&ex);
    return st;
}

static void set_slots(mxp_graph *g, const int *fmts) {
    for (int i = 0; i < g->n_nodes; i++)
        if (mxp_node_quantizable(&g->nodes[i])) g->nodes[i].fmt = fmts ? fmts[i] : MXP_FMT_F32;
}

// Speeds on ggml: the f32 reference and (plan != NULL) the formats, paired rounds of whole-model
// ggml graphs (mxp_e2e_time_configs): a prefill pass of T tokens; a decoded token after
// `ctx` cached positions (decode_tokens <= 0: none).
static mxp_status ggml_speeds(mxp_model *m, const int *plan, int T, int ctx, int decode_tokens, mxp_eval_result *r,
                              mxp_err *err) {
    mxp_graph *g = &m->graph;
    unsigned char *cfg = plan ? malloc((size_t)g->n_nodes) : NULL;
    if (plan && !cfg) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    for (int i = 0; cfg && i < g->n_nodes; i++) cfg[i] = (unsigned char)plan[i];
    mxp_status st = MXP_OK;
    for (int pass = 0; pass < 2 && !st; pass++) {
        if (pass == 1 && decode_tokens <= 0) break;
        mxp_workload wl = {.decode = pass, .tokens = pass ? ctx : T, .batch = 1};
        mxp_e2e_time ref, q;
        st = mxp_e2e_time_configs(m, &wl, "ggml", plan ? 1 : 0, cfg, 15, 1.5, &ref, &q, r->speed_engine,
                                  sizeof r->speed_engine, NULL, err);
        if (st) break;
        double units = pass ? 1 : T;
        *(pass ? &r->ref.decode_tokens_per_s : &r->ref.prefill_tokens_per_s) = units / ref.time_s;
        if (plan) *(pass ? &r->quant.decode_tokens_per_s : &r->quant.prefill_tokens_per_s) = q.timed ? units / q.time_s : NAN;
        if (plan && !q.timed) snprintf(r->speed_note, sizeof r->speed_note, "not timed on ggml: %s", q.why);
    }
    free(cfg);
    return st;
}

mxp_status mxp_eval(mxp_model *m, const mxp_eval_opts *o, mxp_eval_result *r, mxp_err *err) {
    memset(r, 0, sizeof *r);
    mxp_graph *g = &m->graph;
    int T = o->seq_len ? o->seq_len : 256;
    if (!o->seq_len && g->max_pos > 0 && T > g->max_pos) T = g->max_pos;
    int B = o->batch ? o->batch : 1;
    if (T < 1 || B < 1) return mxp_fail(err, MXP_ERR_ARG, "--seq and --batch must be positive");
    if (o->max_samples < 0) return mxp_fail(err, MXP_ERR_ARG, "--samples must be positive");
    int n_decode = o->decode_tokens ? o->decode_tokens : 64;
    int use_ggml = !o->backend || !strcmp(o->backend, "ggml");
    if (!use_ggml && strcmp(o->backend, "native"))
        return mxp_fail(err, MXP_ERR_ARG, "--backend '%s': expected ggml or native", o->backend);
    // formats first: a bad plan fails before any work
    int *plan = NULL;
    mxp_status st = MXP_OK;
    // A model file that stores quantized weights (a GGUF from `mixprec apply`) is evaluated in
    // its stored formats unless --formats says otherwise; the reference is its f32 dequantization.
    const char *spec = o->formats;
    for (int i = 0; !spec && i < g->n_nodes; i++)
        if (mxp_node_quantizable(&g->nodes[i]) && g->nodes[i].fmt != MXP_FMT_F32) spec = "stored";
    if (spec) {
        st = mxp_formats_apply_spec(g, spec, err);
        if (st) return st;
        plan = malloc((size_t)g->n_nodes * sizeof *plan);
        if (!plan) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        for (int i = 0; i < g->n_nodes; i++) plan[i] = g->nodes[i].fmt;
        r->quantized = 1;
    }
    // Text goes through the model's tokenizer; only the evaluation split is scored (data.h).
    mxp_tokens toks = {0};
    int32_t *seq = NULL;
    size_t want = 0;
    st = mxp_model_load_data(m, &toks, o->data_path, err);
    if (!st) st = mxp_data_samples(&toks, MXP_SPLIT_EVAL, T, (size_t)o->max_samples, 0, o->data_path, &seq, &want, err);
    mxp_tokens_free(&toks);
    if (st) {
        free(plan);
        set_slots(g, NULL);
        return st;
    }
    if ((size_t)B > want) B = (int)want;
    const int V = g->vocab;
    const size_t rows = (size_t)B * T;
    mxp_exec ex = {0};
    mxp_qcache qc = {0};
    int32_t *batch = malloc((size_t)B * (T + 1) * sizeof *batch);
    double *sl_ref = malloc((size_t)B * sizeof(double)), *sl_q = malloc((size_t)B * sizeof(double));
    float *ref_logits = plan ? malloc(rows * (size_t)V * sizeof(float)) : NULL;
    if (!batch || !sl_ref || !sl_q || (plan && !ref_logits)) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    if (!st) st = mxp_qcache_init(&qc, g, err);
    if (!st) st = mxp_exec_init(&ex, g, B, T, 0, err);
    if (!st && plan) {
        set_slots(g, plan);
        st = mxp_exec_use_formats(&ex, &qc, MXP_QMODE_REAL, err);
    }
    double sum_ref = 0, sum_q = 0, sum_d2 = 0, sum_d4 = 0, kl = 0, agree = 0, t_ref = 0, t_q = 0, t0 = mxp_now();
    size_t done = 0;
    while (!st && done < want) {
        // a final partial batch is padded by repeating its last window and not counted
        int nb = (int)((want - done) < (size_t)B ? (want - done) : (size_t)B);
        for (int b = 0; b < B; b++)
            memcpy(batch + (size_t)b * (T + 1), seq + (done + (size_t)(b < nb ? b : nb - 1)) * (T + 1),
                   (size_t)(T + 1) * sizeof *batch);
        st = mxp_exec_set_batch(&ex, batch, err);
        if (st) break;
        set_slots(g, NULL);
        double ts = mxp_now();
        mxp_exec_forward(&ex, 0, g->n_nodes);
        t_ref += mxp_now() - ts;
        mxp_exec_loss(&ex, sl_ref);
        for (int b = 0; b < nb; b++) sum_ref += sl_ref[b];
        if (plan) {
            memcpy(ref_logits, ex.val[g->n_nodes - 1], rows * (size_t)V * sizeof(float));
            set_slots(g, plan);
            ts = mxp_now();
            mxp_exec_forward(&ex, 0, g->n_nodes);
            t_q += mxp_now() - ts;
            mxp_exec_loss(&ex, sl_q);
            for (int b = 0; b < nb; b++) {
                double d = sl_q[b] - sl_ref[b];
                sum_q += sl_q[b];
                sum_d2 += d * d;
                sum_d4 += d * d * d * d;
            }
            compare_logits(ref_logits, ex.val[g->n_nodes - 1], nb * T, V, &kl, &agree);
        }
        done += (size_t)nb;
        if (o->progress) progress("eval", done, want, t0);
    }
    if (!st) {
        double nw = (double)want, ntok = nw * T;
        r->samples = want;
        r->tokens = want * (size_t)T;
        r->seq_len = T;
        r->batch = B;
        r->ref.loss = sum_ref / nw;
        r->ref.perplexity = exp(r->ref.loss);
        r->ref.prefill_tokens_per_s = t_ref > 0 ? (double)B * T * ceil(nw / B) / t_ref : 0;
        set_slots(g, NULL);
        r->ref.weight_bytes = mxp_formats_weight_bytes(g);
        if (plan) {
            r->quant.loss = sum_q / nw;
            r->quant.perplexity = exp(r->quant.loss);
            r->quant.prefill_tokens_per_s = t_q > 0 ? (double)B * T * ceil(nw / B) / t_q : 0;
            set_slots(g, plan);
            r->quant.weight_bytes = mxp_formats_weight_bytes(g);
            r->loss_mse = sum_d2 / nw;
            double var = want > 1 ? (sum_d4 / nw - r->loss_mse * r->loss_mse) / (nw - 1) : 0;
            r->loss_mse_se = var > 0 ? sqrt(var) : 0;
            r->kl = kl / ntok;
            r->top1 = agree / ntok;
        }
    }
    if (!st) {
        int prompt = T < 32 ? T : 32;
        if (g->max_pos > 0 && prompt + n_decode > g->max_pos) n_decode = g->max_pos - prompt;
        if (use_ggml) {
            // the decoded token after the middle of the native run's context range
            st = ggml_speeds(m, plan, T, prompt + (n_decode > 0 ? n_decode / 2 : 0), n_decode, r, err);
            if (st) mxp_fail_prefix(err, "timing on ggml (--backend native times mixprec's executor): ");
        } else {
            mxp_engine_describe(NULL, r->speed_engine, sizeof r->speed_engine);
            if (n_decode > 0) {
                set_slots(g, NULL);
                st = decode_speed(m, &qc, seq, prompt, n_decode, &r->ref.decode_tokens_per_s, err);
                if (!st && plan) {
                    set_slots(g, plan);
                    st = decode_speed(m, &qc, seq, prompt, n_decode, &r->quant.decode_tokens_per_s, err);
                }
            }
        }
    }
    set_slots(g, NULL);
    mxp_exec_free(&ex);
    mxp_qcache_free(&qc);
    free(plan);
    free(batch);
    free(sl_ref);
    free(sl_q);
    free(ref_logits);
    free(seq);
    return st;
}

// train.c: mixprec-train, trains a small Llama-architecture model from scratch with the
// engine's own forward/backward (the executor) and writes it as a Hugging Face folder. It
// exists to make the test fixtures under models/ (see tools/make_fixtures.sh).
//
//   mixprec-train --tokenizer DIR --train train.txt --heldout heldout.txt --out OUTDIR
//                 [--dim 128 --layers 4 --heads 4 --kv-heads 4 --ffn 344 --seq 128 --tied]
//                 [--steps 500 --batch 8 --lr 3e-3 --warmup 50 --seed 1]
//                 [--eval-every 100 --eval-samples 32 --ckpt-every 200 --log-every 10 --resume]
//
// Model: LlamaForCausalLM (RMSNorm, RoPE, GQA attention, SwiGLU), vocabulary from the
// tokenizer, max positions = --seq. Initial weights: mxp_model_synthetic (2-D weights normal
// with std 0.02, norm weights 1), written to OUTDIR as model.safetensors and read back with
// mxp_model_load_owned, so training starts from the same loader path every model takes.
// Optimiser: AdamW (beta1 0.9, beta2 0.95, eps 1e-8, decoupled weight decay 0.1 on 2-D
// weights only), learning rate warmed up linearly over --warmup steps then cosine-decayed to
// 10% at --steps, gradients clipped to global L2 norm 1.0. Each step draws --batch windows of
// --seq+1 tokens at uniform random offsets of the training token stream, from an RNG seeded
// with (--seed, step), so a resumed run draws exactly the batches the uninterrupted run would.
//
// Files (all written to a temporary name and renamed): OUTDIR/config.json,
// OUTDIR/tokenizer.json and tokenizer_config.json (copied), OUTDIR/model.safetensors (f32),
// OUTDIR/train-checkpoint.safetensors (weights + Adam moments + step; removed after a
// successful run), OUTDIR/train_log.json (settings, timing, held-out loss history, the final
// `mixprec eval` figure on the held-out file and a unigram baseline on the same tokens).
// Ctrl-C: the current step finishes, a checkpoint is written, and the tool exits with status
// 130; run again with --resume to continue. Progress goes to stderr; the last line of a run
// is a "train: ..." summary a script can grep.
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/model.h"
#include "core/rng.h"
#include "io/data.h"
#include "io/tensors.h"
#include "io/tokenizer.h"
#include "runtime/exec.h"

// The one piece of mutable static state: set by the SIGINT handler, read by the loop.
static volatile sig_atomic_t stop_requested = 0;
static void on_sigint(int sig) {
    (void)sig;
    stop_requested = 1;
}

typedef struct opts {
    const char *tokenizer, *train, *heldout, *out;
    int dim, layers, heads, kv_heads, ffn, seq, tied;
    int steps, batch, warmup, eval_every, eval_samples, ckpt_every, log_every, resume;
    double lr, min_lr_frac, wd, beta1, beta2, eps, clip, rope_theta, norm_eps;
    uint64_t seed;
} opts;

static const char *const usage =
    "usage: mixprec-train --tokenizer DIR --train TEXT --heldout TEXT --out DIR [options]\n"
    "model:    --dim 128 --layers 4 --heads 4 --kv-heads H --ffn 344 --seq 128 [--tied]\n"
    "training: --steps 500 --batch 8 --lr 3e-3 --warmup 50 --seed 1\n"
    "          --eval-every 100 --eval-samples 32 --ckpt-every 200 --log-every 10 [--resume]\n";

static int parse_int(const char *opt, const char *s, int lo, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > (1L << 30)) {
        fprintf(stderr, "mixprec-train: %s expects an integer >= %d, got '%s'\n", opt, lo, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int parse_pos_double(const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || !isfinite(v)) {
        fprintf(stderr, "mixprec-train: %s expects a positive number, got '%s'\n", opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.dim = 128, .layers = 4, .heads = 4, .kv_heads = 0, .ffn = 344, .seq = 128, .steps = 500,
                .batch = 8, .warmup = 50, .eval_every = 100, .eval_samples = 32, .ckpt_every = 200,
                .log_every = 10, .lr = 3e-3, .min_lr_frac = 0.1, .wd = 0.1, .beta1 = 0.9, .beta2 = 0.95,
                .eps = 1e-8, .clip = 1.0, .rope_theta = 10000.0, .norm_eps = 1e-5, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1, used = 1;
        if (!strcmp(a, "--tied")) { o->tied = 1; used = 0; }
        else if (!strcmp(a, "--resume")) { o->resume = 1; used = 0; }
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); return -1; }
        else if (!v) { fprintf(stderr, "mixprec-train: unknown option or missing value: %s\n%s", a, usage); return 0; }
        else if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(a, "--train")) o->train = v;
        else if (!strcmp(a, "--heldout")) o->heldout = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--dim")) ok = parse_int(a, v, 2, &o->dim);
        else if (!strcmp(a, "--layers")) ok = parse_int(a, v, 1, &o->layers);
        else if (!strcmp(a, "--heads")) ok = parse_int(a, v, 1, &o->heads);
        else if (!strcmp(a, "--kv-heads")) ok = parse_int(a, v, 1, &o->kv_heads);
        else if (!strcmp(a, "--ffn")) ok = parse_int(a, v, 1, &o->ffn);
        else if (!strcmp(a, "--seq")) ok = parse_int(a, v, 1, &o->seq);
        else if (!strcmp(a, "--steps")) ok = parse_int(a, v, 1, &o->steps);
        else if (!strcmp(a, "--batch")) ok = parse_int(a, v, 1, &o->batch);
        else if (!strcmp(a, "--warmup")) ok = parse_int(a, v, 0, &o->warmup);
        else if (!strcmp(a, "--eval-every")) ok = parse_int(a, v, 1, &o->eval_every);
        else if (!strcmp(a, "--eval-samples")) ok = parse_int(a, v, 1, &o->eval_samples);
        else if (!strcmp(a, "--ckpt-every")) ok = parse_int(a, v, 1, &o->ckpt_every);
        else if (!strcmp(a, "--log-every")) ok = parse_int(a, v, 1, &o->log_every);
        else if (!strcmp(a, "--lr")) ok = parse_pos_double(a, v, &o->lr);
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            ok = !errno && end != v && !*end && v[0] != '-';
            if (!ok) fprintf(stderr, "mixprec-train: --seed expects a non-negative integer, got '%s'\n", v);
            o->seed = s;
        } else { fprintf(stderr, "mixprec-train: unknown option %s\n%s", a, usage); return 0; }
        if (!ok) return 0;
        i += used;
    }
    if (!o->tokenizer || !o->train || !o->heldout || !o->out) {
        fprintf(stderr, "mixprec-train: --tokenizer, --train, --heldout and --out are required\n%s", usage);
        return 0;
    }
    if (!o->kv_heads) o->kv_heads = o->heads;
    if (o->dim % o->heads || o->heads % o->kv_heads || (o->dim / o->heads) % 2) {
        fprintf(stderr, "mixprec-train: --dim must split into --heads of even size, and --heads into --kv-heads groups\n");
        return 0;
    }
    if (o->warmup >= o->steps) {
        fprintf(stderr, "mixprec-train: --warmup (%d) must be below --steps (%d)\n", o->warmup, o->steps);
        return 0;
    }
    return 1;
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

// Copy dir_from/name to dir_to/name atomically (skipped when both name the same file).
static mxp_status copy_file(const char *dir_from, const char *dir_to, const char *name, mxp_err *err) {
    char *src = path_join(dir_from, name), *dst = path_join(dir_to, name);
    mxp_status st = (!src || !dst) ? mxp_fail(err, MXP_ERR_NOMEM, "out of memory") : MXP_OK;
    struct stat a, b;
    if (!st && !stat(src, &a) && !stat(dst, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino) goto done;
    mxp_mapping m = {0};
    if (!st) st = mxp_map_file(&m, src, err);
    if (!st) {
        st = mxp_write_file_atomic(dst, m.base ? (const void *)m.base : (const void *)"", m.size, err);
        mxp_unmap(&m);
    }
done:
    free(src);
    free(dst);
    return st;
}

static mxp_status write_json(const char *dir, const char *name, cJSON *root, mxp_err *err) {
    char *text = cJSON_Print(root);
    char *path = path_join(dir, name);
    mxp_status st = (!text || !path) ? mxp_fail(err, MXP_ERR_NOMEM, "out of memory") : MXP_OK;
    if (!st) {
        size_t n = strlen(text);
        char *withnl = malloc(n + 2);
        if (!withnl) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        else {
            memcpy(withnl, text, n);
            withnl[n] = '\n';
            st = mxp_write_file_atomic(path, withnl, n + 1, err);
            free(withnl);
        }
    }
    free(text);
    free(path);
    return st;
}

// config.json with the keys transformers' LlamaConfig writes (all but transformers_version).
static cJSON *config_json(const mxp_model_config *c, int32_t bos, int32_t eos) {
    cJSON *r = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddBoolToObject(r, "attention_bias", 0);
    cJSON_AddNumberToObject(r, "attention_dropout", 0.0);
    cJSON_AddNumberToObject(r, "bos_token_id", bos);
    cJSON_AddNumberToObject(r, "eos_token_id", eos);
    cJSON_AddNumberToObject(r, "head_dim", c->head_dim);
    cJSON_AddStringToObject(r, "hidden_act", "silu");
    cJSON_AddNumberToObject(r, "hidden_size", c->dim);
    cJSON_AddNumberToObject(r, "initializer_range", 0.02);
    cJSON_AddNumberToObject(r, "intermediate_size", c->ffn);
    cJSON_AddNumberToObject(r, "max_position_embeddings", c->max_pos);
    cJSON_AddBoolToObject(r, "mlp_bias", 0);
    cJSON_AddStringToObject(r, "model_type", "llama");
    cJSON_AddNumberToObject(r, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(r, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(r, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(r, "pretraining_tp", 1);
    cJSON_AddNumberToObject(r, "rms_norm_eps", (double)c->norm_eps);
    cJSON_AddNullToObject(r, "rope_scaling");
    cJSON_AddNumberToObject(r, "rope_theta", c->rope_theta);
    cJSON_AddBoolToObject(r, "tie_word_embeddings", c->tied);
    cJSON_AddStringToObject(r, "torch_dtype", "float32");
    cJSON_AddBoolToObject(r, "use_cache", 1);
    cJSON_AddNumberToObject(r, "vocab_size", c->vocab);
    return r;
}

// Training state beside the model: Adam moments per parameter.
typedef struct trainer {
    mxp_model *m;
    float **mom1, **mom2;  // (n_params) -> (nelem)
    int n_params;
} trainer;

// The model's parameters as safetensors entries (data borrowed); with moments when `ckpt`.
static mxp_status save(const trainer *tr, const char *path, int ckpt, const int32_t *state, int n_state,
                       const float *elapsed, mxp_err *err) {
    const mxp_graph *g = &tr->m->graph;
    int n = g->n_params * (ckpt ? 3 : 1) + (ckpt ? 2 : 0);
    mxp_tensor_info *t = calloc((size_t)n, sizeof *t);
    char **names = calloc((size_t)n, sizeof *names);
    mxp_status st = (!t || !names) ? mxp_fail(err, MXP_ERR_NOMEM, "out of memory") : MXP_OK;
    int k = 0;
    for (int p = 0; !st && p < g->n_params; p++) {
        const mxp_param *q = &g->params[p];
        for (int copy = 0; copy < (ckpt ? 3 : 1); copy++) {
            const char *pre = copy == 0 ? "" : copy == 1 ? "optim.m." : "optim.v.";
            size_t len = strlen(pre) + strlen(q->name) + 1;
            names[k] = malloc(len);
            if (!names[k]) { st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory"); break; }
            snprintf(names[k], len, "%s%s", pre, q->name);
            t[k].name = names[k];
            t[k].dtype = MXP_DT_F32;
            t[k].ndim = q->ndim;
            t[k].shape[0] = q->shape[0];
            t[k].shape[1] = q->shape[1];
            t[k].nelem = q->nelem;
            t[k].nbytes = q->nelem * sizeof(float);
            t[k].data = (const uint8_t *)(copy == 0 ? q->data : copy == 1 ? tr->mom1[p] : tr->mom2[p]);
            k++;
        }
    }
    if (!st && ckpt) {
        t[k] = (mxp_tensor_info){.name = "train.state", .dtype = MXP_DT_I32, .ndim = 1, .shape = {n_state},
                                 .nelem = (size_t)n_state, .data = (const uint8_t *)state,
                                 .nbytes = (size_t)n_state * sizeof(int32_t)};
        k++;
        t[k] = (mxp_tensor_info){.name = "train.elapsed", .dtype = MXP_DT_F32, .ndim = 1, .shape = {1}, .nelem = 1,
                                 .data = (const uint8_t *)elapsed, .nbytes = sizeof(float)};
        k++;
    }
    if (!st) st = mxp_safetensors_write(path, t, k, NULL, 0, err);
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
    free(t);
    return st;
}

enum { ST_STEP, ST_STEPS, ST_BATCH, ST_SEQ, ST_SEED_LO, ST_SEED_HI, ST_N };

// Restore weights, moments and the step from a checkpoint made with the same settings.
static mxp_status load_checkpoint(trainer *tr, const char *path, const int32_t *want, int *step, double *elapsed,
                                  mxp_err *err) {
    mxp_tensor_set ts = {0};
    mxp_status st = mxp_safetensors_open(&ts, path, err);
    if (st) return st;
    const mxp_tensor_info *s = mxp_tensor_find(&ts, "train.state"), *e = mxp_tensor_find(&ts, "train.elapsed");
    if (!s || s->dtype != MXP_DT_I32 || s->nelem != ST_N || !e || e->dtype != MXP_DT_F32 || e->nelem != 1)
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: not a mixprec-train checkpoint (train.state / train.elapsed)", path);
    int32_t got[ST_N];
    if (!st) memcpy(got, s->data, sizeof got);
    static const char *const what[ST_N] = {"", "--steps", "--batch", "--seq", "--seed", "--seed"};
    for (int i = 1; !st && i < ST_N; i++)
        if (got[i] != want[i])
            st = mxp_fail(err, MXP_ERR_ARG, "%s: made with a different %s (%d, now %d)", path, what[i], got[i], want[i]);
    if (!st && (got[ST_STEP] < 0 || got[ST_STEP] > want[ST_STEPS]))
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: step %d out of range", path, got[ST_STEP]);
    const mxp_graph *g = &tr->m->graph;
    for (int p = 0; !st && p < g->n_params; p++) {
        const mxp_param *q = &g->params[p];
        for (int copy = 0; !st && copy < 3; copy++) {
            char name[512];
            snprintf(name, sizeof name, "%s%s", copy == 0 ? "" : copy == 1 ? "optim.m." : "optim.v.", q->name);
            const mxp_tensor_info *t = mxp_tensor_find(&ts, name);
            if (!t || t->dtype != MXP_DT_F32 || t->nelem != q->nelem) {
                st = mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor %s missing or of another shape", path, name);
                break;
            }
            float *dst = copy == 0 ? (float *)q->data : copy == 1 ? tr->mom1[p] : tr->mom2[p];
            memcpy(dst, t->data, q->nelem * sizeof(float));
        }
    }
    if (!st) {
        *step = got[ST_STEP];
        float el;
        memcpy(&el, e->data, sizeof el);
        *elapsed = el;
    }
    mxp_tensor_set_free(&ts);
    return st;
}

static double lr_at(const opts *o, int step) {
    if (step < o->warmup) return o->lr * (double)(step + 1) / (double)o->warmup;
    double prog = (double)(step - o->warmup) / (double)(o->steps - o->warmup);
    if (prog > 1) prog = 1;
    double mn = o->lr * o->min_lr_frac;
    return mn + 0.5 * (o->lr - mn) * (1.0 + cos(3.14159265358979323846 * prog));
}

// Mean loss of the model over windows seq (n, T+1), batch by batch (partial batch padded).
static mxp_status eval_windows(mxp_exec *ex, const int32_t *seq, size_t n, double *loss, mxp_err *err) {
    int B = ex->B, T = ex->T;
    int32_t *batch = malloc((size_t)B * (T + 1) * sizeof *batch);
    double *sl = malloc((size_t)B * sizeof *sl);
    mxp_status st = (!batch || !sl) ? mxp_fail(err, MXP_ERR_NOMEM, "out of memory") : MXP_OK;
    double total = 0;
    for (size_t done = 0; !st && done < n; done += (size_t)B) {
        int nb = (int)(n - done < (size_t)B ? n - done : (size_t)B);
        for (int b = 0; b < B; b++)
            memcpy(batch + (size_t)b * (T + 1), seq + (done + (size_t)(b < nb ? b : nb - 1)) * (T + 1),
                   (size_t)(T + 1) * sizeof *batch);
        st = mxp_exec_set_batch(ex, batch, err);
        if (st) break;
        mxp_exec_forward(ex, 0, ex->g->n_nodes);
        mxp_exec_loss(ex, sl);
        for (int b = 0; b < nb; b++) total += sl[b];
    }
    *loss = total / (double)n;
    free(batch);
    free(sl);
    return st;
}

static void fmt_time(double s, char *buf, size_t n) {
    if (s < 0) s = 0;
    int h = (int)(s / 3600), mi = (int)(s / 60) % 60, se = (int)s % 60;
    if (h) snprintf(buf, n, "%dh%02dm", h, mi);
    else snprintf(buf, n, "%dm%02ds", mi, se);
}

// Unigram baseline: add-one smoothed token frequencies of `train`, scored on the targets of
// windows (n, T+1) (positions 1..T of each, the tokens mxp_eval scores).
static double unigram_loss(const mxp_tokens *train, int vocab, const int32_t *win, size_t n, int T) {
    double *cnt = calloc((size_t)vocab, sizeof *cnt);
    if (!cnt) return NAN;
    for (size_t i = 0; i < train->n; i++)
        if (train->ids[i] >= 0 && train->ids[i] < vocab) cnt[train->ids[i]] += 1;
    double denom = (double)train->n + vocab, total = 0;
    for (size_t w = 0; w < n; w++)
        for (int t = 1; t <= T; t++) {
            int32_t id = win[w * (T + 1) + (size_t)t];
            total -= log((cnt[id] + 1.0) / denom);
        }
    free(cnt);
    return total / ((double)n * T);
}

static int run(const opts *o, mxp_err *err) {
    mxp_status st;
    mxp_tokenizer *tok = NULL;
    mxp_tokens train = {0}, held = {0};
    trainer tr = {0};
    mxp_exec ex = {0}, evx = {0};
    int32_t *held_win = NULL, *batch = NULL, *final_win = NULL;
    size_t n_held = 0, n_final = 0;
    cJSON *hist = cJSON_CreateArray();
    char *ckpt_path = path_join(o->out, "train-checkpoint.safetensors");
    char *model_path = path_join(o->out, "model.safetensors");
    int rc = 1;

    // ---- data ----
    if ((st = mxp_tokenizer_load_json(o->tokenizer, &tok, err))) goto out;
    if ((st = mxp_data_load(&train, o->train, tok, err))) goto out;
    if ((st = mxp_data_load(&held, o->heldout, tok, err))) goto out;
    {
        // the tokenizer must reproduce the training text byte for byte
        char *back = NULL;
        size_t blen = 0;
        mxp_mapping mp;
        if ((st = mxp_tokenizer_decode(tok, train.ids, train.n, 0, &back, &blen, err))) goto out;
        if ((st = mxp_map_file(&mp, o->train, err))) { free(back); goto out; }
        int same = blen == mp.size && !memcmp(back, mp.base, blen);
        mxp_unmap(&mp);
        free(back);
        if (!same) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: the tokenizer does not round-trip this text", o->train);
            goto out;
        }
    }
    if (train.n < (size_t)o->seq + 2) {
        st = mxp_fail(err, MXP_ERR_ARG, "%s: %zu tokens, too few for --seq %d", o->train, train.n, o->seq);
        goto out;
    }
    size_t avail = mxp_split_windows(held.n, MXP_SPLIT_EVAL, o->seq);
    size_t want = avail < (size_t)o->eval_samples ? avail : (size_t)o->eval_samples;
    if ((st = mxp_data_samples(&held, MXP_SPLIT_EVAL, o->seq, want, 1, o->heldout, &held_win, &n_held, err))) goto out;
    fprintf(stderr, "train: %s: %zu tokens; %s: %zu tokens (%zu held-out windows of %d+1 for periodic loss)\n", o->train,
            train.n, o->heldout, held.n, n_held, o->seq);

    // ---- model folder: config, tokenizer, initial (or existing) weights ----
    mxp_model_config c = {.arch = MXP_ARCH_LLAMA, .vocab = mxp_tokenizer_vocab_size(tok), .dim = o->dim,
                          .n_layers = o->layers, .n_heads = o->heads, .n_kv_heads = o->kv_heads,
                          .head_dim = o->dim / o->heads, .ffn = o->ffn, .max_pos = o->seq,
                          .norm_eps = (float)o->norm_eps, .rope_theta = o->rope_theta, .tied = o->tied};
    snprintf(c.arch_name, sizeof c.arch_name, "LlamaForCausalLM");
    int32_t bos = 0, eos = 0;
    if (!mxp_tokenizer_bos(tok, &bos) || !mxp_tokenizer_eos(tok, &eos)) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: the tokenizer has no BOS/EOS token", o->tokenizer);
        goto out;
    }
    if (mkdir(o->out, 0755) && errno != EEXIST) {
        st = mxp_fail(err, MXP_ERR_IO, "%s: cannot create: %s", o->out, strerror(errno));
        goto out;
    }
    int have_ckpt = access(ckpt_path, F_OK) == 0;
    if (o->resume && !have_ckpt) {
        st = mxp_fail(err, MXP_ERR_ARG, "--resume: %s does not exist", ckpt_path);
        goto out;
    }
    if (!o->resume && have_ckpt) {
        st = mxp_fail(err, MXP_ERR_ARG, "%s exists: continue with --resume, or delete it to start over", ckpt_path);
        goto out;
    }
    {
        cJSON *cj = config_json(&c, bos, eos);
        st = write_json(o->out, "config.json", cj, err);
        cJSON_Delete(cj);
        if (st) goto out;
    }
    if ((st = copy_file(o->tokenizer, o->out, "tokenizer.json", err))) goto out;
    if ((st = copy_file(o->tokenizer, o->out, "tokenizer_config.json", err))) goto out;
    if (!o->resume) {
        mxp_model *init = NULL;
        if ((st = mxp_model_synthetic(&c, o->seed, &init, err))) goto out;
        trainer ti = {.m = init};
        st = save(&ti, model_path, 0, NULL, 0, NULL, err);
        mxp_model_free(init);
        if (st) goto out;
    }
    if ((st = mxp_model_load_owned(o->out, &tr.m, err))) goto out;
    const mxp_graph *g = &tr.m->graph;
    tr.n_params = g->n_params;
    tr.mom1 = calloc((size_t)g->n_params, sizeof *tr.mom1);
    tr.mom2 = calloc((size_t)g->n_params, sizeof *tr.mom2);
    if (!tr.mom1 || !tr.mom2) { st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory"); goto out; }
    size_t nparams = 0;
    for (int p = 0; p < g->n_params; p++) {
        nparams += g->params[p].nelem;
        tr.mom1[p] = mxp_calloc(g->params[p].nelem, sizeof(float));
        tr.mom2[p] = mxp_calloc(g->params[p].nelem, sizeof(float));
        if (!tr.mom1[p] || !tr.mom2[p]) { st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory"); goto out; }
    }
    int32_t state[ST_N] = {0, o->steps, o->batch, o->seq, (int32_t)(o->seed & 0x7fffffff),
                           (int32_t)((o->seed >> 31) & 0x7fffffff)};
    int step0 = 0;
    double elapsed0 = 0;
    if (o->resume) {
        if ((st = load_checkpoint(&tr, ckpt_path, state, &step0, &elapsed0, err))) goto out;
        fprintf(stderr, "train: resumed from %s at step %d\n", ckpt_path, step0);
    }
    fprintf(stderr, "train: LlamaForCausalLM dim %d, layers %d, heads %d (kv %d), ffn %d, vocab %d, seq %d, %s: "
            "%zu parameters (%.2f M)\n", c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn, c.vocab, c.max_pos,
            c.tied ? "tied" : "untied", nparams, nparams / 1e6);

    // ---- training ----
    const int B = o->batch, T = o->seq;
    if ((st = mxp_exec_init(&ex, g, B, T, MXP_EXEC_PARAM_GRADS, err))) goto out;
    if ((st = mxp_exec_init(&evx, g, B, T, 0, err))) goto out;
    batch = malloc((size_t)B * (T + 1) * sizeof *batch);
    if (!batch) { st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory"); goto out; }
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C stops at once (files stay whole: atomic writes)
    sigaction(SIGINT, &sa, NULL);
    double t_start = mxp_now(), loss_avg = NAN, last_loss = NAN;
    int step = step0;
    for (; step < o->steps; step++) {
        mxp_rng rng;
        mxp_rng_seed(&rng, o->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)step + 1);
        for (int b = 0; b < B; b++) {
            size_t off = (size_t)mxp_rng_below(&rng, train.n - (size_t)T);
            memcpy(batch + (size_t)b * (T + 1), train.ids + off, (size_t)(T + 1) * sizeof *batch);
        }
        if ((st = mxp_exec_set_batch(&ex, batch, err))) goto out;
        mxp_exec_zero_grads(&ex);
        mxp_exec_forward(&ex, 0, g->n_nodes);
        double loss = mxp_exec_loss(&ex, NULL);
        if (!isfinite(loss)) {
            st = mxp_fail(err, MXP_ERR_ARG, "loss became %g at step %d (lower --lr?)", loss, step);
            goto out;
        }
        if ((st = mxp_exec_backward(&ex, 0, g->n_nodes, 1.0f / (float)ex.N, NULL, NULL, err))) goto out;
        double gn2 = 0;
        for (int p = 0; p < g->n_params; p++)
            for (size_t i = 0; i < g->params[p].nelem; i++) gn2 += (double)ex.pgrad[p][i] * ex.pgrad[p][i];
        double gnorm = sqrt(gn2), clip = gnorm > o->clip ? o->clip / gnorm : 1.0;
        double lr = lr_at(o, step);
        double bc1 = 1.0 - pow(o->beta1, step + 1), bc2 = 1.0 - pow(o->beta2, step + 1);
        for (int p = 0; p < g->n_params; p++) {
            float *w = (float *)g->params[p].data, *gr = ex.pgrad[p], *m1 = tr.mom1[p], *m2 = tr.mom2[p];
            double wd = g->params[p].ndim == 2 ? o->wd : 0.0;
            for (size_t i = 0; i < g->params[p].nelem; i++) {
                double gi = gr[i] * clip;
                m1[i] = (float)(o->beta1 * m1[i] + (1 - o->beta1) * gi);
                m2[i] = (float)(o->beta2 * m2[i] + (1 - o->beta2) * gi * gi);
                double upd = (m1[i] / bc1) / (sqrt(m2[i] / bc2) + o->eps) + wd * w[i];
                w[i] = (float)(w[i] - lr * upd);
            }
        }
        last_loss = loss;
        loss_avg = isnan(loss_avg) ? loss : 0.95 * loss_avg + 0.05 * loss;
        int done = step + 1 - step0;
        double el = mxp_now() - t_start;
        if ((step + 1) % o->log_every == 0 || step + 1 == o->steps) {
            char e1[32], e2[32];
            fmt_time(elapsed0 + el, e1, sizeof e1);
            fmt_time(el / done * (o->steps - step - 1), e2, sizeof e2);
            fprintf(stderr, "step %5d/%d  loss %.4f (avg %.4f)  |g| %.3f  lr %.2e  %.0f tok/s  %s elapsed  ETA %s\n",
                    step + 1, o->steps, loss, loss_avg, gnorm, lr, (double)done * B * T / el, e1, e2);
        }
        if ((step + 1) % o->eval_every == 0 || step + 1 == o->steps) {
            double hl;
            if ((st = eval_windows(&evx, held_win, n_held, &hl, err))) goto out;
            fprintf(stderr, "step %5d/%d  held-out loss %.4f (ppl %.2f)\n", step + 1, o->steps, hl, exp(hl));
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "step", step + 1);
            cJSON_AddNumberToObject(e, "train_loss_avg", loss_avg);
            cJSON_AddNumberToObject(e, "heldout_loss", hl);
            cJSON_AddItemToArray(hist, e);
        }
        int stopping = stop_requested != 0;
        if ((step + 1) % o->ckpt_every == 0 || stopping) {
            state[ST_STEP] = step + 1;
            float elf = (float)(elapsed0 + mxp_now() - t_start);
            if ((st = save(&tr, ckpt_path, 1, state, ST_N, &elf, err))) goto out;
            if (stopping) {
                fprintf(stderr, "train: interrupted; checkpoint at step %d in %s (continue with --resume)\n", step + 1,
                        ckpt_path);
                rc = 130;
                st = MXP_ERR_INTERRUPTED;
                goto out;
            }
        }
    }
    double run_secs = mxp_now() - t_start, train_secs = elapsed0 + run_secs;
    size_t tokens_seen = (size_t)o->steps * B * T;

    // ---- outputs: weights, then the figures `mixprec eval` gives on the written folder ----
    if ((st = save(&tr, model_path, 0, NULL, 0, NULL, err))) goto out;
    // the figure `mixprec eval OUTDIR --data HELDOUT` reports with its defaults: the written
    // folder loaded afresh, every window of the evaluation split, T = min(256, max positions),
    // one sequence per forward pass
    mxp_model *fin = NULL;
    if ((st = mxp_model_load(o->out, &fin, err))) goto out;
    int evalT = fin->graph.max_pos > 0 && fin->graph.max_pos < 256 ? fin->graph.max_pos : 256;
    double final_loss = NAN, t_eval = mxp_now();
    mxp_exec fx = {0};
    st = mxp_data_samples(&held, MXP_SPLIT_EVAL, evalT, 0, 0, o->heldout, &final_win, &n_final, err);
    if (!st) st = mxp_exec_init(&fx, &fin->graph, 1, evalT, 0, err);
    if (!st) st = eval_windows(&fx, final_win, n_final, &final_loss, err);
    t_eval = mxp_now() - t_eval;
    mxp_exec_free(&fx);
    mxp_model_free(fin);
    if (st) goto out;
    double uni = unigram_loss(&train, c.vocab, final_win, n_final, evalT);

    cJSON *log = cJSON_CreateObject();
    cJSON_AddStringToObject(log, "format", "mixprec-train-log 1");
    cJSON_AddStringToObject(log, "tool_version", mxp_version());
    cJSON *mj = cJSON_AddObjectToObject(log, "model");
    cJSON_AddNumberToObject(mj, "parameters", (double)nparams);
    cJSON_AddNumberToObject(mj, "dim", c.dim);
    cJSON_AddNumberToObject(mj, "layers", c.n_layers);
    cJSON_AddNumberToObject(mj, "heads", c.n_heads);
    cJSON_AddNumberToObject(mj, "kv_heads", c.n_kv_heads);
    cJSON_AddNumberToObject(mj, "ffn", c.ffn);
    cJSON_AddNumberToObject(mj, "vocab", c.vocab);
    cJSON_AddNumberToObject(mj, "seq", c.max_pos);
    cJSON_AddBoolToObject(mj, "tied", c.tied);
    cJSON *tj = cJSON_AddObjectToObject(log, "training");
    cJSON_AddStringToObject(tj, "train_data", o->train);
    cJSON_AddNumberToObject(tj, "train_tokens", (double)train.n);
    cJSON_AddNumberToObject(tj, "steps", o->steps);
    cJSON_AddNumberToObject(tj, "batch", B);
    cJSON_AddNumberToObject(tj, "seq", T);
    cJSON_AddNumberToObject(tj, "tokens_seen", (double)tokens_seen);
    cJSON_AddNumberToObject(tj, "epochs", (double)tokens_seen / (double)train.n);
    cJSON_AddNumberToObject(tj, "lr", o->lr);
    cJSON_AddNumberToObject(tj, "warmup", o->warmup);
    cJSON_AddNumberToObject(tj, "min_lr_fraction", o->min_lr_frac);
    cJSON_AddNumberToObject(tj, "weight_decay", o->wd);
    cJSON_AddNumberToObject(tj, "beta1", o->beta1);
    cJSON_AddNumberToObject(tj, "beta2", o->beta2);
    cJSON_AddNumberToObject(tj, "grad_clip", o->clip);
    cJSON_AddNumberToObject(tj, "seed", (double)o->seed);
    cJSON_AddNumberToObject(tj, "seconds", train_secs);
    cJSON_AddNumberToObject(tj, "tokens_per_s", (double)(tokens_seen - (size_t)step0 * B * T) / run_secs);
    cJSON_AddNumberToObject(tj, "final_train_loss", last_loss);
    cJSON_AddNumberToObject(tj, "final_train_loss_avg", loss_avg);
    cJSON_AddBoolToObject(tj, "resumed", o->resume);
    cJSON_AddItemToObject(tj, "heldout_history", hist);
    hist = NULL;
    cJSON *ej = cJSON_AddObjectToObject(log, "eval");
    cJSON_AddStringToObject(ej, "command", "mixprec eval MODEL --data heldout.txt (defaults: evaluation split, "
                                           "seq min(256, max positions), batch 1, every window)");
    cJSON_AddStringToObject(ej, "data", o->heldout);
    cJSON_AddNumberToObject(ej, "seq", evalT);
    cJSON_AddStringToObject(ej, "split", "evaluation (second half of the token stream)");
    cJSON_AddNumberToObject(ej, "samples", (double)n_final);
    cJSON_AddNumberToObject(ej, "tokens", (double)n_final * evalT);
    cJSON_AddNumberToObject(ej, "loss", final_loss);
    cJSON_AddNumberToObject(ej, "perplexity", exp(final_loss));
    cJSON_AddNumberToObject(ej, "unigram_loss", uni);
    cJSON_AddNumberToObject(ej, "unigram_perplexity", exp(uni));
    cJSON_AddNumberToObject(ej, "tokens_per_s", (double)n_final * evalT / t_eval);
    st = write_json(o->out, "train_log.json", log, err);
    cJSON_Delete(log);
    if (st) goto out;
    unlink(ckpt_path);
    fprintf(stderr, "train: done: %d steps, %zu tokens in %.0f s (%.0f tok/s); held-out loss %.4f (ppl %.2f), "
            "unigram %.4f (ppl %.1f); wrote %s\n", o->steps, tokens_seen, train_secs, (double)(tokens_seen - (size_t)step0 * B * T) / run_secs, final_loss,
            exp(final_loss), uni, exp(uni), o->out);
    rc = 0;
out:
    if (st && st != MXP_ERR_INTERRUPTED) fprintf(stderr, "mixprec-train: error: %s\n", err->msg);
    cJSON_Delete(hist);
    mxp_exec_free(&ex);
    mxp_exec_free(&evx);
    for (int p = 0; p < tr.n_params; p++) {
        if (tr.mom1) free(tr.mom1[p]);
        if (tr.mom2) free(tr.mom2[p]);
    }
    free(tr.mom1);
    free(tr.mom2);
    mxp_model_free(tr.m);
    mxp_tokenizer_free(tok);
    mxp_tokens_free(&train);
    mxp_tokens_free(&held);
    free(held_win);
    free(final_win);
    free(batch);
    free(ckpt_path);
    free(model_path);
    return rc;
}

int main(int argc, char **argv) {
    opts o;
    int ok = parse_args(argc, argv, &o);
    if (ok <= 0) return ok < 0 ? 0 : 2;
    mxp_err err = {0};
    return run(&o, &err);
}

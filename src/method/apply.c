// apply.c: `mixprec apply`: a model + a plan -> a GGUF v3 file llama.cpp loads.
//
// What is written (architecture "llama"):
//  - KV: general.architecture, general.name, general.quantization_version (2), the llama.*
//    hyper-parameters config.c's mxp_config_from_gguf reads (context_length, embedding_length,
//    block_count, feed_forward_length, attention.head_count, attention.head_count_kv,
//    rope.dimension_count, attention.layer_norm_rms_epsilon, rope.freq_base) and vocab_size;
//    with a byte-level BPE tokenizer.json beside the model: tokenizer.ggml.model "gpt2",
//    .pre, .tokens, .token_type, .merges, .bos_token_id, .eos_token_id, .add_bos_token,
//    .add_eos_token (ids the vocabulary lacks up to the model's vocab size become "[PADn]",
//    type unused, as llama.cpp's converter does).
//  - tensors with llama.cpp's names (arch/gguf_names.c); every linear weight in its plan
//    format's GGML type (bytes from mxp_quantize_matrix: the kernels' own layout), norms and
//    the token embedding f32; q/k rows permuted as llama.cpp's converter does (model.c undoes
//    it on load). A tied model whose lm_head is not f32 gets its own output.weight (the
//    embedding table stays f32), so the lookup stays exact and the head runs in its format.
//
// Must not: write anything but the output path (atomically), accept formats without a GGML
// type (f8_e4m3), or a model llama.cpp's llama architecture would run differently (biases,
// llama3 rope scaling).
#include <math.h>
#include <string.h>
#include <cJSON.h>

#include "arch/gguf_names.h"
#include "arch/model.h"
#include "io/gguf_write.h"
#include "io/jsonout.h"
#include "io/tokenizer.h"
#include "method/plan.h"
#include "quant/format.h"

// ---- tokenizer metadata from tokenizer.json ----

typedef struct tok_meta {
    int n;                 // tokens written (>= model vocab)
    char **tok;            // (n) owned
    size_t *tok_len;
    int32_t *type;         // (n)
    int n_merges;
    char **merge;          // owned "a b"
    size_t *merge_len;
} tok_meta;

static void tok_meta_free(tok_meta *t) {
    for (int i = 0; i < t->n; i++) free(t->tok[i]);
    for (int i = 0; i < t->n_merges; i++) free(t->merge[i]);
    free(t->tok);
    free(t->tok_len);
    free(t->type);
    free(t->merge);
    free(t->merge_len);
    memset(t, 0, sizeof *t);
}

static int has_byte_level(const cJSON *pt) {
    if (!pt) return 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pt, "type");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "ByteLevel")) return 1;
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers");
    for (const cJSON *e = cJSON_IsArray(seq) ? seq->child : NULL; e; e = e->next)
        if (has_byte_level(e)) return 1;
    return 0;
}

static mxp_status read_tok_meta(tok_meta *tm, const char *dir, int vocab, mxp_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    cJSON *j = NULL;
    mxp_status st = mxp_read_json(path, &j, err);
    if (st) return st;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vmap = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") || !cJSON_IsObject(vmap) || !cJSON_IsArray(merges)) {
        st = mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: only BPE tokenizers (model.type \"BPE\" with vocab and merges) are "
                      "written to GGUF", path);
        goto done;
    }
    if (!has_byte_level(pt)) {
        st = mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: only byte-level BPE tokenizers (GGUF \"gpt2\") are written to GGUF "
                      "so far", path);
        goto done;
    }
    tm->n = vocab;
    tm->tok = mxp_calloc((size_t)vocab, sizeof *tm->tok);
    tm->tok_len = mxp_calloc((size_t)vocab, sizeof *tm->tok_len);
    tm->type = mxp_calloc((size_t)vocab, sizeof *tm->type);
    int nm = cJSON_GetArraySize(merges);
    tm->merge = mxp_calloc((size_t)nm + 1, sizeof *tm->merge);
    tm->merge_len = mxp_calloc((size_t)nm + 1, sizeof *tm->merge_len);
    if (!tm->tok || !tm->tok_len || !tm->type || !tm->merge || !tm->merge_len) {
        tm->n = 0;
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (const cJSON *e = vmap->child; e && !st; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 || e->valuedouble >= vocab) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: token \"%s\" has an id outside the model's vocabulary (%d)", path,
                          e->string, vocab);
            break;
        }
        int id = (int)e->valuedouble;
        if (tm->tok[id]) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: id %d is given to two tokens", path, id);
            break;
        }
        tm->tok[id] = mxp_strdup(e->string);
        tm->tok_len[id] = strlen(e->string);
        tm->type[id] = MXP_TOKT_NORMAL;
        if (!tm->tok[id]) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    for (const cJSON *a = cJSON_IsArray(added) ? added->child : NULL; a && !st; a = a->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(a, "special");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= vocab || !cJSON_IsString(content)) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: an added token has a bad id or content", path);
            break;
        }
        int i = (int)id->valuedouble;
        if (!tm->tok[i]) {
            tm->tok[i] = mxp_strdup(content->valuestring);
            tm->tok_len[i] = strlen(content->valuestring);
            if (!tm->tok[i]) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        }
        tm->type[i] = cJSON_IsTrue(special) ? MXP_TOKT_CONTROL : MXP_TOKT_USER_DEFINED;
    }
    for (int i = 0; i < vocab && !st; i++) {
        if (tm->tok[i]) continue;
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", i);
        tm->tok[i] = mxp_strdup(pad);
        tm->tok_len[i] = strlen(pad);
        tm->type[i] = MXP_TOKT_UNUSED;
        if (!tm->tok[i]) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    for (const cJSON *m = merges->child; m && !st; m = m->next) {
        char *s = NULL;
        if (cJSON_IsString(m)) {
            s = mxp_strdup(m->valuestring);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            size_t a = strlen(m->child->valuestring), b = strlen(m->child->next->valuestring);
            s = malloc(a + b + 2);
            if (s) {
                memcpy(s, m->child->valuestring, a);
                s[a] = ' ';
                memcpy(s + a + 1, m->child->next->valuestring, b + 1);
            }
        } else {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", path, tm->n_merges);
            break;
        }
        if (!s) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            break;
        }
        tm->merge[tm->n_merges] = s;
        tm->merge_len[tm->n_merges++] = strlen(s);
    }
done:
    cJSON_Delete(j);
    return st;
}

// llama.cpp's name for the split regex the tokenizer parsed (tokenizer_json.c refuses a regex
// it does not know, quoting it), and the options llama.cpp ties to that name.
static mxp_status llama_cpp_pre(const mxp_tokenizer *tok, const char *label, const char **name, mxp_err *err) {
    mxp_tok_info ti;
    mxp_tokenizer_info(tok, &ti);
    *name = mxp_tokenizer_pre_llama_name(ti.pre);
    MXP_ASSERT(*name);
    if (ti.ignore_merges != (ti.pre == MXP_TOK_PRE_LLAMA3))
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: model.ignore_merges=%s with the %s split regex: llama.cpp's "
                        "\"%s\" pre-tokenizer %s merges", label, ti.ignore_merges ? "true" : "false",
                        *name, *name, ti.pre == MXP_TOK_PRE_LLAMA3 ? "ignores" : "applies");
    if (ti.add_prefix_space)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: ByteLevel add_prefix_space=true has no llama.cpp equivalent",
                        label);
    return MXP_OK;
}

static mxp_status add_tokenizer(mxp_gguf_writer *w, const mxp_model *m, mxp_err *err) {
    tok_meta tm = {0};
    mxp_tokenizer *tok = NULL;
    const char *pre = NULL;
    mxp_status st = mxp_tokenizer_load_json(m->tokenizer_dir, &tok, err);
    if (!st) st = llama_cpp_pre(tok, m->tokenizer_dir, &pre, err);
    if (!st) st = read_tok_meta(&tm, m->tokenizer_dir, m->config.vocab, err);
    if (!st) {
        mxp_gguf_writer_kv_str(w, "tokenizer.ggml.model", "gpt2", 4);
        mxp_gguf_writer_kv_str(w, "tokenizer.ggml.pre", pre, strlen(pre));
        mxp_gguf_writer_kv_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)tm.tok, tm.tok_len, (uint64_t)tm.n);
        mxp_gguf_writer_kv_arr(w, "tokenizer.ggml.token_type", MXP_GGUF_I32, tm.type, (uint64_t)tm.n);
        mxp_gguf_writer_kv_str_arr(w, "tokenizer.ggml.merges", (const char *const *)tm.merge, tm.merge_len,
                                   (uint64_t)tm.n_merges);
        int32_t id;
        if (mxp_tokenizer_bos(tok, &id)) mxp_gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)id);
        if (mxp_tokenizer_eos(tok, &id)) mxp_gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)id);
        mxp_gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", mxp_tokenizer_add_bos(tok));
        mxp_gguf_writer_kv_bool(w, "tokenizer.ggml.add_eos_token", mxp_tokenizer_add_eos(tok));
    }
    mxp_tokenizer_free(tok);
    tok_meta_free(&tm);
    return st;
}

// ---- tensors ----

typedef struct out_tensor {
    int param;          // graph parameter index
    mxp_format_id fmt;  // f32 for norms and the embedding
    int slot;           // writer index
    mxp_gguf_rope_rows rows;
    char name[128];
} out_tensor;

static mxp_status check_model(const mxp_model *m, mxp_err *err) {
    const mxp_model_config *c = &m->config;
    if (c->arch != MXP_ARCH_LLAMA)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: apply writes the llama architecture only (this is %s)", m->path,
                        c->arch_name);
    if (c->qkv_bias || c->o_bias || c->mlp_bias)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: linear biases (%s) are not part of llama.cpp's llama architecture",
                        m->path, c->arch_name);
    if (c->rope_scaling != MXP_ROPE_NONE)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: llama3 rope scaling is not written to GGUF yet", m->path);
    return MXP_OK;
}

// Row r of the llama.cpp layout holds HF row src_row(r) (heads of hd rows; within a head,
// llama.cpp interleaves the two rotary halves: its row 2i + j is HF row j*hd/2 + i).
static int64_t src_row(int64_t r, int64_t hd) {
    int64_t h = r / hd, w = r % hd, i = w / 2, j = w % 2;
    return h * hd + j * (hd / 2) + i;
}

static mxp_status write_tensor(mxp_gguf_writer *w, const mxp_model *m, const out_tensor *o, mxp_err *err) {
    const mxp_param *p = &m->graph.params[o->param];
    uint8_t *dst = mxp_gguf_writer_data(w, o->slot);
    if (p->ndim == 1) {
        memcpy(dst, p->data, p->nelem * sizeof(float));
        return MXP_OK;
    }
    int O = (int)p->shape[0], I = (int)p->shape[1];
    const float *src = p->data;
    float *perm = NULL;
    if (o->rows != MXP_GGUF_ROWS_PLAIN) {
        int heads = o->rows == MXP_GGUF_ROWS_Q ? m->config.n_heads : m->config.n_kv_heads;
        int64_t hd = O / heads;
        MXP_ASSERT(O % heads == 0 && hd % 2 == 0);
        perm = malloc((size_t)O * (size_t)I * sizeof *perm);
        if (!perm) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        for (int64_t r = 0; r < O; r++)
            memcpy(perm + r * I, src + src_row(r, hd) * I, (size_t)I * sizeof(float));
        src = perm;
    }
    mxp_status st = mxp_quantize_matrix(o->fmt, src, O, I, dst, w->t[o->slot].nbytes, o->name, err);
    free(perm);
    return st;
}

static void base_name(const char *path, char *out, size_t cap) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t s = n;
    while (s > 0 && path[s - 1] != '/') s--;
    snprintf(out, cap, "%.*s", (int)(n - s), path + s);
}

static mxp_status build_file(mxp_gguf_writer *w, mxp_model *m, out_tensor *ot, int *n_ot, mxp_apply_report *rep,
                             mxp_err *err) {
    const mxp_model_config *c = &m->config;
    mxp_graph *g = &m->graph;
    // linear formats per parameter
    int head_node = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        if (n->op != MXP_OP_LINEAR) continue;
        const mxp_format *f = mxp_format_get((mxp_format_id)n->fmt);
        if (!f->has_ggml_type)
            return mxp_fail(err, MXP_ERR_UNSUPPORTED, "module %s: format %s has no GGML type, so a GGUF cannot hold it "
                            "(solve with --forbid '*=%s')", n->name, f->name, f->name);
        if (!strcmp(n->name, "lm_head")) head_node = i;
    }
    MXP_ASSERT(head_node >= 0);
    char name[128];
    base_name(m->path, name, sizeof name);
    mxp_gguf_writer_kv_str(w, "general.architecture", "llama", 5);
    mxp_gguf_writer_kv_str(w, "general.name", name, strlen(name));
    mxp_gguf_writer_kv_u32(w, "general.quantization_version", 2);
    if (c->max_pos > 0) mxp_gguf_writer_kv_u32(w, "llama.context_length", (uint32_t)c->max_pos);
    mxp_gguf_writer_kv_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    mxp_gguf_writer_kv_u32(w, "llama.block_count", (uint32_t)c->n_layers);
    mxp_gguf_writer_kv_u32(w, "llama.feed_forward_length", (uint32_t)c->ffn);
    mxp_gguf_writer_kv_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads);
    mxp_gguf_writer_kv_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    mxp_gguf_writer_kv_u32(w, "llama.rope.dimension_count", (uint32_t)c->head_dim);
    if (c->head_dim * c->n_heads != c->dim) {
        mxp_gguf_writer_kv_u32(w, "llama.attention.key_length", (uint32_t)c->head_dim);
        mxp_gguf_writer_kv_u32(w, "llama.attention.value_length", (uint32_t)c->head_dim);
    }
    mxp_gguf_writer_kv_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    mxp_gguf_writer_kv_f32(w, "llama.rope.freq_base", (float)c->rope_theta);
    mxp_gguf_writer_kv_u32(w, "llama.vocab_size", (uint32_t)c->vocab);
    if (m->tokenizer_dir) {
        mxp_status st = add_tokenizer(w, m, err);
        if (st) return st;
        rep->tokenizer = 1;
    }
    // tensors in parameter order; a tied head in a quantized format gets its own output.weight
    int n = 0;
    const mxp_node *head = &g->nodes[head_node];
    for (int pi = 0; pi < g->n_params; pi++) {
        const mxp_param *p = &g->params[pi];
        out_tensor *o = &ot[n];
        if (!mxp_gguf_name_from_hf(p->name, o->name, sizeof o->name, &o->rows))
            return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: tensor %s has no llama.cpp name", m->path, p->name);
        o->param = pi;
        o->fmt = MXP_FMT_F32;
        int is_embed = !strcmp(p->name, "model.embed_tokens.weight");
        for (int i = 0; i < g->n_nodes && !is_embed; i++)
            if (g->nodes[i].op == MXP_OP_LINEAR && g->nodes[i].w == pi) o->fmt = (mxp_format_id)g->nodes[i].fmt;
        n++;
        if (is_embed && c->tied && head->fmt != MXP_FMT_F32) {
            out_tensor *h = &ot[n++];
            *h = *o;
            snprintf(h->name, sizeof h->name, "output.weight");
            h->fmt = (mxp_format_id)head->fmt;
        }
    }
    for (int i = 0; i < n; i++) {
        const mxp_param *p = &g->params[ot[i].param];
        size_t bytes;
        if (p->ndim == 1) {
            if (!mxp_mul_ok(p->nelem, sizeof(float), &bytes)) return mxp_fail(err, MXP_ERR_NOMEM, "%s: too large", ot[i].name);
        } else if (mxp_format_matrix_bytes(ot[i].fmt, p->shape[0], p->shape[1], &bytes, err)) {
            return mxp_fail_prefix(err, "%s: ", ot[i].name);
        }
        int64_t shape[2] = {p->shape[0], p->ndim == 2 ? p->shape[1] : 0};
        mxp_gguf_writer_tensor(w, ot[i].name, mxp_format_get(ot[i].fmt)->ggml_type, p->ndim, shape, bytes, &ot[i].slot);
        if (p->ndim == 2 && strcmp(ot[i].name, "token_embd.weight")) rep->n_by_format[ot[i].fmt]++;
    }
    *n_ot = n;
    return mxp_gguf_writer_finish(w, err);
}

mxp_status mxp_apply(const char *model_path, const char *plan, const char *out_path, mxp_apply_report *rep,
                     mxp_err *err) {
    memset(rep, 0, sizeof *rep);
    mxp_model *m = NULL;
    mxp_status st = mxp_model_load(model_path, &m, err);
    if (st) return st;
    st = check_model(m, err);
    if (!st) st = mxp_formats_apply_spec(&m->graph, plan, err);
    out_tensor *ot = st ? NULL : mxp_calloc((size_t)m->graph.n_params + 2, sizeof *ot);
    if (!st && !ot) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    mxp_gguf_writer w;
    mxp_gguf_writer_init(&w);
    int n = 0;
    if (!st) st = build_file(&w, m, ot, &n, rep, err);
    for (int i = 0; i < n && !st; i++) st = write_tensor(&w, m, &ot[i], err);
    if (!st) st = mxp_write_file_atomic(out_path, w.image, w.size, err);
    if (!st) {
        rep->n_tensors = n;
        rep->file_bytes = (double)w.size;
    }
    mxp_gguf_writer_free(&w);
    free(ot);
    mxp_model_free(m);
    return st;
}

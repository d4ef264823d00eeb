// model.c: loading a model (Hugging Face folder or GGUF file) into parameters and a graph.
// The undoing of llama.cpp's q/k row permutation lives here; the name table between llama.cpp's
// GGUF tensor names and Hugging Face names is in gguf_names.c.
//
// Stored types (core/graph.h). A bf16 or f16 weight of a quantizable node (linear weights, the
// token embedding), and one in a GGUF block format of the format table (q8_0, q4_K, ...: a
// quantized GGUF), stays in its stored type, used in place from the read-only mapping: only
// its pages the computation touches are resident, and no f32 copy is made; GGUF q/k rows keep
// llama.cpp's order (the accessor maps rows), a transposed GPT-2 weight becomes an owned
// transposed 16-bit copy (a transposed block-format weight is converted to f32: blocks run
// along the file's rows), and bytes at an odd address (a safetensors header of odd length) an
// owned aligned copy. Every other parameter (f32 tensors, vectors, biases, GPT-2's position
// table) is converted to f32 at load as before, its file pages then dropped from the resident
// set.
#include "arch/model.h"

#include <string.h>
#include <sys/stat.h>

#include "arch/gguf_names.h"
#include "core/rng.h"
#include "quant/format.h"

// ---- GGUF name mapping (the table lives in gguf_names.c) ----

// Hugging Face name -> GGUF name. Returns 1 and writes out, or 0 if the name has no GGUF twin.
// *permute_heads > 0 when the GGUF rows are permuted for rotary embeddings (q: heads, k: kv heads).
static int hf_to_gguf(const mxp_model_config *c, const char *hf, char *out, size_t cap, int *permute_heads) {
    mxp_gguf_rope_rows rows;
    int ok = mxp_gguf_name_from_hf(hf, out, cap, &rows);
    *permute_heads = rows == MXP_GGUF_ROWS_Q ? c->n_heads : rows == MXP_GGUF_ROWS_K ? c->n_kv_heads : 0;
    return ok;
}

// ---- parameter fetch ----

static const mxp_tensor_set *tensor_set(const mxp_model *m) { return m->is_gguf ? &m->gguf.tensors : &m->files; }

static mxp_status keep_weight(mxp_model *m, void *w, mxp_err *err) {
    if (m->n_weights == m->cap_weights) {
        int ncap = m->cap_weights ? 2 * m->cap_weights : 64;
        void **p = realloc(m->weights, (size_t)ncap * sizeof *p);
        if (!p) {
            free(w);
            return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        }
        m->weights = p;
        m->cap_weights = ncap;
    }
    m->weights[m->n_weights++] = w;
    return MXP_OK;
}

// Synthetic parameter: random 2-D weights (std 0.02), ones for norm weights, zeros for biases.
static mxp_status synthetic_param(mxp_model *m, const char *name, int ndim, const int64_t *shape, int *index,
                                  mxp_err *err) {
    size_t n = (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
    float *w = malloc(n * sizeof(float));
    if (!w) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory creating %s", name);
    mxp_rng rng;
    mxp_rng_seed(&rng, m->seed++);
    size_t len = strlen(name);
    int is_bias = len > 5 && !strcmp(name + len - 5, ".bias");
    for (size_t i = 0; i < n; i++)
        w[i] = ndim == 2 ? (float)(0.02 * mxp_rng_normal(&rng)) : (is_bias ? 0.0f : 1.0f);
    mxp_status st = keep_weight(m, w, err);
    if (st) return st;
    return mxp_graph_add_param(&m->graph, name, ndim, shape, w, 0, index, err);
}

// Drop the pages of [p, p + n) from the resident set when they lie in the model's mappings.
static void release_bytes(mxp_model *m, const void *p, size_t n) {
    if (m->is_gguf) mxp_map_release(&m->gguf.map, p, n);
    else
        for (int i = 0; i < m->files.n_maps; i++)
            if (mxp_map_release(&m->files.maps[i], p, n)) return;
}

void mxp_model_release_param(mxp_model *m, int p) {
    MXP_ASSERT(p >= 0 && p < m->graph.n_params);
    const mxp_param *q = &m->graph.params[p];
    if (!q->raw) return;
    // an owned copy lies in no mapping: release_bytes leaves it alone
    release_bytes(m, q->raw, mxp_param_stored_bytes(q));
}

void mxp_model_release_nodes(mxp_model *m, int first, int last) {
    MXP_ASSERT(0 <= first && first <= last && last <= m->graph.n_nodes);
    for (int i = first; i < last; i++) {
        const mxp_node *n = &m->graph.nodes[i];
        if (n->has_w) mxp_model_release_param(m, n->w);
        if (n->has_b) mxp_model_release_param(m, n->b);
    }
}

// The format a 2-D tensor of dtype dt stays in (see the file comment), or 0 (f32: converted).
static int stored_format(mxp_dtype dt, int transpose_2d) {
    mxp_format_id f;
    if (dt == MXP_DT_F32 || !mxp_dtype_format(dt, &f)) return MXP_FMT_F32;
    const mxp_format *fm = mxp_format_get(f);
    if (!fm->dequantize_row || fm->row_prefix_bytes || fm->block_size > MXP_MAX_BLOCK) return MXP_FMT_F32;
    return fm->block_size == 1 || !transpose_2d ? (int)f : MXP_FMT_F32;
}

// A 2-D tensor kept in its stored type (see the file comment). Its shape was checked.
static mxp_status stored_param(mxp_model *m, const mxp_tensor_info *t, const char *name, const int64_t *shape,
                               int stored, int transpose_2d, int permute_heads, int *index, mxp_err *err) {
    const mxp_format *f = mxp_format_get((mxp_format_id)stored);
    size_t need;
    if (shape[1] % f->block_size || !mxp_mul_ok((size_t)shape[0], mxp_row_bytes(f, (int)shape[1]), &need) ||
        need != t->nbytes)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor %s: %zu bytes do not hold [%lld, %lld] %s values", m->path,
                        t->name, t->nbytes, (long long)t->shape[0], (long long)t->shape[1], f->name);
    if (permute_heads && (t->shape[0] % permute_heads || (t->shape[0] / permute_heads) % 2))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor %s rows %lld do not split into %d heads", m->path, t->name,
                        (long long)t->shape[0], permute_heads);
    const void *raw = t->data;
    if (transpose_2d || (uintptr_t)t->data % 2) {  // transposed: 16-bit values only
        uint16_t *w = mxp_aligned_alloc(t->nbytes);
        if (!w) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory copying %s", t->name);
        if (transpose_2d) {  // file (I, O) -> compute (O, I), 16-bit values read with memcpy
            int64_t R = t->shape[0], C = t->shape[1];
            for (int64_t r = 0; r < R; r++)
                for (int64_t c = 0; c < C; c++) memcpy(&w[c * R + r], t->data + 2 * (r * C + c), 2);
        } else {
            memcpy(w, t->data, t->nbytes);
        }
        release_bytes(m, t->data, t->nbytes);
        mxp_status st = keep_weight(m, w, err);
        if (st) return st;
        raw = w;
    }
    return mxp_graph_add_param_stored(&m->graph, name, shape, stored, raw, permute_heads, transpose_2d, index, err);
}

// Parameters kept in a 16-bit type that a node reads other than as a quantizable node's
// weight (GPT-2's position table; a bias or norm would be 1-D, converted already) become f32
// copies: the accessor serves only the weights of the matrix products and lookups.
static mxp_status widen_other_params(mxp_model *m, mxp_err *err) {
    mxp_graph *g = &m->graph;
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        int idx[2], k = 0;
        if (n->has_w && !mxp_node_quantizable(n)) idx[k++] = n->w;
        if (n->has_b) idx[k++] = n->b;
        for (int q = 0; q < k; q++) {
            mxp_param *p = &g->params[idx[q]];
            if (p->stored == MXP_FMT_F32) continue;
            float *w = malloc(p->nelem * sizeof(float));
            if (!w) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory converting %s", p->name);
            mxp_param_widen(p, 0, p->shape[0], 0, p->shape[1], w, p->shape[1]);
            release_bytes(m, p->raw, mxp_param_stored_bytes(p));
            mxp_status st = keep_weight(m, w, err);
            if (st) return st;
            p->stored = MXP_FMT_F32;
            p->data = w;
            p->raw = w;
            p->row_heads = 0;
        }
    }
    return MXP_OK;
}

mxp_status mxp_model_param_opt(mxp_model *m, const char *name, int ndim, const int64_t *shape, int transpose_2d,
                               int *index, int *found, mxp_err *err) {
    if (m->synthetic) {
        if (found) *found = 1;
        return synthetic_param(m, name, ndim, shape, index, err);
    }
    char gname[256];
    const char *file_name = name;
    int permute_heads = 0;
    if (m->is_gguf) {
        if (!hf_to_gguf(&m->config, name, gname, sizeof gname, &permute_heads)) {
            if (found) {
                *found = 0;
                return MXP_OK;
            }
            return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: no GGUF tensor corresponds to %s", m->path, name);
        }
        file_name = gname;
    }
    const mxp_tensor_info *t = mxp_tensor_find(tensor_set(m), file_name);
    if (!t) {
        if (found) {
            *found = 0;
            return MXP_OK;
        }
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: missing tensor %s", m->path, file_name);
    }
    if (found) *found = 1;
    // expected shape in the file's layout
    int64_t want[2] = {shape[0], ndim == 2 ? shape[1] : 0};
    if (transpose_2d) {
        want[0] = shape[1];
        want[1] = shape[0];
    }
    if (t->ndim != ndim || t->shape[0] != want[0] || (ndim == 2 && t->shape[1] != want[1]))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor %s has shape [%lld%s%lld] but the config implies [%lld%s%lld]",
                        m->path, file_name, (long long)t->shape[0], t->ndim > 1 ? ", " : "",
                        t->ndim > 1 ? (long long)t->shape[1] : 0LL, (long long)want[0], ndim > 1 ? ", " : "",
                        ndim > 1 ? (long long)want[1] : 0LL);
    int stored = ndim == 2 && !m->owned_only ? stored_format(t->dtype, transpose_2d) : MXP_FMT_F32;
    if (stored != MXP_FMT_F32) return stored_param(m, t, name, shape, stored, transpose_2d, permute_heads, index, err);
    const float *data;
    int aligned = ((uintptr_t)t->data % sizeof(float)) == 0;
    if (t->dtype == MXP_DT_F32 && aligned && !transpose_2d && !permute_heads && !m->owned_only) {
        data = (const float *)t->data;  // borrow from the read-only mapping
    } else {
        float *raw = malloc(t->nelem * sizeof(float));
        if (!raw) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory converting %s", file_name);
        mxp_status st = mxp_tensor_to_f32(t, raw, err);
        if (st) {
            free(raw);
            return mxp_fail_prefix(err, "%s: ", m->path);
        }
        // the file's bytes were read once, into the f32 copy: their pages need not stay resident
        // beside it (a bf16 model's file would otherwise add half its f32 size to the memory)
        if (m->is_gguf) mxp_map_release(&m->gguf.map, t->data, t->nbytes);
        else mxp_tensor_set_release(&m->files, t);
        float *w = raw;
        if (transpose_2d || permute_heads) {
            w = malloc(t->nelem * sizeof(float));
            if (!w) {
                free(raw);
                return mxp_fail(err, MXP_ERR_NOMEM, "out of memory converting %s", file_name);
            }
            if (transpose_2d) {  // file (I, O) -> compute (O, I)
                int64_t R = t->shape[0], C = t->shape[1];
                for (int64_t r = 0; r < R; r++)
                    for (int64_t c = 0; c < C; c++) w[c * R + r] = raw[r * C + c];
            } else {
                // llama.cpp stores row h*hd + 2*i + j for the HF row h*hd + j*hd/2 + i.
                int64_t rows = t->shape[0], cols = t->shape[1];
                if (rows % permute_heads || (rows / permute_heads) % 2) {
                    free(raw);
                    free(w);
                    return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor %s rows %lld do not split into %d heads", m->path,
                                    file_name, (long long)rows, permute_heads);
                }
                int64_t hd = rows / permute_heads, half = hd / 2;
                for (int64_t h = 0; h < permute_heads; h++)
                    for (int64_t j = 0; j < 2; j++)
                        for (int64_t i = 0; i < half; i++)
                            memcpy(&w[(h * hd + j * half + i) * cols], &raw[(h * hd + 2 * i + j) * cols],
                                   (size_t)cols * sizeof(float));
            }
            free(raw);
        }
        mxp_status st2 = keep_weight(m, w, err);
        if (st2) return st2;
        data = w;
    }
    return mxp_graph_add_param(&m->graph, name, ndim, shape, data, transpose_2d, index, err);
}

mxp_status mxp_model_param(mxp_model *m, const char *name, int ndim, const int64_t *shape, int transpose_2d,
                           int *index, mxp_err *err) {
    return mxp_model_param_opt(m, name, ndim, shape, transpose_2d, index, NULL, err);
}

// Buffers some checkpoints carry that are not parameters of the computation.
static int ignorable(const char *name) {
    static const char *const suffixes[] = {".rotary_emb.inv_freq", ".attn.bias", ".attn.masked_bias"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && !strcmp(name + n - k, suffixes[i])) return 1;
    }
    return 0;
}

// Every file tensor must have become a parameter (or be a known buffer).
static mxp_status check_all_used(mxp_model *m, mxp_err *err) {
    const mxp_tensor_set *ts = tensor_set(m);
    for (int i = 0; i < ts->n; i++) {
        const char *name = ts->tensors[i].name;
        int used = 0;
        for (int p = 0; p < m->graph.n_params && !used; p++) {
            char gname[256];
            int perm;
            const char *fname = m->graph.params[p].name;
            if (m->is_gguf && hf_to_gguf(&m->config, fname, gname, sizeof gname, &perm)) fname = gname;
            used = !strcmp(fname, name);
        }
        if (!used && m->config.tied && (!strcmp(name, "lm_head.weight") || !strcmp(name, "output.weight"))) used = 1;
        if (!used && !ignorable(name))
            return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: tensor %s is not used by the %s graph (unsupported feature?)",
                            m->path, name, m->config.arch_name);
    }
    return MXP_OK;
}

// ---- loading ----

// A GGUF that stores a linear weight in a format of the table (F16, BF16, Q8_0, Q4_0, the
// k-quants, ...: mixprec apply, llama.cpp's quantizer) runs that op in that format: its graph slot takes the file's format, so `--formats stored`
// (plan.c) runs the model as written. The f32 parameter holds the dequantized weight, which
// the slot's quantizer maps back to the same bytes.
static void slots_from_gguf(mxp_model *m) {
    for (int i = 0; i < m->graph.n_nodes; i++) {
        mxp_node *n = &m->graph.nodes[i];
        char gname[256];
        int perm;
        if (!mxp_node_quantizable(n) || !hf_to_gguf(&m->config, m->graph.params[n->w].name, gname, sizeof gname, &perm))
            continue;
        // a tied head takes token_embd's format, as llama.cpp runs it
        const mxp_tensor_info *t = mxp_tensor_find(&m->gguf.tensors, gname);
        // every stored format, f16/bf16 included (llama.cpp rounds their activations, format.h)
        mxp_format_id f;
        if (t && mxp_dtype_format(t->dtype, &f)) n->fmt = f;
    }
}

static mxp_status read_config(mxp_model *m, const char *dir, mxp_err *err) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path)
        return mxp_fail(err, MXP_ERR_ARG, "%s: path too long", dir);
    mxp_mapping map;
    mxp_status st = mxp_map_file(&map, path, err);
    if (st) return st;
    st = mxp_config_from_hf_json(&m->config, (const char *)map.base, map.size, path, err);
    mxp_unmap(&map);
    return st;
}

static mxp_status load(const char *path, int owned_only, mxp_model **out, mxp_err *err) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return mxp_fail(err, MXP_ERR_IO, "%s: no such file or folder", path);
    mxp_model *m = calloc(1, sizeof *m);
    if (!m) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    m->owned_only = owned_only;
    m->path = mxp_strdup(path);
    mxp_status st = m->path ? MXP_OK : mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    if (!st && S_ISDIR(sb.st_mode)) {
        st = read_config(m, path, err);
        if (!st) st = mxp_hf_open_weights(&m->files, path, err);
        if (!st) {
            m->tokenizer_dir = mxp_strdup(path);
            if (!m->tokenizer_dir) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        }
    } else if (!st) {
        m->is_gguf = 1;
        st = mxp_gguf_open(&m->gguf, path, err);
        if (!st) st = mxp_config_from_gguf(&m->config, &m->gguf, path, err);
    }
    if (!st) {
        m->graph.vocab = m->config.vocab;
        m->graph.max_pos = m->config.max_pos;
        st = m->config.arch == MXP_ARCH_GPT2 ? mxp_build_gpt2(m, err) : mxp_build_llama(m, err);
    }
    if (!st) st = mxp_graph_validate(&m->graph, err);
    if (!st) st = check_all_used(m, err);
    if (!st) st = widen_other_params(m, err);
    if (st) {
        mxp_model_free(m);
        return st;
    }
    if (m->is_gguf) slots_from_gguf(m);
    *out = m;
    return MXP_OK;
}

mxp_status mxp_model_load(const char *path, mxp_model **out, mxp_err *err) { return load(path, 0, out, err); }

mxp_status mxp_model_synthetic(const mxp_model_config *c, uint64_t seed, mxp_model **out, mxp_err *err) {
    *out = NULL;
    mxp_model *m = calloc(1, sizeof *m);
    if (!m) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    m->synthetic = 1;
    m->seed = seed;
    m->config = *c;
    m->path = mxp_strdup("(synthetic)");
    mxp_status st = m->path ? MXP_OK : mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    m->graph.vocab = c->vocab;
    m->graph.max_pos = c->max_pos;
    if (!st) st = c->arch == MXP_ARCH_GPT2 ? mxp_build_gpt2(m, err) : mxp_build_llama(m, err);
    if (!st) st = mxp_graph_validate(&m->graph, err);
    if (st) {
        mxp_model_free(m);
        return st;
    }
    *out = m;
    return MXP_OK;
}

mxp_status mxp_model_load_owned(const char *path, mxp_model **out, mxp_err *err) { return load(path, 1, out, err); }

void mxp_model_free(mxp_model *m) {
    if (!m) return;
    mxp_graph_free(&m->graph);
    for (int i = 0; i < m->n_weights; i++) free(m->weights[i]);
    free(m->weights);
    mxp_tensor_set_free(&m->files);
    if (m->is_gguf) mxp_gguf_free(&m->gguf);
    mxp_tokenizer_free(m->tokenizer);
    free(m->tokenizer_dir);
    free(m->path);
    free(m);
}

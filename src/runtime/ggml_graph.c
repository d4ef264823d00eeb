// ggml_graph.c: mixprec's graph on ggml's CPU backend (see ggml_graph.h for the op mapping).
// Tensor shapes here are ggml's: ne[0] is the fastest dimension, so an exec value (N, cols)
// is the ggml tensor (cols, N).
// Weights go into ggml tensors in their slot's format: quantized bytes from the qcache, f32
// from the parameter (a weight stored in bf16/f16 widened row by row into the tensor).
// Must not: time anything or hold global state beyond the once-per-process backend loading
// (ggml's registry is itself process-wide).
#include "runtime/ggml_graph.h"

#include <dlfcn.h>
#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml-cpu.h>
#include <ggml.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "quant/format.h"

#ifndef MXP_GGML_BACKEND_DIR
#define MXP_GGML_BACKEND_DIR ""
#endif

// ---- the backend ----

int mxp_ggml_default_threads(void) {
    // common_cpu_get_num_physical_cores: the number of distinct thread_siblings masks
    char seen[256][64];
    int n = 0;
    for (int cpu = 0; cpu < 4096 && n < 256; cpu++) {
        char path[128], line[64] = "";
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/thread_siblings", cpu);
        FILE *f = fopen(path, "r");
        if (!f) break;
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
        int dup = 0;
        for (int k = 0; k < n && !dup; k++) dup = !strcmp(seen[k], line);
        if (!dup) snprintf(seen[n++], sizeof seen[0], "%s", line);
    }
    if (n > 0) return n;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 4 ? (int)(c / 2) : c > 0 ? (int)c : 1;
}

// ggml's log: warnings and errors to stderr, the rest (backend loading chatter) dropped.
static void quiet_log(enum ggml_log_level level, const char *text, void *ud) {
    (void)ud;
    if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static void load_backends(void) {
    ggml_log_set(quiet_log, NULL);
    const char *dir = getenv("MXP_GGML_BACKEND_DIR");
    ggml_backend_load_all_from_path(dir && *dir ? dir : MXP_GGML_BACKEND_DIR);
}

mxp_status mxp_ggml_init(mxp_ggml *gg, int threads, int no_extra, mxp_err *err) {
    memset(gg, 0, sizeof *gg);
    pthread_once(&load_once, load_backends);
    const char *dir = getenv("MXP_GGML_BACKEND_DIR");
    if (!dir || !*dir) dir = MXP_GGML_BACKEND_DIR;
    gg->dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!gg->dev)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED,
                        "ggml: no CPU backend (libggml-cpu-*.so) could be loaded from '%s' (set MXP_GGML_BACKEND_DIR)", dir);
    gg->be = ggml_backend_dev_init(gg->dev, NULL);
    if (!gg->be) return mxp_fail(err, MXP_ERR_UNSUPPORTED, "ggml: the CPU backend did not start");
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(gg->dev);
    gg->threads = threads > 0 ? threads : mxp_ggml_default_threads();
    ggml_backend_set_n_threads_t set_n = (ggml_backend_set_n_threads_t)ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
    if (set_n) set_n(gg->be, gg->threads);
    // which variant: the file the backend's functions live in
    Dl_info di;
    void *sym = ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
    snprintf(gg->variant, sizeof gg->variant, "(unknown)");
    if (sym && dladdr(sym, &di) && di.dli_fname) {
        const char *b = strrchr(di.dli_fname, '/');
        b = b ? b + 1 : di.dli_fname;
        const char *p = strstr(b, "ggml-cpu-");
        if (p) {
            p += 9;
            size_t len = strcspn(p, ".");
            snprintf(gg->variant, sizeof gg->variant, "%.*s", (int)(len < 60 ? len : 60), p);
        } else {
            snprintf(gg->variant, sizeof gg->variant, "%.60s", b);
        }
        // llama.cpp runs the graph on a thread pool attached to the backend (llama-bench:
        // ggml_threadpool_params_default, poll 50): do the same
        void *h = dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD);
        void (*set_tp)(ggml_backend_t, struct ggml_threadpool *) = h ? (void (*)(ggml_backend_t, struct ggml_threadpool *))dlsym(h, "ggml_backend_cpu_set_threadpool") : NULL;
        struct ggml_threadpool *(*tp_new)(struct ggml_threadpool_params *) =
            (struct ggml_threadpool * (*)(struct ggml_threadpool_params *)) ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
        gg->tp_free = (void (*)(struct ggml_threadpool *))ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free");
        if (set_tp && tp_new && gg->tp_free) {
            struct ggml_threadpool_params tpp = ggml_threadpool_params_default(gg->threads);
            gg->tp = tp_new(&tpp);
            if (gg->tp) set_tp(gg->be, gg->tp);
        }
        if (h) dlclose(h);
    }
    typedef struct ggml_backend_feature *(*features_fn)(ggml_backend_reg_t);
    features_fn ff = (features_fn)ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features");
    size_t used = 0;
    for (struct ggml_backend_feature *f = ff ? ff(reg) : NULL; f && f->name && used + 1 < sizeof gg->features; f++) {
        int w = snprintf(gg->features + used, sizeof gg->features - used, "%s%s%s%s", used ? " " : "", f->name,
                         strcmp(f->value, "1") ? "=" : "", strcmp(f->value, "1") ? f->value : "");
        if (w < 0) break;
        used += (size_t)w;
        if (used >= sizeof gg->features) used = sizeof gg->features - 1;
    }
    // the wake graph: y = a + b on a few rows, split over every thread
    struct ggml_init_params wp = {.mem_size = 8 * ggml_tensor_overhead() + ggml_graph_overhead_custom(8, false),
                                  .no_alloc = true};
    if (!(gg->wake_ctx = ggml_init(wp))) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    struct ggml_tensor *a = ggml_new_tensor_2d(gg->wake_ctx, GGML_TYPE_F32, 64, 64);
    struct ggml_tensor *b = ggml_new_tensor_2d(gg->wake_ctx, GGML_TYPE_F32, 64, 64);
    struct ggml_tensor *y = ggml_add(gg->wake_ctx, a, b);
    gg->wake_gf = ggml_new_graph_custom(gg->wake_ctx, 8, false);
    ggml_build_forward_expand(gg->wake_gf, y);
    if (!(gg->wake_buf = ggml_backend_alloc_ctx_tensors_from_buft(gg->wake_ctx, ggml_backend_dev_buffer_type(gg->dev))))
        return mxp_fail(err, MXP_ERR_NOMEM, "ggml: out of memory");
    ggml_backend_buffer_clear(gg->wake_buf, 0);
    if (!no_extra) {
        ggml_backend_dev_get_extra_bufts_t ge =
            (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts");
        for (ggml_backend_buffer_type_t *bt = ge ? ge(gg->dev) : NULL; bt && *bt && gg->n_extra < 8; bt++)
            gg->extra[gg->n_extra++] = *bt;
    }
    return MXP_OK;
}

void mxp_ggml_free(mxp_ggml *gg) {
    if (!gg) return;
    if (gg->wake_buf) ggml_backend_buffer_free(gg->wake_buf);
    if (gg->wake_ctx) ggml_free(gg->wake_ctx);
    if (gg->be) ggml_backend_free(gg->be);
    if (gg->tp && gg->tp_free) gg->tp_free(gg->tp);
    memset(gg, 0, sizeof *gg);
}

void mxp_ggml_wake(mxp_ggml *gg) { ggml_backend_graph_compute(gg->be, gg->wake_gf); }

// ---- translation ----

typedef struct tr {
    mxp_ggml *gg;
    const mxp_exec *ex;
    const mxp_graph *g;
    mxp_ggml_sub *s;
    struct ggml_tensor **val;   // (n_nodes) ggml tensor of each node value used or made
    struct ggml_tensor *tokens, *pos, *mask;
    struct ggml_tensor **wt;    // (n_params) f32 parameter tensors (non-linear uses)
    // data to copy in once the buffers exist
    struct pending {
        struct ggml_tensor *t;
        const void *data;   // NULL: filled by a callback-free special case (kind)
        int kind;           // 0: copy data, 1: tokens, 2: positions, 3: mask, 4: K cache, 5: V cache,
                            // 9: parameter `node` widened to f32 (stored in bf16/f16)
        int node;
    } *pend;
    int n_pend, cap_pend;
    int B, Tq, pos0, Tk;
    unsigned flags;
    int cut;                    // nodes after it run on the output rows only (-1: all rows)
    struct ggml_tensor *out_ids;// (B) I32: the output rows, b*Tq + Tq-1
    struct ggml_tensor **sel;   // (n_nodes) get_rows(val[j], out_ids), made once per j
} tr;

static int push_pending(tr *t, struct ggml_tensor *x, const void *data, int kind, int node) {
    if (t->n_pend == t->cap_pend) {
        int nc = t->cap_pend ? 2 * t->cap_pend : 64;
        struct pending *p = realloc(t->pend, (size_t)nc * sizeof *p);
        if (!p) return 0;
        t->pend = p;
        t->cap_pend = nc;
    }
    t->pend[t->n_pend++] = (struct pending){x, data, kind, node};
    return 1;
}

// Is weight w (already typed and shaped) one the extra buffer type b would hold for a matrix
// product? llama.cpp's weight_buft_supported: a zero-size buffer of that type, the op built
// with a (I, 512) f32 input, and the device's supports_op.
static int extra_supports(mxp_ggml *gg, ggml_backend_buffer_type_t b, enum ggml_type type, int I, int O) {
    struct ggml_init_params ip = {.mem_size = 4 * ggml_tensor_overhead(), .no_alloc = true};
    struct ggml_context *c = ggml_init(ip);
    if (!c) return 0;
    ggml_backend_buffer_t buf = ggml_backend_buft_alloc_buffer(b, 0);
    int ok = 0;
    if (buf) {
        struct ggml_tensor *w = ggml_new_tensor_2d(c, type, I, O);
        struct ggml_tensor *x = ggml_new_tensor_2d(c, GGML_TYPE_F32, I, 512);
        w->buffer = buf;
        ok = ggml_backend_dev_supports_op(gg->dev, ggml_mul_mat(c, w, x));
        ggml_backend_buffer_free(buf);
    }
    ggml_free(c);
    return ok;
}

// The value of node j as a ggml tensor (cols, rows): made in this range, or an input. Nodes after
// the cut hold the output rows only; an input of such a node from before the cut is row-selected
// here (llama.cpp's get_rows(cur, inp_out_ids) and get_rows(inpSA, inp_out_ids)).
static struct ggml_tensor *value_for(tr *t, int j, int consumer) {
    if (!t->val[j]) {
        MXP_ASSERT(j < t->s->first);
        int sel = t->cut >= 0 && j > t->cut;  // the exec's value has every row: copy the output rows
        struct ggml_tensor *x = ggml_new_tensor_2d(t->s->ctx_in, GGML_TYPE_F32, t->g->nodes[j].cols,
                                                   sel ? (int64_t)t->B : (int64_t)t->B * t->Tq);
        if (!x || !push_pending(t, x, t->ex->val[j], sel ? 7 : 0, j)) return NULL;
        t->val[j] = x;
    }
    if (t->cut < 0 || consumer <= t->cut || j > t->cut) return t->val[j];
    if (!t->sel[j]) {
        if (!t->out_ids) {
            t->out_ids = ggml_new_tensor_1d(t->s->ctx_in, GGML_TYPE_I32, t->B);
            if (!t->out_ids || !push_pending(t, t->out_ids, NULL, 8, -1)) return NULL;
        }
        struct ggml_tensor *x = t->val[j];
        if (!ggml_is_contiguous(x)) x = ggml_cont(t->s->ctx_g, x);
        t->sel[j] = ggml_get_rows(t->s->ctx_g, x, t->out_ids);
    }
    return t->sel[j];
}

static struct ggml_tensor *param_f32(tr *t, int p) {
    if (t->wt[p]) return t->wt[p];
    const mxp_param *pr = &t->g->params[p];
    struct ggml_tensor *w = pr->ndim == 1 ? ggml_new_tensor_1d(t->s->ctx_w, GGML_TYPE_F32, pr->shape[0])
                                          : ggml_new_tensor_2d(t->s->ctx_w, GGML_TYPE_F32, pr->shape[1], pr->shape[0]);
    if (!w || !push_pending(t, w, pr->data, 0, -1)) return NULL;
    t->s->weight_bytes += ggml_nbytes(w);
    t->wt[p] = w;
    return w;
}

static struct ggml_tensor *positions(tr *t) {
    if (!t->pos) {
        t->pos = ggml_new_tensor_1d(t->s->ctx_in, GGML_TYPE_I32, (int64_t)t->B * t->Tq);
        if (!t->pos || !push_pending(t, t->pos, NULL, 2, -1)) return NULL;
    }
    return t->pos;
}

// Rows of a (cols, N) value seen as (D, H, N) / (D, H, Tq, B); works for views with a row stride.
static struct ggml_tensor *as3d(struct ggml_context *c, struct ggml_tensor *x, int D, int H) {
    return ggml_view_3d(c, x, D, H, x->ne[1], (size_t)D * x->nb[0], x->nb[1], 0);
}
static struct ggml_tensor *as4d(struct ggml_context *c, struct ggml_tensor *x, int D, int H, int Tq, int B) {
    return ggml_view_4d(c, x, D, H, Tq, B, (size_t)D * x->nb[0], x->nb[1], x->nb[1] * (size_t)Tq, 0);
}

// The bytes of node i's weight in the format its plan op gives it (a tied embedding reads the
// head's choice), from the qcache's real copies; f32 reads the parameter itself (data NULL when
// it is stored in bf16/f16: push_weight then widens it into the tensor).
static mxp_status weight_bytes(tr *t, int i, mxp_qcache *qc, const mxp_format **f, const void **data, mxp_err *err) {
    const mxp_node *nd = &t->g->nodes[i];
    mxp_format_id id = (mxp_format_id)mxp_graph_format(t->g, i);
    *f = mxp_format_get(id);
    if (!(*f)->has_ggml_type) {
        const int op = mxp_graph_op_of(t->g, i);
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "ggml backend: %s in %s: the format has no ggml type",
                        op >= 0 ? t->g->nodes[op].name : "?", (*f)->name);
    }
    *data = t->g->params[nd->w].data;  // NULL for a weight stored in bf16/f16
    if (id == MXP_FMT_F32) return MXP_OK;
    mxp_status st = mxp_qcache_prepare(qc, i, id, MXP_QMODE_REAL, err);
    if (st) return st;
    *data = mxp_qcache_real(qc, i, id);
    return MXP_OK;
}

// Fill weight tensor w of node i from data (weight_bytes), or widened from its parameter.
static int push_weight(tr *t, struct ggml_tensor *w, int i, const void *data) {
    return data ? push_pending(t, w, data, 0, -1) : push_pending(t, w, NULL, 9, t->g->nodes[i].w);
}

static mxp_status linear(tr *t, int i, mxp_qcache *qc, struct ggml_tensor **out, mxp_err *err) {
    const mxp_node *nd = &t->g->nodes[i];
    const mxp_param *pw = &t->g->params[nd->w];
    int O = nd->cols, I = (int)pw->shape[1];
    const mxp_format *f;
    const void *data;
    mxp_status st = weight_bytes(t, i, qc, &f, &data, err);
    if (st) return st;
    // where llama.cpp's loader puts it: the first extra buffer type whose supports_op accepts
    // the product, else the CPU buffer. Only the first extra type (CPU_REPACK) has a buffer here;
    // a weight another extra type would take stays on the CPU buffer.
    enum ggml_type type = (enum ggml_type)f->ggml_type;
    int in_extra = 0;
    for (int e = 0; e < t->gg->n_extra && !in_extra; e++)
        if (extra_supports(t->gg, t->gg->extra[e], type, I, O)) in_extra = e == 0 ? 1 : -1;
    struct ggml_tensor *w = ggml_new_tensor_2d(in_extra == 1 ? t->s->ctx_x : t->s->ctx_w, type, I, O);
    if (!w) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    if (!push_weight(t, w, i, data)) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    t->s->weight_bytes += ggml_nbytes(w);
    struct ggml_tensor *x = value_for(t, nd->in[0], i);
    if (!x) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    struct ggml_tensor *y = ggml_mul_mat(t->s->ctx_g, w, x);
    if (nd->has_b) {
        struct ggml_tensor *b = param_f32(t, nd->b);
        if (!b) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        y = ggml_add(t->s->ctx_g, y, b);
    }
    *out = y;
    return MXP_OK;
}

// The token embedding: get_rows on the table in its format (llama.cpp keeps token_embd in the
// CPU buffer, never repacked: get_rows reads the plain blocks).
static mxp_status embed(tr *t, int i, mxp_qcache *qc, struct ggml_tensor **out, mxp_err *err) {
    const mxp_node *nd = &t->g->nodes[i];
    const mxp_param *pw = &t->g->params[nd->w];
    const mxp_format *f;
    const void *data;
    mxp_status st = weight_bytes(t, i, qc, &f, &data, err);
    if (st) return st;
    struct ggml_tensor *w = ggml_new_tensor_2d(t->s->ctx_w, (enum ggml_type)f->ggml_type, pw->shape[1], pw->shape[0]);
    if (!w || !push_weight(t, w, i, data)) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    t->s->weight_bytes += ggml_nbytes(w);
    *out = ggml_get_rows(t->s->ctx_g, w, t->tokens);
    return *out ? MXP_OK : mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
}

// RoPE base and whether inv_freq is base^(-2i/D) for it; otherwise (llama3 scaling) rope_ext
// gets freq_factors: ggml divides each angle by freq_factors[i].
static int rope_plain(const mxp_node *nd, float *base) {
    int D = nd->head_dim, half = D / 2;
    *base = half > 1 ? powf(nd->inv_freq[1], -(float)D / 2.0f) : 10000.0f;
    for (int k = 0; k < half; k++) {
        float want = powf(*base, -2.0f * k / (float)D);
        if (fabsf(want - nd->inv_freq[k]) > 1e-5f * want) return 0;
    }
    return 1;
}

static mxp_status rope(tr *t, int i, struct ggml_tensor **out, mxp_err *err) {
    const mxp_node *nd = &t->g->nodes[i];
    int D = nd->head_dim, H = nd->heads;
    float base;
    struct ggml_tensor *ff = NULL;
    if (!rope_plain(nd, &base)) {
        ff = ggml_new_tensor_1d(t->s->ctx_w, GGML_TYPE_F32, D / 2);
        if (!ff || !push_pending(t, ff, NULL, 6, i)) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    struct ggml_tensor *x = value_for(t, nd->in[0], i), *p = positions(t);
    if (!x || !p) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    struct ggml_tensor *r = ggml_rope_ext(t->s->ctx_g, as3d(t->s->ctx_g, x, D, H), p, ff, D, GGML_ROPE_TYPE_NEOX, 0, base,
                                          1.0f, 0.0f, 1.0f, 32.0f, 1.0f);
    *out = ggml_reshape_2d(t->s->ctx_g, r, (int64_t)H * D, x->ne[1]);
    return MXP_OK;
}

static mxp_status attention(tr *t, int i, struct ggml_tensor **out, mxp_err *err) {
    const mxp_node *nd = &t->g->nodes[i];
    struct ggml_context *c = t->s->ctx_g;
    int D = nd->head_dim, H = nd->heads, Hkv = nd->kv_heads, B = t->B, Tq = t->Tq, Tk = t->Tk;
    struct ggml_tensor *q = value_for(t, nd->in[0], i), *k = value_for(t, nd->in[1], i), *v = value_for(t, nd->in[2], i);
    if (!q || !k || !v) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    enum ggml_type ct = t->flags & MXP_GGML_KV_F32 ? GGML_TYPE_F32 : GGML_TYPE_F16;
    // the cache: (D, Hkv, Tk, B), positions 0..pos0-1 from the exec, pos0.. written here
    struct ggml_tensor *kc = ggml_new_tensor_4d(t->s->ctx_in, ct, D, Hkv, Tk, B);
    struct ggml_tensor *vc = ggml_new_tensor_4d(t->s->ctx_in, ct, D, Hkv, Tk, B);
    if (!kc || !vc || !push_pending(t, kc, NULL, 4, i) || !push_pending(t, vc, NULL, 5, i))
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    if (!t->mask) {
        t->mask = ggml_new_tensor_2d(t->s->ctx_in, GGML_TYPE_F16, Tk, Tq);
        if (!t->mask || !push_pending(t, t->mask, NULL, 3, i)) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        t->s->mask_window = nd->window;
    }
    size_t off = (size_t)t->pos0 * kc->nb[2];
    struct ggml_tensor *kn = ggml_view_4d(c, kc, D, Hkv, Tq, B, kc->nb[1], kc->nb[2], kc->nb[3], off);
    struct ggml_tensor *vn = ggml_view_4d(c, vc, D, Hkv, Tq, B, vc->nb[1], vc->nb[2], vc->nb[3], off);
    ggml_build_forward_expand(t->s->gf, ggml_cpy(c, as4d(c, k, D, Hkv, Tq, B), kn));
    ggml_build_forward_expand(t->s->gf, ggml_cpy(c, as4d(c, v, D, Hkv, Tq, B), vn));
    struct ggml_tensor *K = ggml_permute(c, kc, 0, 2, 1, 3);  // (D, Tk, Hkv, B)
    struct ggml_tensor *V = ggml_permute(c, vc, 0, 2, 1, 3);
    struct ggml_tensor *Q = ggml_permute(c, as4d(c, q, D, H, Tq, B), 0, 2, 1, 3);  // (D, Tq, H, B)
    struct ggml_tensor *o = ggml_flash_attn_ext(c, Q, K, V, t->mask, 1.0f / sqrtf((float)D), 0.0f, 0.0f);
    ggml_flash_attn_ext_set_prec(o, GGML_PREC_F32);
    *out = ggml_reshape_2d(c, o, (int64_t)H * D, (int64_t)Tq * B);  // o: (D, H, Tq, B)
    return MXP_OK;
}

// Returns 0 when out of memory.
static int fill(tr *t, const struct pending *p) {
    struct ggml_tensor *x = p->t;
    const mxp_exec *ex = t->ex;
    int N = t->B * t->Tq;
    switch (p->kind) {
    case 0: ggml_backend_tensor_set(x, p->data, 0, ggml_nbytes(x)); break;
    case 9: {  // rows widened straight into a host buffer, else through one row at a time
        const mxp_param *w = &t->g->params[p->node];
        int64_t R = w->shape[0], C = w->shape[1];
        if (ggml_backend_buffer_is_host(x->buffer)) {
#pragma omp parallel for schedule(static)
            for (int64_t r = 0; r < R; r += 64)
                mxp_param_widen(w, r, R - r < 64 ? R - r : 64, 0, C, (float *)x->data + r * C, C);
            break;
        }
        float *row = malloc((size_t)C * sizeof *row);
        if (!row) return 0;
        for (int64_t r = 0; r < R; r++) {
            mxp_param_widen(w, r, 1, 0, C, row, C);
            ggml_backend_tensor_set(x, row, (size_t)r * C * sizeof(float), (size_t)C * sizeof(float));
        }
        free(row);
        break;
    }
    case 6: {
        const mxp_node *nd = &t->g->nodes[p->node];
        float base, *fac = (float *)x->data;
        rope_plain(nd, &base);
        for (int k = 0; k < nd->head_dim / 2; k++) fac[k] = powf(base, -2.0f * k / (float)nd->head_dim) / nd->inv_freq[k];
        break;
    }
    case 1: ggml_backend_tensor_set(x, ex->tokens, 0, (size_t)N * sizeof(int32_t)); break;
    case 2: {
        int32_t *pos = (int32_t *)x->data;
        for (int r = 0; r < N; r++) pos[r] = t->pos0 + r % t->Tq;
        break;
    }
    case 3: {
        const mxp_node *nd = &t->g->nodes[p->node];
        ggml_fp16_t *m = (ggml_fp16_t *)x->data;
        for (int q = 0; q < t->Tq; q++)
            for (int j = 0; j < t->Tk; j++) {
                int pq = t->pos0 + q, vis = j <= pq && (nd->window <= 0 || pq - j < nd->window);
                m[(size_t)q * t->Tk + j] = ggml_fp32_to_fp16(vis ? 0.0f : -INFINITY);
            }
        break;
    }
    case 4:
    case 5: {
        // positions before pos0 from the exec's cache (B, T, kv width); the rest zero
        memset(x->data, 0, ggml_nbytes(x));
        const float *src = p->kind == 4 ? (ex->kc ? ex->kc[p->node] : NULL) : (ex->vc ? ex->vc[p->node] : NULL);
        if (!src || !t->pos0) break;
        size_t kw = (size_t)(x->ne[0] * x->ne[1]);
        for (int b = 0; b < t->B; b++)
            for (int pp = 0; pp < t->pos0; pp++) {
                const float *row = src + ((size_t)b * ex->T + pp) * kw;
                char *dst = (char *)x->data + (size_t)b * x->nb[3] + (size_t)pp * x->nb[2];
                if (x->type == GGML_TYPE_F16) ggml_fp32_to_fp16_row(row, (ggml_fp16_t *)dst, (int64_t)kw);
                else memcpy(dst, row, kw * sizeof(float));
            }
        break;
    }
    case 7: {  // the output rows of an exec value
        size_t row = ggml_row_size(GGML_TYPE_F32, x->ne[0]);
        for (int b = 0; b < t->B; b++)
            memcpy((char *)x->data + (size_t)b * row, (const char *)p->data + ((size_t)b * t->Tq + t->Tq - 1) * row, row);
        break;
    }
    case 8: {
        int32_t *ids = (int32_t *)x->data;
        for (int b = 0; b < t->B; b++) ids[b] = b * t->Tq + t->Tq - 1;
        break;
    }
    default: MXP_ASSERT(0);
    }
    return 1;
}

int mxp_ggml_output_cut(const mxp_graph *g) {
    int att = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == MXP_OP_ATTENTION) att = i;
    for (int i = att + 1; att >= 0 && i < g->n_nodes; i++)
        if (g->nodes[i].op == MXP_OP_LINEAR && g->nodes[i].in[0] == att) return i;
    return -1;
}

static struct ggml_context *new_ctx(size_t n_tensors, size_t extra) {
    struct ggml_init_params ip = {.mem_size = n_tensors * ggml_tensor_overhead() + extra, .no_alloc = true};
    return ggml_init(ip);
}

mxp_status mxp_ggml_sub_init(mxp_ggml_sub *s, mxp_ggml *gg, const mxp_exec *ex, mxp_qcache *qc, int first, int last,
                             unsigned flags, mxp_err *err) {
    memset(s, 0, sizeof *s);
    const mxp_graph *g = ex->g;
    MXP_ASSERT(0 <= first && first < last && last <= g->n_nodes);
    s->first = first;
    s->last = last;
    s->be = gg->be;
    tr t = {.gg = gg, .ex = ex, .g = g, .s = s, .B = ex->B, .Tq = ex->Tq, .pos0 = ex->pos0, .flags = flags,
            .cut = flags & MXP_GGML_ALL_ROWS ? -1 : mxp_ggml_output_cut(g)};
    t.Tk = t.pos0 + t.Tq;
    mxp_status st = MXP_OK;
    size_t n_range = (size_t)(last - first);
    size_t graph_size = 16 * n_range + 64;
    t.val = calloc((size_t)g->n_nodes, sizeof *t.val);
    t.wt = calloc((size_t)g->n_params + 1, sizeof *t.wt);
    t.sel = calloc((size_t)g->n_nodes, sizeof *t.sel);
    s->ctx_w = new_ctx(4 * n_range + 8, 0);
    s->ctx_x = new_ctx(n_range + 8, 0);
    s->ctx_in = new_ctx((size_t)g->n_nodes + 3 * n_range + 8, 0);
    s->ctx_g = new_ctx(graph_size + 16, ggml_graph_overhead_custom(graph_size, false));
    if (!t.val || !t.wt || !t.sel || !s->ctx_w || !s->ctx_x || !s->ctx_in || !s->ctx_g) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        goto out;
    }
    s->gf = ggml_new_graph_custom(s->ctx_g, graph_size, false);
    struct ggml_context *c = s->ctx_g;
    for (int i = first; i < last && !st; i++) {
        const mxp_node *nd = &g->nodes[i];
        struct ggml_tensor *x = nd->n_in ? value_for(&t, nd->in[0], i) : NULL, *y = NULL;
        if (nd->n_in && !x) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            break;
        }
        switch (nd->op) {
        case MXP_OP_EMBED:
            if (!t.tokens) {
                t.tokens = ggml_new_tensor_1d(s->ctx_in, GGML_TYPE_I32, (int64_t)t.B * t.Tq);
                if (!t.tokens || !push_pending(&t, t.tokens, NULL, 1, -1)) break;
            }
            st = embed(&t, i, qc, &y, err);
            break;
        case MXP_OP_POSEMBED: {
            struct ggml_tensor *w = param_f32(&t, nd->w), *p = positions(&t);
            if (w && p) y = ggml_add(c, x, ggml_get_rows(c, w, p));
            break;
        }
        case MXP_OP_RMSNORM: {
            struct ggml_tensor *w = param_f32(&t, nd->w);
            if (w) y = ggml_mul(c, ggml_rms_norm(c, x, nd->eps), w);
            break;
        }
        case MXP_OP_LAYERNORM: {
            struct ggml_tensor *w = param_f32(&t, nd->w), *b = param_f32(&t, nd->b);
            if (w && b) y = ggml_add(c, ggml_mul(c, ggml_norm(c, x, nd->eps), w), b);
            break;
        }
        case MXP_OP_LINEAR: st = linear(&t, i, qc, &y, err); break;
        case MXP_OP_SLICE:
            y = ggml_view_2d(c, x, nd->cols, x->ne[1], x->nb[1], (size_t)nd->slice_off * x->nb[0]);
            break;
        case MXP_OP_ROPE: st = rope(&t, i, &y, err); break;
        case MXP_OP_ATTENTION: st = attention(&t, i, &y, err); break;
        case MXP_OP_SWIGLU: {
            struct ggml_tensor *u = value_for(&t, nd->in[1], i);
            if (u) y = ggml_swiglu_split(c, x, u);
            break;
        }
        case MXP_OP_GELU: y = ggml_gelu(c, x); break;
        case MXP_OP_ADD: {
            struct ggml_tensor *b = value_for(&t, nd->in[1], i);
            if (b) y = ggml_add(c, x, b);
            break;
        }
        case MXP_OP_COUNT: MXP_ASSERT(0);
        }
        if (!st && !y) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory translating node %d (%s)", i, mxp_op_name(nd->op));
        t.val[i] = y;
    }
    if (st) goto out;
    s->out = t.val[last - 1];
    s->rows = (int)s->out->ne[1];
    if (!ggml_is_contiguous(s->out)) s->out = ggml_cont(c, s->out);
    ggml_set_output(s->out);
    ggml_build_forward_expand(s->gf, s->out);
    // buffers: weights (CPU, extra), inputs; then the graph's intermediates
    ggml_backend_buffer_type_t cpu = ggml_backend_dev_buffer_type(gg->dev);
    if (ggml_get_first_tensor(s->ctx_w) && !(s->buf_w = ggml_backend_alloc_ctx_tensors_from_buft(s->ctx_w, cpu)))
        st = mxp_fail(err, MXP_ERR_NOMEM, "ggml: out of memory for the weights");
    if (!st && ggml_get_first_tensor(s->ctx_x) &&
        !(s->buf_x = ggml_backend_alloc_ctx_tensors_from_buft(s->ctx_x, gg->extra[0])))
        st = mxp_fail(err, MXP_ERR_NOMEM, "ggml: out of memory for the repacked weights");
    if (!st && ggml_get_first_tensor(s->ctx_in) && !(s->buf_in = ggml_backend_alloc_ctx_tensors_from_buft(s->ctx_in, cpu)))
        st = mxp_fail(err, MXP_ERR_NOMEM, "ggml: out of memory for the inputs");
    if (!st) {
        s->galloc = ggml_gallocr_new(cpu);
        if (!s->galloc || !ggml_gallocr_alloc_graph(s->galloc, s->gf))
            st = mxp_fail(err, MXP_ERR_NOMEM, "ggml: out of memory for the graph's activations");
    }
    if (!st) {
        s->inputs = calloc((size_t)t.n_pend + 1, sizeof *s->inputs);
        if (!s->inputs) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    int n_kv = 0;
    for (int k = 0; k < t.n_pend; k++) n_kv += t.pend[k].kind == 4 || t.pend[k].kind == 5;
    if (!st && n_kv && !(s->kv = calloc((size_t)n_kv, sizeof *s->kv))) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    for (int k = 0; k < t.n_pend && !st; k++) {
        if (!fill(&t, &t.pend[k])) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
            break;
        }
        if (t.pend[k].t->buffer == s->buf_in) s->inputs[s->n_inputs++] = t.pend[k].t;
        if (t.pend[k].kind == 4 || t.pend[k].kind == 5) s->kv[s->n_kv++] = t.pend[k].t;
    }
    s->tokens = t.tokens;
    s->pos = t.pos;
    s->mask = t.mask;
out:
    if (st) mxp_ggml_sub_free(s);
    free(t.pend);
    free(t.val);
    free(t.wt);
    free(t.sel);
    return st;
}

mxp_status mxp_ggml_sub_compute(mxp_ggml_sub *s, mxp_err *err) {
    enum ggml_status gs = ggml_backend_graph_compute(s->be, s->gf);
    if (gs != GGML_STATUS_SUCCESS)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "ggml: graph compute of nodes %d..%d failed (status %d)", s->first,
                        s->last - 1, (int)gs);
    return MXP_OK;
}

void mxp_ggml_sub_evict(const mxp_ggml_sub *s) {
    struct ggml_backend_buffer *wb[2] = {s->buf_w, s->buf_x};
    for (int k = 0; k < 2; k++)
        if (wb[k]) mxp_evict(ggml_backend_buffer_get_base(wb[k]), ggml_backend_buffer_get_size(wb[k]));
}

float mxp_ggml_sub_touch(const mxp_ggml_sub *s) {
    float acc = 0;
    for (int k = 0; k < s->n_inputs; k++) {
        const struct ggml_tensor *x = s->inputs[k];
        const unsigned char *p = x->data;
        size_t n = ggml_nbytes(x);
        for (size_t i = 0; i < n; i += 64) acc += p[i];
    }
    return acc;
}

void mxp_ggml_sub_output(const mxp_ggml_sub *s, float *y) { ggml_backend_tensor_get(s->out, y, 0, ggml_nbytes(s->out)); }

void mxp_ggml_sub_free(mxp_ggml_sub *s) {
    if (!s) return;
    if (s->galloc) ggml_gallocr_free(s->galloc);
    if (s->buf_w) ggml_backend_buffer_free(s->buf_w);
    if (s->buf_x) ggml_backend_buffer_free(s->buf_x);
    if (s->buf_in) ggml_backend_buffer_free(s->buf_in);
    if (s->ctx_w) ggml_free(s->ctx_w);
    if (s->ctx_x) ggml_free(s->ctx_x);
    if (s->ctx_in) ggml_free(s->ctx_in);
    if (s->ctx_g) ggml_free(s->ctx_g);
    free(s->inputs);
    free(s->kv);
    memset(s, 0, sizeof *s);
}

mxp_status mxp_ggml_sub_decode(mxp_ggml_sub *s, int32_t token, int p, mxp_err *err) {
    if (!s->tokens || !s->pos || !s->mask || s->tokens->ne[0] != 1 || s->rows != 1 || s->mask->ne[1] != 1)
        return mxp_fail(err, MXP_ERR_ARG, "ggml decode: the graph is not a one-token pass of the whole model");
    const int Tk = (int)s->mask->ne[0];
    if (p < 0 || p >= Tk) return mxp_fail(err, MXP_ERR_ARG, "ggml decode: position %d outside the cache (%d slots)", p, Tk);
    *(int32_t *)s->tokens->data = token;
    *(int32_t *)s->pos->data = p;
    ggml_fp16_t *m = (ggml_fp16_t *)s->mask->data;
    const ggml_fp16_t zero = ggml_fp32_to_fp16(0.0f), ninf = ggml_fp32_to_fp16(-INFINITY);
    for (int j = 0; j < Tk - 1; j++) m[j] = j < p && (s->mask_window <= 0 || p - j < s->mask_window) ? zero : ninf;
    m[Tk - 1] = zero;
    mxp_status st = mxp_ggml_sub_compute(s, err);
    if (st || p == Tk - 1) return st;
    for (int k = 0; k < s->n_kv; k++) {  // (D, Hkv, Tk, 1): slot Tk-1 -> slot p
        struct ggml_tensor *c = s->kv[k];
        memcpy((char *)c->data + (size_t)p * c->nb[2], (char *)c->data + (size_t)(Tk - 1) * c->nb[2], c->nb[2]);
    }
    return MXP_OK;
}

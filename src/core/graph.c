// graph.c: building, validating and querying the model graph, and the one accessor of
// parameter values (mxp_param_widen: bf16 and f16 weights widened to f32 with the format
// table's exact conversions, AVX2 where the CPU has it). No other kernels here.
#include "core/graph.h"

#include <string.h>

#include "quant/format.h"

static const char *const op_names[MXP_OP_COUNT] = {
    [MXP_OP_EMBED] = "embed",         [MXP_OP_POSEMBED] = "posembed", [MXP_OP_RMSNORM] = "rmsnorm",
    [MXP_OP_LAYERNORM] = "layernorm", [MXP_OP_LINEAR] = "linear",     [MXP_OP_SLICE] = "slice",
    [MXP_OP_ROPE] = "rope",           [MXP_OP_ATTENTION] = "attention", [MXP_OP_SWIGLU] = "swiglu",
    [MXP_OP_GELU] = "gelu",           [MXP_OP_ADD] = "add",
};

const char *mxp_op_name(mxp_op op) { return (op >= 0 && op < MXP_OP_COUNT) ? op_names[op] : "?"; }

// Grow *arr (of elem bytes) so that it holds at least need elements.
static mxp_status grow(void **arr, int *cap, int need, size_t elem, mxp_err *err) {
    if (need <= *cap) return MXP_OK;
    int ncap = *cap ? *cap * 2 : 16;
    while (ncap < need) ncap *= 2;
    size_t bytes;
    if (!mxp_mul_ok((size_t)ncap, elem, &bytes)) return mxp_fail(err, MXP_ERR_NOMEM, "graph too large");
    void *p = realloc(*arr, bytes);
    if (!p) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory growing the graph");
    *arr = p;
    *cap = ncap;
    return MXP_OK;
}

void mxp_graph_free(mxp_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) free(g->nodes[i].name);
    for (int i = 0; i < g->n_params; i++) free(g->params[i].name);
    for (int i = 0; i < g->n_owned; i++) free(g->owned[i]);
    free(g->nodes);
    free(g->params);
    free(g->owned);
    memset(g, 0, sizeof *g);
}

mxp_status mxp_graph_add_param(mxp_graph *g, const char *name, int ndim, const int64_t *shape,
                               const float *data, int file_transposed, int *index, mxp_err *err) {
    MXP_ASSERT(ndim == 1 || ndim == 2);
    mxp_status st = grow((void **)&g->params, &g->cap_params, g->n_params + 1, sizeof *g->params, err);
    if (st) return st;
    mxp_param *p = &g->params[g->n_params];
    memset(p, 0, sizeof *p);
    p->name = mxp_strdup(name);
    if (!p->name) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    p->ndim = ndim;
    p->nelem = 1;
    for (int d = 0; d < ndim; d++) {
        MXP_ASSERT(shape[d] > 0);
        p->shape[d] = shape[d];
        p->nelem *= (size_t)shape[d];
    }
    p->stored = MXP_FMT_F32;
    p->data = data;
    p->raw = data;
    p->file_transposed = file_transposed;
    *index = g->n_params++;
    return MXP_OK;
}

mxp_status mxp_graph_add_param_stored(mxp_graph *g, const char *name, const int64_t *shape, int stored,
                                      const void *raw, int row_heads, int file_transposed, int *index,
                                      mxp_err *err) {
    MXP_ASSERT(stored > MXP_FMT_F32 && stored < MXP_FMT_COUNT && raw && (uintptr_t)raw % 2 == 0);
    const mxp_format *f = mxp_format_get((mxp_format_id)stored);
    MXP_ASSERT(f->dequantize_row && !f->row_prefix_bytes && shape[1] % f->block_size == 0 &&
               f->block_size <= MXP_MAX_BLOCK);
    MXP_ASSERT(row_heads >= 0 && (!row_heads || (shape[0] % row_heads == 0 && (shape[0] / row_heads) % 2 == 0)));
    mxp_status st = mxp_graph_add_param(g, name, 2, shape, NULL, file_transposed, index, err);
    if (st) return st;
    mxp_param *p = &g->params[*index];
    p->stored = stored;
    p->raw = raw;
    p->row_heads = row_heads;
    return MXP_OK;
}

int64_t mxp_param_cols(const mxp_param *p) { return p->ndim == 2 ? p->shape[1] : p->shape[0]; }

size_t mxp_param_stored_bytes(const mxp_param *p) {
    if (p->stored == MXP_FMT_F32) return p->nelem * sizeof(float);
    return (size_t)p->shape[0] * mxp_row_bytes(mxp_format_get((mxp_format_id)p->stored), (int)p->shape[1]);
}

// The stored row holding compute row r.
static int64_t stored_row(const mxp_param *p, int64_t r) {
    if (!p->row_heads) return r;
    int64_t hd = p->shape[0] / p->row_heads, half = hd / 2, h = r / hd, w = r % hd;
    return h * hd + 2 * (w % half) + w / half;
}

void mxp_param_widen(const mxp_param *p, int64_t r0, int64_t nr, int64_t c0, int64_t nc, float *out, int64_t ld) {
    const int64_t cols = mxp_param_cols(p), rows = p->ndim == 2 ? p->shape[0] : 1;
    MXP_ASSERT(r0 >= 0 && nr >= 0 && r0 + nr <= rows && c0 >= 0 && nc >= 0 && c0 + nc <= cols && ld >= nc);
    if (p->stored == MXP_FMT_F32) {
        for (int64_t k = 0; k < nr; k++)
            memcpy(out + k * ld, p->data + (r0 + k) * cols + c0, (size_t)nc * sizeof(float));
        return;
    }
    const mxp_format *f = mxp_format_get((mxp_format_id)p->stored);
    const int64_t bs = f->block_size, bb = f->block_bytes, rb = (int64_t)mxp_row_bytes(f, (int)cols);
    // the whole blocks of [c0, c0 + nc) in one call; a block the range cuts through one buffer
    const int64_t lo = (c0 + bs - 1) / bs * bs, hi = (c0 + nc) / bs * bs;
    float blk[MXP_MAX_BLOCK];
    for (int64_t k = 0; k < nr; k++) {
        const uint8_t *row = (const uint8_t *)p->raw + stored_row(p, r0 + k) * rb;
        float *o = out + k * ld;
        if (!nc) break;
        if (c0 / bs == (c0 + nc - 1) / bs && (c0 % bs || nc < bs)) {  // within one block
            f->dequantize_row(row + c0 / bs * bb, blk, (int)bs);
            memcpy(o, blk + c0 % bs, (size_t)nc * sizeof(float));
            continue;
        }
        if (c0 < lo) {
            f->dequantize_row(row + (lo / bs - 1) * bb, blk, (int)bs);
            memcpy(o, blk + (bs - (lo - c0)), (size_t)(lo - c0) * sizeof(float));
        }
        if (hi > lo) f->dequantize_row(row + lo / bs * bb, o + (lo - c0), (int)(hi - lo));
        if (hi < c0 + nc) {
            f->dequantize_row(row + hi / bs * bb, blk, (int)bs);
            memcpy(o + (hi - c0), blk, (size_t)(c0 + nc - hi) * sizeof(float));
        }
    }
}

const float *mxp_param_rows(const mxp_param *p, int64_t r0, int64_t nr, float *buf) {
    const int64_t cols = mxp_param_cols(p);
    if (p->stored == MXP_FMT_F32) return p->data + r0 * cols;
    mxp_param_widen(p, r0, nr, 0, cols, buf, cols);
    return buf;
}

mxp_status mxp_graph_add_node(mxp_graph *g, const mxp_node *proto, int *index, mxp_err *err) {
    mxp_status st = grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes, err);
    if (st) return st;
    mxp_node *n = &g->nodes[g->n_nodes];
    *n = *proto;
    n->name = NULL;
    if (proto->name) {
        n->name = mxp_strdup(proto->name);
        if (!n->name) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    *index = g->n_nodes++;
    return MXP_OK;
}

mxp_status mxp_graph_own(mxp_graph *g, float *p, mxp_err *err) {
    mxp_status st = grow((void **)&g->owned, &g->cap_owned, g->n_owned + 1, sizeof *g->owned, err);
    if (st) {
        free(p);
        return st;
    }
    g->owned[g->n_owned++] = p;
    return MXP_OK;
}

int mxp_node_quantizable(const mxp_node *n) { return n->op == MXP_OP_LINEAR || n->op == MXP_OP_EMBED; }

int mxp_graph_op_of(const mxp_graph *g, int i) {
    if (!mxp_node_quantizable(&g->nodes[i])) return -1;
    int op = i;
    for (int j = i + 1; j < g->n_nodes; j++)
        if (mxp_node_quantizable(&g->nodes[j]) && g->nodes[j].w == g->nodes[i].w) op = j;
    return op;
}

int mxp_graph_is_op(const mxp_graph *g, int i) { return mxp_graph_op_of(g, i) == i; }

int mxp_graph_n_ops(const mxp_graph *g) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += mxp_graph_is_op(g, i);
    return n;
}

int mxp_graph_format(const mxp_graph *g, int i) {
    int op = mxp_graph_op_of(g, i);
    return op < 0 ? 0 : g->nodes[op].fmt;
}

int mxp_graph_tied_node(const mxp_graph *g, int i) {
    for (int j = 0; j < g->n_nodes; j++)
        if (j != i && mxp_node_quantizable(&g->nodes[j]) && g->nodes[j].w == g->nodes[i].w) return j;
    return -1;
}

int mxp_graph_find_op(const mxp_graph *g, const char *module, int *index) {
    for (int i = 0; i < g->n_nodes; i++)
        if (mxp_graph_is_op(g, i) && g->nodes[i].name && !strcmp(g->nodes[i].name, module)) {
            *index = i;
            return 1;
        }
    return 0;
}

double mxp_graph_macs(const mxp_graph *g, int B, int T) {
    double N = (double)B * T, macs = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        if (n->op == MXP_OP_LINEAR) {
            macs += N * (double)g->params[n->w].shape[0] * (double)g->params[n->w].shape[1];
        } else if (n->op == MXP_OP_ATTENTION) {
            // QK^T and PV over the causal half (T(T+1)/2 pairs per head and sequence)
            macs += 2.0 * B * n->heads * n->head_dim * (double)T * (T + 1) / 2.0;
        }
    }
    return macs;
}

// Shape rules per op; returns a message on violation.
static const char *check_node(const mxp_graph *g, int i) {
    const mxp_node *n = &g->nodes[i];
    static const int want_in[MXP_OP_COUNT] = {
        [MXP_OP_EMBED] = 0,  [MXP_OP_POSEMBED] = 1, [MXP_OP_RMSNORM] = 1, [MXP_OP_LAYERNORM] = 1,
        [MXP_OP_LINEAR] = 1, [MXP_OP_SLICE] = 1,    [MXP_OP_ROPE] = 1,    [MXP_OP_ATTENTION] = 3,
        [MXP_OP_SWIGLU] = 2, [MXP_OP_GELU] = 1,     [MXP_OP_ADD] = 2,
    };
    if (n->op < 0 || n->op >= MXP_OP_COUNT) return "unknown op";
    if (n->n_in != want_in[n->op]) return "wrong number of inputs";
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] < 0 || n->in[k] >= i) return "input is not an earlier node";
    if (n->cols <= 0) return "output width must be positive";
    if (n->has_w && (n->w < 0 || n->w >= g->n_params)) return "weight index out of range";
    if (n->has_b && (n->b < 0 || n->b >= g->n_params)) return "bias index out of range";
    int c0 = n->n_in ? g->nodes[n->in[0]].cols : 0;
    const mxp_param *w = n->has_w ? &g->params[n->w] : NULL;
    switch (n->op) {
    case MXP_OP_EMBED:
        if (!w || w->ndim != 2 || w->shape[1] != n->cols) return "embedding weight must be (vocab, cols)";
        if (!n->name) return "embedding has no module name";
        break;
    case MXP_OP_POSEMBED:
        if (!w || w->ndim != 2 || w->shape[1] != n->cols || c0 != n->cols) return "position table must be (positions, cols)";
        break;
    case MXP_OP_RMSNORM:
    case MXP_OP_LAYERNORM:
        if (!w || w->ndim != 1 || w->shape[0] != c0 || n->cols != c0) return "norm weight must match the input width";
        if (n->has_b && (g->params[n->b].ndim != 1 || g->params[n->b].shape[0] != c0)) return "norm bias must match the input width";
        break;
    case MXP_OP_LINEAR:
        if (!w || w->ndim != 2 || w->shape[1] != c0 || w->shape[0] != n->cols) return "linear weight must be (out, in)";
        if (n->has_b && (g->params[n->b].ndim != 1 || g->params[n->b].shape[0] != n->cols)) return "linear bias must be (out)";
        if (!n->name) return "linear op has no module name";
        break;
    case MXP_OP_SLICE:
        if (n->slice_off < 0 || n->slice_off + n->cols > c0) return "slice out of range";
        break;
    case MXP_OP_ROPE:
        if (n->cols != c0 || n->heads * n->head_dim != c0 || n->head_dim % 2 || !n->inv_freq) return "rope shape mismatch";
        break;
    case MXP_OP_ATTENTION:
        if (n->heads <= 0 || n->kv_heads <= 0 || n->heads % n->kv_heads) return "heads must be a multiple of kv heads";
        if (c0 != n->heads * n->head_dim || n->cols != c0) return "query width must be heads*head_dim";
        if (g->nodes[n->in[1]].cols != n->kv_heads * n->head_dim || g->nodes[n->in[2]].cols != n->kv_heads * n->head_dim)
            return "key/value width must be kv_heads*head_dim";
        break;
    case MXP_OP_SWIGLU:
    case MXP_OP_ADD:
        if (g->nodes[n->in[1]].cols != c0 || n->cols != c0) return "inputs must have equal widths";
        break;
    case MXP_OP_GELU:
        if (n->cols != c0) return "output width must equal input width";
        break;
    default: break;
    }
    return NULL;
}

mxp_status mxp_graph_validate(const mxp_graph *g, mxp_err *err) {
    if (g->n_nodes == 0) return mxp_fail(err, MXP_ERR_FORMAT, "graph is empty");
    for (int i = 0; i < g->n_nodes; i++) {
        const char *why = check_node(g, i);
        if (why)
            return mxp_fail(err, MXP_ERR_FORMAT, "graph node %d (%s%s%s): %s", i, mxp_op_name(g->nodes[i].op),
                            g->nodes[i].name ? " " : "", g->nodes[i].name ? g->nodes[i].name : "", why);
    }
    return MXP_OK;
}

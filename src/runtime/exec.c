// exec.c: forward and backward over the graph, one op at a time, with the f32 kernels of
// src/ops. The executor owns the activation, gradient and saved-statistics buffers; it
// never changes parameters. A weight stored in bf16/f16 (core/graph.h) is read in f32 a tile
// at a time: the f32 products widen tiles of it into `wtile` (ops/gemm.h: the same bits as an
// f32 copy would give), the f32 embedding widens the rows of the batch's tokens.
#include "runtime/exec.h"

#include <omp.h>
#include <string.h>
#include "ops/ops.h"
#include "quant/format.h"

static size_t aux_floats(const mxp_node *n, int B, int T, unsigned flags) {
    switch (n->op) {
    case MXP_OP_RMSNORM: return (size_t)B * T;
    case MXP_OP_LAYERNORM: return 2 * (size_t)B * T;
    case MXP_OP_ATTENTION: return (flags & MXP_EXEC_BACKWARD) ? (size_t)B * n->heads * (size_t)T * T : 0;
    default: return 0;
    }
}

// A buffer of n floats as the arena lays it out: whole 64-byte lines, the alignment of a
// buffer of its own (mxp_aligned_alloc), so a value sits at the same alignment either way.
static size_t padded_floats(size_t n) { return (n + 15) / 16 * 16; }

// Streaming layout (mxp_exec_init_stream): the arena offsets of the values (val_off) and saved
// statistics (aux_off) of every node but the kept cuts, each segment's from 0; returns the
// arena's size in floats (the largest segment's). val_off/aux_off may be NULL (sizes only).
// Sizes are products of ints, so they do not overflow size_t.
static size_t arena_layout(const mxp_graph *g, int B, int T, unsigned flags, const int *seg, int n_seg,
                           size_t *val_off, size_t *aux_off) {
    size_t most = 0;
    for (int k = 0; k < n_seg; k++) {
        size_t at = 0;
        for (int i = seg[k]; i < seg[k + 1]; i++) {
            if (k < n_seg - 1 && i == seg[k + 1] - 1) continue;  // a kept cut: its own buffer
            if (val_off) val_off[i] = at;
            at += padded_floats((size_t)B * T * (size_t)g->nodes[i].cols);
            size_t na = aux_floats(&g->nodes[i], B, T, flags);
            if (aux_off) aux_off[i] = at;
            at += padded_floats(na);
        }
        if (at > most) most = at;
    }
    return most;
}

// Streaming: node i is the cut ending its segment and another segment reads it (not the output).
static int is_kept_cut(const mxp_exec *ex, int i) {
    int k = ex->seg_of[i];
    return k < ex->n_seg - 1 && i == ex->seg[k + 1] - 1;
}

void mxp_exec_free(mxp_exec *ex) {
    if (!ex || !ex->g) return;
    for (int i = 0; i < ex->g->n_nodes; i++) {
        int shared = ex->arena && !is_kept_cut(ex, i);  // in the arena
        if (ex->val && !shared) free(ex->val[i]);
        if (ex->grad) free(ex->grad[i]);
        if (ex->aux && !shared) free(ex->aux[i]);
    }
    for (int i = 0; i < ex->g->n_nodes; i++) {
        if (ex->kc) free(ex->kc[i]);
        if (ex->vc) free(ex->vc[i]);
    }
    free(ex->kc);
    free(ex->vc);
    free(ex->xq);
    mxp_quant_scratch_free(&ex->qs);
    for (int k = 0; k < ex->n_pool; k++) free(ex->pool[k]);
    free(ex->pool);
    free(ex->pool_cols);
    if (ex->pgrad)
        for (int p = 0; p < ex->g->n_params; p++) free(ex->pgrad[p]);
    free(ex->val);
    free(ex->grad);
    free(ex->aux);
    free(ex->pgrad);
    free(ex->tokens);
    free(ex->targets);
    free(ex->losses);
    free(ex->row_scale);
    free(ex->wscratch);
    free(ex->wtile);
    free(ex->att_scratch);
    free(ex->arena);
    free(ex->seg);
    free(ex->seg_of);
    free(ex->refwd);
    memset(ex, 0, sizeof *ex);
}

static float *alloc_floats(size_t n) {
    size_t bytes;
    if (!mxp_mul_ok(n, sizeof(float), &bytes)) return NULL;
    return mxp_aligned_alloc(bytes);
}

// ---- gradient buffer pool ----

static int pool_push(mxp_exec *ex, float *buf, int cols) {
    if (ex->n_pool == ex->cap_pool) {
        int ncap = ex->cap_pool ? 2 * ex->cap_pool : 32;
        float **p = realloc(ex->pool, (size_t)ncap * sizeof *p);
        if (!p) return 0;
        ex->pool = p;
        int *c = realloc(ex->pool_cols, (size_t)ncap * sizeof *c);
        if (!c) return 0;
        ex->pool_cols = c;
        ex->cap_pool = ncap;
    }
    ex->pool[ex->n_pool] = buf;
    ex->pool_cols[ex->n_pool++] = cols;
    return 1;
}

float *mxp_exec_grad(mxp_exec *ex, int node) {
    MXP_ASSERT(ex->grad && node >= 0 && node < ex->g->n_nodes);
    if (ex->grad[node]) return ex->grad[node];
    int cols = ex->g->nodes[node].cols;
    size_t cells = (size_t)ex->N * (size_t)cols;
    float *buf = NULL;
    for (int k = ex->n_pool - 1; k >= 0 && !buf; k--)
        if (ex->pool_cols[k] == cols) {
            buf = ex->pool[k];
            ex->pool[k] = ex->pool[ex->n_pool - 1];
            ex->pool_cols[k] = ex->pool_cols[ex->n_pool - 1];
            ex->n_pool--;
        }
    if (buf) {
        memset(buf, 0, cells * sizeof(float));
    } else {
        // the pool was sized at init for a full backward; only unusual sub-range use gets here
        buf = alloc_floats(cells);
        if (!buf) return NULL;
    }
    ex->grad[node] = buf;
    return buf;
}

static void release_grad(mxp_exec *ex, int node) {
    float *buf = ex->grad[node];
    if (!buf) return;
    ex->grad[node] = NULL;
    if (!pool_push(ex, buf, ex->g->nodes[node].cols)) free(buf);
}

// How many gradient buffers of each width a full backward holds alive at once: widths[0 .. *nw)
// and peak[] of them (each array n_nodes long). The peak of a range's backward is no larger,
// so the streaming pass (one segment's backward at a time) needs no more.
static void pool_peaks(const mxp_graph *g, char *live, int *now, int *widths, int *peak, int *nw_out) {
    int n = g->n_nodes, nw = 0;
    // rank of a width in widths[]
#define WIDTH_RANK(c, r)                                  \
    do {                                                  \
        r = -1;                                           \
        for (int w_ = 0; w_ < nw; w_++)                   \
            if (widths[w_] == (c)) r = w_;                \
        if (r < 0) { r = nw; widths[nw++] = (c); }        \
    } while (0)
    for (int i = n - 1; i >= 0; i--) {
        int r;
        if (i == n - 1) {
            live[i] = 1;
            WIDTH_RANK(g->nodes[i].cols, r);
            if (++now[r] > peak[r]) peak[r] = now[r];
        }
        if (!live[i]) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int j = g->nodes[i].in[k];
            if (live[j]) continue;
            live[j] = 1;
            WIDTH_RANK(g->nodes[j].cols, r);
            if (++now[r] > peak[r]) peak[r] = now[r];
        }
        live[i] = 0;
        WIDTH_RANK(g->nodes[i].cols, r);
        now[r]--;
    }
#undef WIDTH_RANK
    *nw_out = nw;
}

// Floats of the gradient pool of a full backward over (B*T)-row values; 0 if out of memory.
static size_t pool_floats(const mxp_graph *g, size_t N, int *widths_out, int *peak_out, int *nw_out) {
    int n = g->n_nodes;
    char *live = calloc((size_t)n, 1);
    int *now = calloc((size_t)n, sizeof *now), *peak = calloc((size_t)n, sizeof *peak);  // by width rank
    int *widths = calloc((size_t)n, sizeof *widths), nw = 0;
    size_t total = 0;
    if (live && now && peak && widths) {
        pool_peaks(g, live, now, widths, peak, &nw);
        for (int w = 0; w < nw; w++) total += (size_t)peak[w] * padded_floats(N * (size_t)widths[w]);
        if (widths_out) {
            memcpy(widths_out, widths, (size_t)nw * sizeof *widths);
            memcpy(peak_out, peak, (size_t)nw * sizeof *peak);
            *nw_out = nw;
        }
    }
    free(live);
    free(now);
    free(peak);
    free(widths);
    return total;
}

// Fill the pool with as many buffers of each width as a full backward holds alive at once.
static int prefill_pool(mxp_exec *ex) {
    const mxp_graph *g = ex->g;
    int *widths = calloc((size_t)g->n_nodes, sizeof *widths), *peak = calloc((size_t)g->n_nodes, sizeof *peak), nw = 0;
    int ok = widths && peak && pool_floats(g, (size_t)ex->N, widths, peak, &nw) > 0;
    for (int w = 0; ok && w < nw; w++)
        for (int k = 0; ok && k < peak[w]; k++) {
            float *buf = alloc_floats((size_t)ex->N * (size_t)widths[w]);
            ok = buf && pool_push(ex, buf, widths[w]);
            if (buf && !ok) free(buf);
        }
    free(widths);
    free(peak);
    return ok;
}

// Segment boundaries of a cut list (mxp_exec_init_stream): seg (n_cuts + 1) gets the first
// node of each segment and n_nodes. Asserts what partition.h guarantees: ascending cuts ending
// at the output, and no node reading past the cut before its segment.
static void segments_of(const mxp_graph *g, const int *cuts, int n_cuts, int *seg) {
    MXP_ASSERT(n_cuts >= 1 && cuts[n_cuts - 1] == g->n_nodes - 1);
    seg[0] = 0;
    for (int k = 0; k < n_cuts; k++) {
        MXP_ASSERT(cuts[k] >= seg[k]);
        seg[k + 1] = cuts[k] + 1;
        for (int i = seg[k]; i < seg[k + 1]; i++)
            for (int q = 0; q < g->nodes[i].n_in; q++) MXP_ASSERT(g->nodes[i].in[q] >= seg[k] - 1);
    }
}

// Whether node n's backward (mxp_exec_backward) reads the value of its input k: the norms,
// GELU and a linear op (its input: the weight gradient, the hook) read in[0], attention and
// SwiGLU every input; EMBED, POSEMBED, SLICE, ROPE and ADD only pass gradients on.
static int bwd_reads_input(const mxp_node *n, int k) {
    switch (n->op) {
    case MXP_OP_RMSNORM:
    case MXP_OP_LAYERNORM:
    case MXP_OP_GELU:
    case MXP_OP_LINEAR: return k == 0;
    case MXP_OP_ATTENTION:
    case MXP_OP_SWIGLU: return 1;
    default: return 0;
    }
}

// Streaming: refwd[i] = 1 for the nodes a segment's forward must run again before its backward
// (mxp_exec_pass): those whose value a backward in the segment reads (bwd_reads_input; no
// backward reads its own output), those with saved statistics (norms, attention), and the
// inputs of any of these within the segment; never the kept cut ending a segment (its value and
// statistics have buffers of their own). The rest keep whatever the arena holds: in a
// transformer block the output projections (attention's and the MLP's, read only by the
// residual add) and the adds themselves, whose backwards read no value. With
// MXP_EXEC_LINEAR_OUT every linear op as well (the hook reads its output). A node's consumers
// come after it, so one pass from the segment's end settles each node before its inputs.
static void refwd_mask(const mxp_graph *g, const int *seg, int n_seg, unsigned flags, char *refwd) {
    memset(refwd, 0, (size_t)g->n_nodes);
    for (int k = 0; k < n_seg; k++)
        for (int i = seg[k + 1] - 1; i >= seg[k]; i--) {
            const mxp_node *n = &g->nodes[i];
            int kept = k < n_seg - 1 && i == seg[k + 1] - 1;  // its value and statistics stay
            if (!kept && (n->op == MXP_OP_RMSNORM || n->op == MXP_OP_LAYERNORM || n->op == MXP_OP_ATTENTION ||
                          (n->op == MXP_OP_LINEAR && (flags & MXP_EXEC_LINEAR_OUT))))
                refwd[i] = 1;
            for (int q = 0; q < n->n_in; q++)
                if (n->in[q] >= seg[k] && (refwd[i] || bwd_reads_input(n, q))) refwd[n->in[q]] = 1;
        }
}

static mxp_status init(mxp_exec *ex, const mxp_graph *g, int B, int T, unsigned flags, const int *cuts, int n_cuts,
                       mxp_err *err);

mxp_status mxp_exec_init(mxp_exec *ex, const mxp_graph *g, int B, int T, unsigned flags, mxp_err *err) {
    return init(ex, g, B, T, flags, NULL, 0, err);
}

mxp_status mxp_exec_init_stream(mxp_exec *ex, const mxp_graph *g, int B, int T, unsigned flags, const int *cuts,
                                int n_cuts, mxp_err *err) {
    MXP_ASSERT(cuts && !(flags & MXP_EXEC_KV_CACHE));
    return init(ex, g, B, T, flags, cuts, n_cuts, err);
}

size_t mxp_exec_bytes(const mxp_graph *g, int B, int T, unsigned flags, const int *cuts, int n_cuts) {
    if (flags & (MXP_EXEC_PARAM_GRADS | MXP_EXEC_WGRAD_SCRATCH)) flags |= MXP_EXEC_BACKWARD;
    const size_t N = (size_t)B * T;
    size_t floats = 4 * padded_floats(N);  // tokens, targets, losses, row_scale
    if (cuts) {
        int *seg = malloc((size_t)(n_cuts + 1) * sizeof *seg);
        if (!seg) return SIZE_MAX;
        segments_of(g, cuts, n_cuts, seg);
        floats += arena_layout(g, B, T, flags, seg, n_cuts, NULL, NULL);
        for (int k = 0; k < n_cuts - 1; k++) floats += padded_floats(N * (size_t)g->nodes[seg[k + 1] - 1].cols);
        free(seg);
    } else {
        for (int i = 0; i < g->n_nodes; i++)
            floats += padded_floats(N * (size_t)g->nodes[i].cols) + padded_floats(aux_floats(&g->nodes[i], B, T, flags));
    }
    if (flags & MXP_EXEC_BACKWARD) floats += pool_floats(g, N, NULL, NULL, NULL);
    size_t att = 0, wtile = 0, biggest = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        if (n->op == MXP_OP_ATTENTION && (size_t)B * n->heads > att) att = (size_t)B * n->heads;
        if (n->op != MXP_OP_LINEAR) continue;
        size_t need = mxp_linear_scratch_floats(&g->params[n->w], (int)N);
        if (need > wtile) wtile = need;
        if (g->params[n->w].nelem > biggest) biggest = g->params[n->w].nelem;
    }
    if (att > (size_t)omp_get_max_threads()) att = (size_t)omp_get_max_threads();
    floats += att * (size_t)T * T + wtile;
    if (flags & MXP_EXEC_WGRAD_SCRATCH) floats += biggest;
    if (flags & MXP_EXEC_PARAM_GRADS)
        for (int p = 0; p < g->n_params; p++) floats += g->params[p].nelem;
    return floats > SIZE_MAX / sizeof(float) ? SIZE_MAX : floats * sizeof(float);
}

static mxp_status init(mxp_exec *ex, const mxp_graph *g, int B, int T, unsigned flags, const int *cuts, int n_cuts,
                       mxp_err *err) {
    memset(ex, 0, sizeof *ex);
    if (B <= 0 || T <= 0 || (size_t)B * (size_t)T > (size_t)1 << 30)
        return mxp_fail(err, MXP_ERR_ARG, "batch %d x sequence %d is not a valid size", B, T);
    if (g->max_pos > 0 && T > g->max_pos)
        return mxp_fail(err, MXP_ERR_ARG, "sequence length %d exceeds the model's maximum of %d positions", T,
                        g->max_pos);
    if (flags & (MXP_EXEC_PARAM_GRADS | MXP_EXEC_WGRAD_SCRATCH)) flags |= MXP_EXEC_BACKWARD;
    ex->g = g;
    ex->B = B;
    ex->T = T;
    ex->N = B * T;
    ex->Tq = T;
    ex->flags = flags;
    if ((flags & MXP_EXEC_KV_CACHE) && (flags & MXP_EXEC_BACKWARD))
        return mxp_fail(err, MXP_ERR_ARG, "the KV cache is for inference only (no backward)");
    size_t nn = (size_t)g->n_nodes;
    ex->val = calloc(nn, sizeof *ex->val);
    ex->aux = calloc(nn, sizeof *ex->aux);
    ex->tokens = calloc((size_t)ex->N, sizeof *ex->tokens);
    ex->targets = calloc((size_t)ex->N, sizeof *ex->targets);
    ex->losses = alloc_floats((size_t)ex->N);
    ex->row_scale = alloc_floats((size_t)ex->N);
    int ok = ex->val && ex->aux && ex->tokens && ex->targets && ex->losses && ex->row_scale;
    if (ok && (flags & MXP_EXEC_BACKWARD)) ok = (ex->grad = calloc(nn, sizeof *ex->grad)) != NULL;
    if (ok && (flags & MXP_EXEC_PARAM_GRADS)) ok = (ex->pgrad = calloc((size_t)g->n_params, sizeof *ex->pgrad)) != NULL;
    size_t *val_off = NULL, *aux_off = NULL;
    if (ok && cuts) {  // streaming: the segments, and the arena they share
        ex->n_seg = n_cuts;
        ok = (ex->seg = malloc((size_t)(n_cuts + 1) * sizeof *ex->seg)) &&
             (ex->seg_of = malloc(nn * sizeof *ex->seg_of)) && (ex->refwd = malloc(nn)) &&
             (val_off = malloc(nn * sizeof *val_off)) && (aux_off = malloc(nn * sizeof *aux_off));
        if (ok) {
            segments_of(g, cuts, n_cuts, ex->seg);
            refwd_mask(g, ex->seg, n_cuts, flags, ex->refwd);
            for (int k = 0; k < n_cuts; k++)
                for (int i = ex->seg[k]; i < ex->seg[k + 1]; i++) ex->seg_of[i] = k;
            ex->arena_floats = arena_layout(g, B, T, flags, ex->seg, n_cuts, val_off, aux_off);
            ok = (ex->arena = alloc_floats(ex->arena_floats)) != NULL;
        }
    }
    for (int i = 0; ok && i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        size_t na = aux_floats(n, B, T, flags);
        if (ex->arena && !is_kept_cut(ex, i)) {
            ex->val[i] = ex->arena + val_off[i];
            ex->aux[i] = na ? ex->arena + aux_off[i] : NULL;
            continue;
        }
        size_t cells;
        ok = mxp_mul_ok((size_t)ex->N, (size_t)n->cols, &cells);
        if (ok) ok = (ex->val[i] = alloc_floats(cells)) != NULL;
        if (ok && na) ok = (ex->aux[i] = alloc_floats(na)) != NULL;
    }
    free(val_off);
    free(aux_off);
    if (ok && ex->grad) ok = prefill_pool(ex);
    if (ok && (flags & MXP_EXEC_KV_CACHE)) {
        ok = (ex->kc = calloc(nn, sizeof *ex->kc)) && (ex->vc = calloc(nn, sizeof *ex->vc));
        for (int i = 0; ok && i < g->n_nodes; i++) {
            const mxp_node *n = &g->nodes[i];
            if (n->op != MXP_OP_ATTENTION) continue;
            size_t cells = (size_t)ex->N * (size_t)(n->kv_heads * n->head_dim);
            ok = (ex->kc[i] = alloc_floats(cells)) && (ex->vc[i] = alloc_floats(cells));
        }
    }
    // attention work space: the scores of one head (no saved probabilities) or its dP / dS
    // (backward), one (T, T) matrix per thread, as many threads as there are heads to share
    int max_tasks = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == MXP_OP_ATTENTION && B * g->nodes[i].heads > max_tasks) max_tasks = B * g->nodes[i].heads;
    if (ok && max_tasks) {
        int slots = omp_get_max_threads();
        if (slots > max_tasks) slots = max_tasks;
        size_t cells;
        ok = mxp_mul_ok((size_t)T * (size_t)T, (size_t)slots, &cells) && (ex->att_scratch = alloc_floats(cells));
        ex->att_slots = slots;
    }
    if (ok && (flags & MXP_EXEC_WGRAD_SCRATCH)) {
        size_t biggest = 1;
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == MXP_OP_LINEAR && g->params[g->nodes[i].w].nelem > biggest)
                biggest = g->params[g->nodes[i].w].nelem;
        ok = (ex->wscratch = alloc_floats(biggest)) != NULL;
    }
    // tiles of the weights stored in bf16/f16, widened for the f32 products (0 for f32 models)
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != MXP_OP_LINEAR) continue;
        size_t need = mxp_linear_scratch_floats(&g->params[g->nodes[i].w], ex->N);
        if (need > ex->wtile_floats) ex->wtile_floats = need;
    }
    if (ok && ex->wtile_floats) ok = (ex->wtile = alloc_floats(ex->wtile_floats)) != NULL;
    for (int p = 0; ok && ex->pgrad && p < g->n_params; p++) ok = (ex->pgrad[p] = alloc_floats(g->params[p].nelem)) != NULL;
    if (!ok) {
        mxp_exec_free(ex);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory allocating the executor for %d x %d tokens", B, T);
    }
    return MXP_OK;
}

mxp_status mxp_exec_use_formats(mxp_exec *ex, mxp_qcache *qc, mxp_qmode mode, mxp_err *err) {
    const mxp_graph *g = ex->g;
    int widest = 0;
    size_t scratch = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const mxp_node *n = &g->nodes[i];
        int fmt = mxp_graph_format(g, i);
        MXP_ASSERT(fmt >= MXP_FMT_F32 && fmt < MXP_FMT_COUNT);
        if (n->op == MXP_OP_EMBED && fmt != MXP_FMT_F32) {
            // the embedding reads dequantized rows of the quantized table in both modes: rows
            // are quantized independently, so this is dequantize(quantize(row)), llama.cpp's get_rows
            mxp_status st = mxp_qcache_prepare(qc, i, (mxp_format_id)fmt, MXP_QMODE_REAL, err);
            if (st) return st;
        }
        if (n->op != MXP_OP_LINEAR) continue;
        int I = g->nodes[n->in[0]].cols;
        if (I > widest) widest = I;
        // buffers sized for any format, so callers may change slots to prepared copies later
        for (int f = 1; f < MXP_FMT_COUNT; f++) {
            size_t bytes;
            if (mxp_format_matrix_bytes((mxp_format_id)f, n->cols, I, &bytes, NULL)) continue;
            size_t sb = mxp_matmul_scratch_bytes((mxp_format_id)f, ex->N, I, n->cols);
            if (sb > scratch) scratch = sb;
        }
        if (fmt == MXP_FMT_F32) continue;
        mxp_status st = mxp_qcache_prepare(qc, i, (mxp_format_id)fmt, mode, err);
        if (st) return st;
    }
    if (mode == MXP_QMODE_FAKE && !ex->xq && widest && !(ex->xq = alloc_floats((size_t)ex->N * (size_t)widest)))
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    if (mode == MXP_QMODE_REAL) {
        mxp_status st = mxp_quant_scratch_reserve(&ex->qs, scratch, err);
        if (st) return st;
    }
    ex->qc = qc;
    ex->qmode = mode;
    return MXP_OK;
}

// y (N, O) = x (N, I) W^T + b for linear node i, in the node's format.
static void linear_forward(mxp_exec *ex, int i, float *out, const float *x, int N, int I) {
    const mxp_node *n = &ex->g->nodes[i];
    const float *b = n->has_b ? ex->g->params[n->b].data : NULL;
    mxp_format_id f = (mxp_format_id)mxp_graph_format(ex->g, i);
    if (f == MXP_FMT_F32 || !ex->qc) {
        // a weight stored in bf16/f16 that the qcache holds an f32 copy of (the native profiler
        // times f32 on one), else the parameter, tile by tile
        const float *w32 = ex->qc && ex->qmode == MXP_QMODE_REAL ? mxp_qcache_f32(ex->qc, i) : NULL;
        if (w32) mxp_linear_fwd(out, x, w32, b, N, I, n->cols);
        else mxp_linear_fwd_w(out, x, &ex->g->params[n->w], b, N, I, n->cols, ex->wtile, ex->wtile_floats);
        return;
    }
    if (ex->qmode == MXP_QMODE_FAKE) {
        const mxp_format *ft = mxp_format_get(f);
        const float *xa = x;
        if (ft->act != MXP_ACT_F32) {
#pragma omp parallel for schedule(static)
            for (int r = 0; r < N; r++) mxp_fake_quant_act_row(ft, x + (size_t)r * I, ex->xq + (size_t)r * I, I);
            xa = ex->xq;
        }
        mxp_linear_fwd(out, xa, mxp_qcache_fake(ex->qc, i, f), b, N, I, n->cols);
        return;
    }
    mxp_matmul(out, f, mxp_qcache_real(ex->qc, i, f), x, N, I, n->cols, &ex->qs);
    if (b)
        for (int r = 0; r < N; r++) mxp_acc(out + (size_t)r * n->cols, b, n->cols);
}

// Rows of embedding node i for the pass's N tokens, in the node's format.
static void embed_forward(mxp_exec *ex, int i, float *out, int N) {
    const mxp_node *n = &ex->g->nodes[i];
    mxp_format_id f = (mxp_format_id)mxp_graph_format(ex->g, i);
    if (f == MXP_FMT_F32 || !ex->qc) {
        const mxp_param *w = &ex->g->params[n->w];
        if (w->stored == MXP_FMT_F32) {
            mxp_embed_fwd(out, ex->tokens, w->data, N, n->cols);
            return;
        }
#pragma omp parallel for schedule(static) if ((int64_t)N * n->cols >= MXP_PAR_MIN)
        for (int r = 0; r < N; r++) mxp_param_widen(w, ex->tokens[r], 1, 0, n->cols, out + (size_t)r * n->cols, n->cols);
        return;
    }
    const mxp_format *ft = mxp_format_get(f);
    const uint8_t *q = mxp_qcache_real(ex->qc, i, f);
    size_t rb = mxp_row_bytes(ft, n->cols);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) ft->dequantize_row(q + (size_t)ex->tokens[r] * rb, out + (size_t)r * n->cols, n->cols);
}

void mxp_exec_reset_cache(mxp_exec *ex) { ex->cached = 0; }

mxp_status mxp_exec_step(mxp_exec *ex, const int32_t *tokens, int n, mxp_err *err) {
    MXP_ASSERT(ex->kc);
    if (n < 1 || ex->cached + n > ex->T)
        return mxp_fail(err, MXP_ERR_ARG, "KV cache holds %d positions: cannot add %d to the %d already there", ex->T, n,
                        ex->cached);
    for (int b = 0; b < ex->B; b++)
        for (int t = 0; t < n; t++) {
            int32_t id = tokens[(size_t)b * n + t];
            if (id < 0 || id >= ex->g->vocab)
                return mxp_fail(err, MXP_ERR_ARG, "token id %d is outside the vocabulary [0, %d)", id, ex->g->vocab);
            ex->tokens[b * n + t] = id;
        }
    ex->Tq = n;
    ex->pos0 = ex->cached;
    mxp_exec_forward(ex, 0, ex->g->n_nodes);
    ex->cached += n;
    return MXP_OK;
}

// Attention of the current pass; with a KV cache, append this pass's keys and values first.
static void attention_forward(mxp_exec *ex, int i, float *out, const float *q) {
    const mxp_node *n = &ex->g->nodes[i];
    const float *k = ex->val[n->in[1]], *v = ex->val[n->in[2]];
    const int B = ex->B, Tq = ex->Tq, H = n->heads, Hkv = n->kv_heads, D = n->head_dim;
    if (!ex->kc) {
        mxp_attention_fwd(out, ex->aux[i], ex->att_scratch, ex->att_slots, q, k, v, B, Tq, Tq, H, Hkv, D, n->window);
        return;
    }
    size_t kw = (size_t)Hkv * D, qw = (size_t)H * D;
    for (int b = 0; b < B; b++) {
        float *kc = ex->kc[i] + (size_t)b * ex->T * kw, *vc = ex->vc[i] + (size_t)b * ex->T * kw;
        memcpy(kc + (size_t)ex->pos0 * kw, k + (size_t)b * Tq * kw, (size_t)Tq * kw * sizeof(float));
        memcpy(vc + (size_t)ex->pos0 * kw, v + (size_t)b * Tq * kw, (size_t)Tq * kw * sizeof(float));
        mxp_attention_fwd(out + (size_t)b * Tq * qw, NULL, ex->att_scratch, ex->att_slots, q + (size_t)b * Tq * qw, kc,
                          vc, 1, Tq, ex->pos0 + Tq, H, Hkv, D, n->window);
    }
}

mxp_status mxp_exec_set_batch(mxp_exec *ex, const int32_t *seq, mxp_err *err) {
    for (int b = 0; b < ex->B; b++)
        for (int t = 0; t <= ex->T; t++) {
            int32_t id = seq[(size_t)b * (ex->T + 1) + t];
            if (id < 0 || id >= ex->g->vocab)
                return mxp_fail(err, MXP_ERR_ARG, "token id %d at sequence %d position %d is outside the vocabulary [0, %d)",
                                id, b, t, ex->g->vocab);
            if (t < ex->T) ex->tokens[b * ex->T + t] = id;
            if (t > 0) ex->targets[b * ex->T + t - 1] = id;
        }
    ex->Tq = ex->T;
    ex->pos0 = 0;
    ex->cached = 0;
    return MXP_OK;
}

// Parameters of the nodes that are not quantizable are f32 (model.c converts them at load).
static const float *pdata(const mxp_exec *ex, int p) {
    MXP_ASSERT(ex->g->params[p].data);
    return ex->g->params[p].data;
}
static float *pgrad(const mxp_exec *ex, int p) { return ex->pgrad ? ex->pgrad[p] : NULL; }

// Run node i forward (mxp_exec_forward's step).
static void forward_node(mxp_exec *ex, int i) {
    const mxp_graph *g = ex->g;
    const int B = ex->B, T = ex->Tq, N = ex->B * ex->Tq, pos0 = ex->pos0;
    const mxp_node *n = &g->nodes[i];
    float *out = ex->val[i];
    const float *x = n->n_in ? ex->val[n->in[0]] : NULL;
    int cin = n->n_in ? g->nodes[n->in[0]].cols : 0;
    int64_t cells = (int64_t)N * n->cols;
    switch (n->op) {
    case MXP_OP_EMBED: embed_forward(ex, i, out, N); break;
    case MXP_OP_POSEMBED: mxp_posembed_fwd(out, x, pdata(ex, n->w), B, T, pos0, n->cols); break;
    case MXP_OP_RMSNORM: mxp_rmsnorm_fwd(out, ex->aux[i], x, pdata(ex, n->w), N, n->cols, n->eps); break;
    case MXP_OP_LAYERNORM:
        mxp_layernorm_fwd(out, ex->aux[i], ex->aux[i] + N, x, pdata(ex, n->w), n->has_b ? pdata(ex, n->b) : NULL, N,
                          n->cols, n->eps);
        break;
    case MXP_OP_LINEAR: linear_forward(ex, i, out, x, N, cin); break;
    case MXP_OP_SLICE:
        for (int r = 0; r < N; r++)
            memcpy(out + (size_t)r * n->cols, x + (size_t)r * cin + n->slice_off, (size_t)n->cols * sizeof(float));
        break;
    case MXP_OP_ROPE: mxp_rope_fwd(out, x, n->inv_freq, B, T, pos0, n->heads, n->head_dim); break;
    case MXP_OP_ATTENTION: attention_forward(ex, i, out, x); break;
    case MXP_OP_SWIGLU: mxp_swiglu_fwd(out, x, ex->val[n->in[1]], cells); break;
    case MXP_OP_GELU: mxp_gelu_fwd(out, x, cells); break;
    case MXP_OP_ADD: mxp_add_fwd(out, x, ex->val[n->in[1]], cells); break;
    case MXP_OP_COUNT: MXP_ASSERT(0);
    }
}

void mxp_exec_forward(mxp_exec *ex, int first, int last) {
    MXP_ASSERT(0 <= first && first <= last && last <= ex->g->n_nodes);
    for (int i = first; i < last; i++) forward_node(ex, i);
}

double mxp_exec_loss(mxp_exec *ex, double *seq_loss) {
    const mxp_graph *g = ex->g;
    MXP_ASSERT(ex->Tq == ex->T && ex->pos0 == 0);
    int V = g->nodes[g->n_nodes - 1].cols;
    MXP_ASSERT(V == g->vocab);
    mxp_xent_fwd(ex->losses, ex->val[g->n_nodes - 1], ex->targets, ex->N, V);
    double total = 0;
    for (int b = 0; b < ex->B; b++) {
        double s = 0;
        for (int t = 0; t < ex->T; t++) s += ex->losses[b * ex->T + t];
        if (seq_loss) seq_loss[b] = s / ex->T;
        total += s;
    }
    return total / ex->N;
}

void mxp_exec_zero_grads(mxp_exec *ex) {
    MXP_ASSERT(ex->grad);
    for (int i = 0; i < ex->g->n_nodes; i++) release_grad(ex, i);
    if (ex->pgrad)
        for (int p = 0; p < ex->g->n_params; p++) memset(ex->pgrad[p], 0, ex->g->params[p].nelem * sizeof(float));
}

// The gradients a node's backward writes into: its inputs' (in[0] .. in[n_in-1]). Returns 0
// when one could not be allocated.
static int input_grads(mxp_exec *ex, const mxp_node *n, float *dins[MXP_MAX_NODE_INPUTS]) {
    for (int k = 0; k < MXP_MAX_NODE_INPUTS; k++) dins[k] = NULL;
    for (int k = 0; k < n->n_in; k++)
        if (!(dins[k] = mxp_exec_grad(ex, n->in[k]))) return 0;
    return 1;
}

mxp_status mxp_exec_backward(mxp_exec *ex, int first, int last, float loss_scale, mxp_linear_hook hook, void *ctx,
                             mxp_err *err) {
    const mxp_graph *g = ex->g;
    MXP_ASSERT(ex->grad && 0 <= first && first <= last && last <= g->n_nodes && ex->Tq == ex->T && ex->pos0 == 0);
    const int B = ex->B, T = ex->T, N = ex->N;
    if (last == g->n_nodes) {
        float *dlogits = mxp_exec_grad(ex, last - 1);
        if (!dlogits) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory for the gradient of the logits");
        for (int r = 0; r < N; r++) ex->row_scale[r] = loss_scale;
        mxp_xent_bwd(dlogits, ex->val[last - 1], ex->targets, ex->row_scale, N, g->nodes[last - 1].cols);
    }
    for (int i = last - 1; i >= first; i--) {
        const mxp_node *n = &g->nodes[i];
        const float *dy = ex->grad[i];
        if (!dy) continue;  // no gradient reaches this node
        float *din[MXP_MAX_NODE_INPUTS];
        if (!input_grads(ex, n, din))
            return mxp_fail(err, MXP_ERR_NOMEM, "out of memory for a gradient buffer (node %d, %s)", i,
                            mxp_op_name(n->op));
        const float *x = n->n_in ? ex->val[n->in[0]] : NULL;
        float *dx = din[0];
        int cin = n->n_in ? g->nodes[n->in[0]].cols : 0;
        int64_t cells = (int64_t)N * n->cols;
        switch (n->op) {
        case MXP_OP_EMBED:
            if (pgrad(ex, n->w)) mxp_embed_bwd(pgrad(ex, n->w), dy, ex->tokens, N, n->cols);
            if (hook) hook(ctx, &(mxp_linear_event){.node = i, .phase = MXP_HOOK_EMBED, .dy = dy});
            break;
        case MXP_OP_POSEMBED: mxp_posembed_bwd(dx, pgrad(ex, n->w), dy, B, T, 0, n->cols); break;
        case MXP_OP_RMSNORM: mxp_rmsnorm_bwd(dx, pgrad(ex, n->w), dy, x, pdata(ex, n->w), ex->aux[i], N, n->cols); break;
        case MXP_OP_LAYERNORM:
            mxp_layernorm_bwd(dx, pgrad(ex, n->w), n->has_b ? pgrad(ex, n->b) : NULL, dy, x, pdata(ex, n->w), ex->aux[i],
                              ex->aux[i] + N, N, n->cols);
            break;
        case MXP_OP_LINEAR:
            if (ex->wscratch) {
                size_t nw = ex->g->params[n->w].nelem;
                memset(ex->wscratch, 0, nw * sizeof(float));
                mxp_linear_bwd(NULL, ex->wscratch, NULL, dy, x, NULL, N, cin, n->cols);
                if (pgrad(ex, n->w)) mxp_acc(pgrad(ex, n->w), ex->wscratch, (int64_t)nw);
            }
            mxp_linear_event ev = {.node = i, .phase = MXP_HOOK_PRE, .x = x, .dy = dy, .dx = dx, .dw = ex->wscratch,
                                   .y = (ex->flags & MXP_EXEC_LINEAR_OUT) ? ex->val[i] : NULL};
            if (hook) hook(ctx, &ev);
            mxp_linear_bwd_w(dx, ex->wscratch ? NULL : pgrad(ex, n->w), n->has_b ? pgrad(ex, n->b) : NULL, dy, x,
                             &ex->g->params[n->w], N, cin, n->cols, ex->wtile, ex->wtile_floats);
            ev.phase = MXP_HOOK_POST;
            if (hook) hook(ctx, &ev);
            break;
        case MXP_OP_SLICE:
            for (int r = 0; r < N; r++)
                mxp_acc(dx + (size_t)r * cin + n->slice_off, dy + (size_t)r * n->cols, n->cols);
            break;
        case MXP_OP_ROPE: mxp_rope_bwd(dx, dy, n->inv_freq, B, T, 0, n->heads, n->head_dim); break;
        case MXP_OP_ATTENTION:
            mxp_attention_bwd(dx, din[1], din[2], ex->att_scratch, ex->att_slots, dy, x, ex->val[n->in[1]],
                              ex->val[n->in[2]], ex->aux[i], B, T, n->heads, n->kv_heads, n->head_dim, n->window);
            break;
        case MXP_OP_SWIGLU: mxp_swiglu_bwd(dx, din[1], dy, x, ex->val[n->in[1]], cells); break;
        case MXP_OP_GELU: mxp_gelu_bwd(dx, dy, x, cells); break;
        case MXP_OP_ADD:
            mxp_acc(dx, dy, cells);
            mxp_acc(din[1], dy, cells);
            break;
        case MXP_OP_COUNT: MXP_ASSERT(0);
        }
        release_grad(ex, i);
    }
    return MXP_OK;
}

mxp_status mxp_exec_pass(mxp_exec *ex, float loss_scale, double *seq_loss, double *loss, mxp_linear_hook hook,
                         mxp_segment_done done, void *ctx, mxp_err *err) {
    const int n = ex->g->n_nodes;
    mxp_status st = MXP_OK;
    if (!ex->n_seg) {
        mxp_exec_forward(ex, 0, n);
        double mean = mxp_exec_loss(ex, seq_loss);
        if (loss) *loss = mean;
        mxp_exec_zero_grads(ex);
        st = mxp_exec_backward(ex, 0, n, loss_scale, hook, ctx, err);
        if (!st && done) st = done(ctx, 0, n, 1, err);
        return st;
    }
    const int K = ex->n_seg;
    for (int k = 0; k < K && !st; k++) {
        mxp_exec_forward(ex, ex->seg[k], ex->seg[k + 1]);
        if (k < K - 1 && done) st = done(ctx, ex->seg[k], ex->seg[k + 1], 0, err);
    }
    if (st) return st;
    double mean = mxp_exec_loss(ex, seq_loss);
    if (loss) *loss = mean;
    mxp_exec_zero_grads(ex);
    for (int k = K - 1; k >= 0 && !st; k--) {
        if (k < K - 1)  // the last segment's values are still there
            for (int i = ex->seg[k]; i < ex->seg[k + 1]; i++)
                if (ex->refwd[i]) forward_node(ex, i);
        st = mxp_exec_backward(ex, ex->seg[k], ex->seg[k + 1], loss_scale, hook, ctx, err);
        if (!st && done) st = done(ctx, ex->seg[k], ex->seg[k + 1], 1, err);
    }
    return st;
}

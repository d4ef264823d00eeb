// build.c: helpers shared by the architecture builders. Each helper appends one node whose
// output width follows from its inputs and parameters, and records the first failure in the
// builder so a builder reads as a straight list of ops.
#include "arch/build.h"

#include <stdarg.h>
#include <string.h>

static int add(mxp_builder *b, const mxp_node *proto) {
    if (b->st) return 0;
    int idx = 0;
    b->st = mxp_graph_add_node(&b->m->graph, proto, &idx, b->err);
    return idx;
}

__attribute__((format(printf, 6, 0))) static int vparam(mxp_builder *b, int ndim, int64_t d0, int64_t d1, int transpose, const char *fmt,
                  va_list ap) {
    if (b->st) return 0;
    char name[256];
    vsnprintf(name, sizeof name, fmt, ap);
    int64_t shape[2] = {d0, d1};
    int idx = 0;
    b->st = mxp_model_param(b->m, name, ndim, shape, transpose, &idx, b->err);
    return idx;
}

int mxp_b_param(mxp_builder *b, int ndim, int64_t d0, int64_t d1, int transpose, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int idx = vparam(b, ndim, d0, d1, transpose, fmt, ap);
    va_end(ap);
    return idx;
}


static int cols_of(mxp_builder *b, int node) { return b->st ? 1 : b->m->graph.nodes[node].cols; }
static int64_t pshape(mxp_builder *b, int p, int d) { return b->st ? 1 : b->m->graph.params[p].shape[d]; }

int mxp_b_embed(mxp_builder *b, int w, const char *module) {
    mxp_node n = {.op = MXP_OP_EMBED, .has_w = 1, .w = w, .cols = (int)pshape(b, w, 1), .name = (char *)module};
    return add(b, &n);
}

int mxp_b_posembed(mxp_builder *b, int x, int w) {
    mxp_node n = {.op = MXP_OP_POSEMBED, .n_in = 1, .in = {x}, .has_w = 1, .w = w, .cols = cols_of(b, x)};
    return add(b, &n);
}

int mxp_b_rmsnorm(mxp_builder *b, int x, int w, float eps) {
    mxp_node n = {.op = MXP_OP_RMSNORM, .n_in = 1, .in = {x}, .has_w = 1, .w = w, .eps = eps, .cols = cols_of(b, x)};
    return add(b, &n);
}

int mxp_b_layernorm(mxp_builder *b, int x, int w, int bias, float eps) {
    mxp_node n = {.op = MXP_OP_LAYERNORM, .n_in = 1, .in = {x}, .has_w = 1, .w = w, .has_b = 1, .b = bias,
                  .eps = eps, .cols = cols_of(b, x)};
    return add(b, &n);
}

int mxp_b_linear(mxp_builder *b, int x, int w, int bias, int has_bias, const char *module) {
    mxp_node n = {.op = MXP_OP_LINEAR, .n_in = 1, .in = {x}, .has_w = 1, .w = w, .has_b = has_bias, .b = bias,
                  .cols = (int)pshape(b, w, 0), .name = (char *)module};
    return add(b, &n);
}

int mxp_b_slice(mxp_builder *b, int x, int off, int cols) {
    mxp_node n = {.op = MXP_OP_SLICE, .n_in = 1, .in = {x}, .slice_off = off, .cols = cols};
    return add(b, &n);
}

int mxp_b_rope(mxp_builder *b, int x, int heads, int head_dim, const float *inv_freq) {
    mxp_node n = {.op = MXP_OP_ROPE, .n_in = 1, .in = {x}, .heads = heads, .head_dim = head_dim,
                  .inv_freq = inv_freq, .cols = cols_of(b, x)};
    return add(b, &n);
}

int mxp_b_attention(mxp_builder *b, int q, int k, int v, int heads, int kv_heads, int head_dim, int window) {
    mxp_node n = {.op = MXP_OP_ATTENTION, .n_in = 3, .in = {q, k, v}, .heads = heads, .kv_heads = kv_heads,
                  .head_dim = head_dim, .window = window, .cols = cols_of(b, q)};
    return add(b, &n);
}

int mxp_b_binary(mxp_builder *b, mxp_op op, int x, int y) {
    mxp_node n = {.op = op, .n_in = 2, .in = {x, y}, .cols = cols_of(b, x)};
    return add(b, &n);
}

int mxp_b_gelu(mxp_builder *b, int x) {
    mxp_node n = {.op = MXP_OP_GELU, .n_in = 1, .in = {x}, .cols = cols_of(b, x)};
    return add(b, &n);
}

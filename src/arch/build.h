// build.h: small helpers the architecture builders share to append params and nodes.
// Internal to src/arch.
#ifndef MXP_BUILD_H
#define MXP_BUILD_H

#include "arch/model.h"

typedef struct mxp_builder {
    mxp_model *m;
    mxp_err *err;
    mxp_status st;  // first failure; later calls do nothing once set
} mxp_builder;

// Fetch a parameter by printf-style name; returns its index (0 after a failure: check b->st).
int mxp_b_param(mxp_builder *b, int ndim, int64_t d0, int64_t d1, int transpose, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

int mxp_b_embed(mxp_builder *b, int w, const char *module);
int mxp_b_posembed(mxp_builder *b, int x, int w);
int mxp_b_rmsnorm(mxp_builder *b, int x, int w, float eps);
int mxp_b_layernorm(mxp_builder *b, int x, int w, int bias, float eps);
// Linear with its Hugging Face module name; has_bias == 0: no bias (bias ignored).
int mxp_b_linear(mxp_builder *b, int x, int w, int bias, int has_bias, const char *module);
int mxp_b_slice(mxp_builder *b, int x, int off, int cols);
int mxp_b_rope(mxp_builder *b, int x, int heads, int head_dim, const float *inv_freq);
int mxp_b_attention(mxp_builder *b, int q, int k, int v, int heads, int kv_heads, int head_dim, int window);
int mxp_b_binary(mxp_builder *b, mxp_op op, int x, int y);  // SWIGLU, ADD
int mxp_b_gelu(mxp_builder *b, int x);

#endif

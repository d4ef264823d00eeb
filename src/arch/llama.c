// llama.c: graph builder for the Llama family (Llama 2/3, Mistral, Qwen2): token embedding,
// per block RMSNorm -> q/k/v projections (optional biases) -> RoPE -> causal GQA attention
// (Mistral: within its sliding window) -> o_proj -> residual add, RMSNorm -> SwiGLU MLP ->
// residual add; final RMSNorm and the LM head (tied to the embedding or not). Builds a graph
// only: no forward code lives here.
#include "arch/build.h"

mxp_status mxp_build_llama(mxp_model *m, mxp_err *err) {
    const mxp_model_config *c = &m->config;
    mxp_builder bb = {.m = m, .err = err}, *b = &bb;
    const int D = c->dim, H = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim, F = c->ffn;
    float *inv_freq = malloc((size_t)(hd / 2) * sizeof(float));
    if (!inv_freq) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    mxp_config_inv_freq(c, inv_freq);
    mxp_status st = mxp_graph_own(&m->graph, inv_freq, err);
    if (st) return st;

    int emb = mxp_b_param(b, 2, c->vocab, D, 0, "model.embed_tokens.weight");
    int x = mxp_b_embed(b, emb, "model.embed_tokens");
    char mod[256];
    for (int l = 0; l < c->n_layers && !b->st; l++) {
        const char *pre = "model.layers";
        int nw = mxp_b_param(b, 1, D, 0, 0, "%s.%d.input_layernorm.weight", pre, l);
        int h = mxp_b_rmsnorm(b, x, nw, c->norm_eps);
        static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
        int proj[3];
        for (int i = 0; i < 3; i++) {
            int out = (i == 0 ? H : Hkv) * hd;
            int w = mxp_b_param(b, 2, out, D, 0, "%s.%d.self_attn.%s.weight", pre, l, qkv[i]);
            int bias = 0;
            if (c->qkv_bias) bias = mxp_b_param(b, 1, out, 0, 0, "%s.%d.self_attn.%s.bias", pre, l, qkv[i]);
            snprintf(mod, sizeof mod, "%s.%d.self_attn.%s", pre, l, qkv[i]);
            proj[i] = mxp_b_linear(b, h, w, bias, c->qkv_bias, mod);
        }
        int q = mxp_b_rope(b, proj[0], H, hd, inv_freq);
        int k = mxp_b_rope(b, proj[1], Hkv, hd, inv_freq);
        int a = mxp_b_attention(b, q, k, proj[2], H, Hkv, hd, c->sliding_window);
        int ow = mxp_b_param(b, 2, D, H * hd, 0, "%s.%d.self_attn.o_proj.weight", pre, l);
        int ob = 0;
        if (c->o_bias) ob = mxp_b_param(b, 1, D, 0, 0, "%s.%d.self_attn.o_proj.bias", pre, l);
        snprintf(mod, sizeof mod, "%s.%d.self_attn.o_proj", pre, l);
        int o = mxp_b_linear(b, a, ow, ob, c->o_bias, mod);
        x = mxp_b_binary(b, MXP_OP_ADD, x, o);

        int pw = mxp_b_param(b, 1, D, 0, 0, "%s.%d.post_attention_layernorm.weight", pre, l);
        h = mxp_b_rmsnorm(b, x, pw, c->norm_eps);
        static const char *const mlp[3] = {"gate_proj", "up_proj", "down_proj"};
        int gu[2];
        for (int i = 0; i < 2; i++) {
            int w = mxp_b_param(b, 2, F, D, 0, "%s.%d.mlp.%s.weight", pre, l, mlp[i]);
            int bias = 0;
            if (c->mlp_bias) bias = mxp_b_param(b, 1, F, 0, 0, "%s.%d.mlp.%s.bias", pre, l, mlp[i]);
            snprintf(mod, sizeof mod, "%s.%d.mlp.%s", pre, l, mlp[i]);
            gu[i] = mxp_b_linear(b, h, w, bias, c->mlp_bias, mod);
        }
        int s = mxp_b_binary(b, MXP_OP_SWIGLU, gu[0], gu[1]);
        int dw = mxp_b_param(b, 2, D, F, 0, "%s.%d.mlp.down_proj.weight", pre, l);
        int db = 0;
        if (c->mlp_bias) db = mxp_b_param(b, 1, D, 0, 0, "%s.%d.mlp.down_proj.bias", pre, l);
        snprintf(mod, sizeof mod, "%s.%d.mlp.down_proj", pre, l);
        int d = mxp_b_linear(b, s, dw, db, c->mlp_bias, mod);
        x = mxp_b_binary(b, MXP_OP_ADD, x, d);
    }
    int fw = mxp_b_param(b, 1, D, 0, 0, "model.norm.weight");
    int h = mxp_b_rmsnorm(b, x, fw, c->norm_eps);
    int head = c->tied ? emb : mxp_b_param(b, 2, c->vocab, D, 0, "lm_head.weight");
    mxp_b_linear(b, h, head, 0, 0, "lm_head");
    return b->st;
}

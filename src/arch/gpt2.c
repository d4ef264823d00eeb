// gpt2.c: graph builder for GPT-2: token + learned position embeddings, per block LayerNorm ->
// fused c_attn (Conv1D, stored (in, out)) sliced into q, k, v -> causal attention -> c_proj ->
// residual add, LayerNorm -> c_fc -> tanh-GELU -> c_proj -> residual add; final LayerNorm and a
// head tied to the token embedding. Builds a graph only.
#include "arch/build.h"

mxp_status mxp_build_gpt2(mxp_model *m, mxp_err *err) {
    const mxp_model_config *c = &m->config;
    mxp_builder bb = {.m = m, .err = err}, *b = &bb;
    const int D = c->dim, H = c->n_heads, hd = c->head_dim, F = c->ffn;
    // Tensor names carry "transformer." (GPT2LMHeadModel) or not (the Hub's gpt2 checkpoint);
    // module names, the keys of plans, always do.
    const char *pre = mxp_tensor_find(&m->files, "transformer.wte.weight") ? "transformer." : "";
    char mod[256];
    int wte = mxp_b_param(b, 2, c->vocab, D, 0, "%swte.weight", pre);
    int wpe = mxp_b_param(b, 2, c->max_pos, D, 0, "%swpe.weight", pre);
    int x = mxp_b_posembed(b, mxp_b_embed(b, wte, "transformer.wte"), wpe);
    for (int l = 0; l < c->n_layers && !b->st; l++) {
        int g1 = mxp_b_param(b, 1, D, 0, 0, "%sh.%d.ln_1.weight", pre, l);
        int b1 = mxp_b_param(b, 1, D, 0, 0, "%sh.%d.ln_1.bias", pre, l);
        int h = mxp_b_layernorm(b, x, g1, b1, c->norm_eps);
        int aw = mxp_b_param(b, 2, 3 * D, D, 1, "%sh.%d.attn.c_attn.weight", pre, l);
        int ab = mxp_b_param(b, 1, 3 * D, 0, 0, "%sh.%d.attn.c_attn.bias", pre, l);
        snprintf(mod, sizeof mod, "transformer.h.%d.attn.c_attn", l);
        int qkv = mxp_b_linear(b, h, aw, ab, 1, mod);
        int q = mxp_b_slice(b, qkv, 0, D), k = mxp_b_slice(b, qkv, D, D), v = mxp_b_slice(b, qkv, 2 * D, D);
        int a = mxp_b_attention(b, q, k, v, H, H, hd, 0);
        int pw = mxp_b_param(b, 2, D, D, 1, "%sh.%d.attn.c_proj.weight", pre, l);
        int pb = mxp_b_param(b, 1, D, 0, 0, "%sh.%d.attn.c_proj.bias", pre, l);
        snprintf(mod, sizeof mod, "transformer.h.%d.attn.c_proj", l);
        x = mxp_b_binary(b, MXP_OP_ADD, x, mxp_b_linear(b, a, pw, pb, 1, mod));

        int g2 = mxp_b_param(b, 1, D, 0, 0, "%sh.%d.ln_2.weight", pre, l);
        int b2 = mxp_b_param(b, 1, D, 0, 0, "%sh.%d.ln_2.bias", pre, l);
        h = mxp_b_layernorm(b, x, g2, b2, c->norm_eps);
        int fw = mxp_b_param(b, 2, F, D, 1, "%sh.%d.mlp.c_fc.weight", pre, l);
        int fb = mxp_b_param(b, 1, F, 0, 0, "%sh.%d.mlp.c_fc.bias", pre, l);
        snprintf(mod, sizeof mod, "transformer.h.%d.mlp.c_fc", l);
        int f = mxp_b_gelu(b, mxp_b_linear(b, h, fw, fb, 1, mod));
        int dw = mxp_b_param(b, 2, D, F, 1, "%sh.%d.mlp.c_proj.weight", pre, l);
        int db = mxp_b_param(b, 1, D, 0, 0, "%sh.%d.mlp.c_proj.bias", pre, l);
        snprintf(mod, sizeof mod, "transformer.h.%d.mlp.c_proj", l);
        x = mxp_b_binary(b, MXP_OP_ADD, x, mxp_b_linear(b, f, dw, db, 1, mod));
    }
    int gf = mxp_b_param(b, 1, D, 0, 0, "%sln_f.weight", pre);
    int bf = mxp_b_param(b, 1, D, 0, 0, "%sln_f.bias", pre);
    int h = mxp_b_layernorm(b, x, gf, bf, c->norm_eps);
    mxp_b_linear(b, h, wte, 0, 0, "lm_head");
    return b->st;
}

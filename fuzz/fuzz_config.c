// fuzz_config.c: libFuzzer target for the model-description parsers: a Hugging Face
// config.json (mxp_config_from_hf_json) and a plan file (mxp_formats_apply_plan_json) against
// a small synthetic Llama graph. Every input must give MXP_OK or a clean error whose message
// names the label; an accepted config must describe a buildable, valid graph.
#include <string.h>

#include "arch/config.h"
#include "arch/model.h"
#include "method/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mxp_model_config c;
    mxp_err err = {0};
    mxp_status st = mxp_config_from_hf_json(&c, (const char *)data, size, "fuzz.json", &err);
    if (st) {
        MXP_ASSERT(strstr(err.msg, "fuzz.json"));
    } else {
        MXP_ASSERT(c.vocab > 0 && c.dim > 0 && c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0);
        MXP_ASSERT(c.n_heads % c.n_kv_heads == 0 && c.head_dim > 0 && c.head_dim % 2 == 0);
        // build only small models (the fuzzer may describe huge ones validly)
        double params = (double)c.vocab * c.dim * 2 + (double)c.n_layers * c.dim * (4.0 * c.dim + 3.0 * c.ffn);
        if (params < 2e6 && c.n_heads * c.head_dim < 4096 && (c.arch != MXP_ARCH_GPT2 || c.max_pos < 4096)) {
            mxp_model *m;
            if (mxp_model_synthetic(&c, 1, &m, &err) == MXP_OK) mxp_model_free(m);
        }
    }
    // the same bytes as a plan for a fixed small model
    static const mxp_model_config small = {.arch = MXP_ARCH_LLAMA, .vocab = 64, .dim = 32, .n_layers = 1, .n_heads = 2,
                                           .n_kv_heads = 1, .head_dim = 16, .ffn = 64, .max_pos = 32,
                                           .norm_eps = 1e-5f, .rope_theta = 10000.0};
    mxp_model *m;
    if (mxp_model_synthetic(&small, 2, &m, &err) == MXP_OK) {
        st = mxp_formats_apply_plan_json(&m->graph, (const char *)data, size, "plan.json", &err);
        if (st) MXP_ASSERT(strstr(err.msg, "plan.json"));
        mxp_model_free(m);
    }
    return 0;
}

// fuzz_gguf.c: libFuzzer target for mxp_gguf_parse.
//
// On success: every key's string and array bytes and every tensor's bytes must lie inside the
// input (checked, then read so ASan sees any bad bound), the typed getters run on every key,
// and small float tensors are converted with mxp_tensor_to_f32. On failure the gguf must be
// cleared and the message must name the label.
#include <string.h>

#include "fuzz_tensors.h"

static void touch(const mxp_gguf *g, const uint8_t *buf, size_t size) {
    volatile uint8_t sink = 0;
    MXP_ASSERT(g->alignment && (g->alignment & (g->alignment - 1)) == 0);
    for (int i = 0; i < g->n_kv; i++) {
        const mxp_gguf_kv *kv = &g->kv[i];
        MXP_ASSERT(kv->key && mxp_gguf_find(g, kv->key) == kv);
        if (kv->type == MXP_GGUF_STRING) {
            MXP_ASSERT(INSIDE(kv->s.ptr, kv->s.len, buf, size));
            for (uint64_t k = 0; k < kv->s.len; k++) sink ^= (uint8_t)kv->s.ptr[k];
        } else if (kv->type == MXP_GGUF_ARRAY) {
            MXP_ASSERT(kv->arr_type != MXP_GGUF_ARRAY);
            if (kv->arr_type == MXP_GGUF_STRING) {
                MXP_ASSERT(kv->arr_n == 0 || kv->arr_strs);
                for (uint64_t j = 0; j < kv->arr_n; j++) {
                    const mxp_gguf_str *s = &kv->arr_strs[j];
                    MXP_ASSERT(INSIDE(s->ptr, s->len, buf, size));
                    for (uint64_t k = 0; k < s->len; k++) sink ^= (uint8_t)s->ptr[k];
                }
            } else {
                size_t es = mxp_gguf_type_size(kv->arr_type);
                MXP_ASSERT(es && kv->arr_n <= size / es);
                size_t nb = (size_t)kv->arr_n * es;
                MXP_ASSERT(INSIDE(kv->arr_data, nb, buf, size));
                for (size_t k = 0; k < nb; k++) sink ^= kv->arr_data[k];
            }
        }
        uint64_t u;
        double f;
        mxp_gguf_str s;
        int found;
        mxp_err err;
        mxp_gguf_get_u64(g, kv->key, &u, &found, &err);
        mxp_gguf_get_f64(g, kv->key, &f, &found, &err);
        mxp_gguf_get_str(g, kv->key, &s, &found, &err);
        MXP_ASSERT(found == 1);
    }
    fuzz_touch_tensors(&g->tensors, buf, size);
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mxp_gguf g;
    mxp_err err;
    memset(&err, 0, sizeof err);
    mxp_status st = mxp_gguf_parse(&g, data, size, "fuzz-input", &err);
    if (st == MXP_OK) {
        touch(&g, data, size);
    } else {
        MXP_ASSERT(g.n_kv == 0 && g.kv == NULL && g.tensors.n == 0);
        MXP_ASSERT(strstr(err.msg, "fuzz-input") != NULL);
    }
    mxp_gguf_free(&g);
    return 0;
}

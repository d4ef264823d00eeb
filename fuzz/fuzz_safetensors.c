// fuzz_safetensors.c: libFuzzer target for mxp_safetensors_parse.
//
// On success every tensor's bytes must lie inside the input (checked, then all read so ASan
// sees any bad bound) and small float tensors are converted with mxp_tensor_to_f32. A second
// parse into the same set must fail (every name is a duplicate) and leave the set unchanged.
// On failure the set must be empty and the message must name the label.
#include "io/tensors.h"

#include <string.h>

static void touch(const mxp_tensor_set *ts, const uint8_t *buf, size_t size) {
    volatile uint8_t sink = 0;
    for (int i = 0; i < ts->n; i++) {
        const mxp_tensor_info *t = &ts->tensors[i];
        MXP_ASSERT(t->name && t->ndim >= 0 && t->ndim <= MXP_MAX_DIMS);
        MXP_ASSERT(t->nbytes == 0 || (t->data >= buf && t->nbytes <= size &&
                                      (size_t)(t->data - buf) <= size - t->nbytes));
        for (size_t k = 0; k < t->nbytes; k++) sink ^= t->data[k];
        size_t prod = 1;
        for (int d = 0; d < t->ndim; d++) {
            MXP_ASSERT(t->shape[d] >= 0);
            prod *= (size_t)t->shape[d];
        }
        MXP_ASSERT(prod == t->nelem);
        if (t->nelem <= (1u << 16)) {
            float *out = malloc((t->nelem ? t->nelem : 1) * sizeof *out);
            mxp_err err;
            if (out) {
                mxp_status st = mxp_tensor_to_f32(t, out, &err);
                MXP_ASSERT(st == MXP_OK || st == MXP_ERR_UNSUPPORTED);
                free(out);
            }
        }
        MXP_ASSERT(mxp_tensor_find(ts, t->name) != NULL);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mxp_tensor_set ts = {0};
    mxp_err err;
    memset(&err, 0, sizeof err);
    mxp_status st = mxp_safetensors_parse(&ts, data, size, "fuzz-input", &err);
    if (st == MXP_OK) {
        touch(&ts, data, size);
        int n = ts.n;
        if (n > 0) {
            st = mxp_safetensors_parse(&ts, data, size, "fuzz-input", &err);
            MXP_ASSERT(st != MXP_OK && ts.n == n);
        }
    } else {
        MXP_ASSERT(ts.n == 0 && strstr(err.msg, "fuzz-input") != NULL);
    }
    mxp_tensor_set_free(&ts);
    return 0;
}

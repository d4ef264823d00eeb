// fuzz_tensors.h: the check every loader fuzz target runs on a parsed tensor set: each
// tensor's bytes lie inside the input (then all are read, so ASan sees a bad bound), the
// shape's product is the element count, and small float tensors convert with
// mxp_tensor_to_f32 (or are refused cleanly). Header-only; include in one fuzz target.
#ifndef MXP_FUZZ_TENSORS_H
#define MXP_FUZZ_TENSORS_H

#include "io/tensors.h"

#define INSIDE(p, n, buf, size) \
    ((n) == 0 || ((const uint8_t *)(p) >= (buf) && (size_t)((const uint8_t *)(p) - (buf)) <= (size) && \
                  (n) <= (size) - (size_t)((const uint8_t *)(p) - (buf))))

static void fuzz_touch_tensors(const mxp_tensor_set *ts, const uint8_t *buf, size_t size) {
    volatile uint8_t sink = 0;
    for (int i = 0; i < ts->n; i++) {
        const mxp_tensor_info *t = &ts->tensors[i];
        MXP_ASSERT(t->name && t->ndim >= 0 && t->ndim <= MXP_MAX_DIMS);
        MXP_ASSERT(INSIDE(t->data, t->nbytes, buf, size));
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

#endif

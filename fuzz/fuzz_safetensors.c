// fuzz_safetensors.c: libFuzzer target for mxp_safetensors_parse.
//
// On success every tensor's bytes must lie inside the input (checked, then all read so ASan
// sees any bad bound) and small float tensors are converted with mxp_tensor_to_f32. A second
// parse into the same set must fail (every name is a duplicate) and leave the set unchanged.
// On failure the set must be empty and the message must name the label.
#include "fuzz_tensors.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mxp_tensor_set ts = {0};
    mxp_err err;
    memset(&err, 0, sizeof err);
    mxp_status st = mxp_safetensors_parse(&ts, data, size, "fuzz-input", &err);
    if (st == MXP_OK) {
        fuzz_touch_tensors(&ts, data, size);
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

// data.h: evaluation and calibration data as token ids.
//
// Token-id file format (mixprec-tokens v1): a text file whose first line is exactly
// "mixprec-tokens 1", followed by token ids as decimal integers separated by any whitespace.
// Ids must be non-negative and fit in int32; the model's vocabulary is checked at use.
// Text files (anything else) are tokenized with the model's tokenizer (see tokenizer.h).
#ifndef MXP_DATA_H
#define MXP_DATA_H

#include "core/base.h"

#define MXP_TOKENS_MAGIC "mixprec-tokens 1"

typedef struct mxp_tokens {
    int32_t *ids;  // (n) owned
    size_t n;
} mxp_tokens;

// 1 if buf starts with the token-file magic line.
int mxp_is_token_file(const uint8_t *buf, size_t size);
// Parse a token-id file image; `label` names it in errors (with the line number).
mxp_status mxp_tokens_parse(mxp_tokens *t, const uint8_t *buf, size_t size, const char *label, mxp_err *err);
void mxp_tokens_free(mxp_tokens *t);

// Cut consecutive non-overlapping windows of T+1 ids (inputs and next-token targets) from
// ids[start...]: writes up to max_windows windows to out (max_windows * (T+1)) and returns
// how many fit.
size_t mxp_tokens_windows(const mxp_tokens *t, size_t start, int T, size_t max_windows, int32_t *out);

#endif

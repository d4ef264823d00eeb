// data.h: evaluation, calibration and training data as token ids.
//
// A data file (--data) is either a token-id file or UTF-8 text:
//  - Token-id file format (mixprec-tokens v1): a text file whose first line is exactly
//    "mixprec-tokens 1", followed by token ids as decimal integers separated by any
//    whitespace. Ids must be non-negative and fit in int32; the model's vocabulary is checked
//    at use (mxp_exec_set_batch).
//  - Anything else is text, tokenized whole with the model's tokenizer (tokenizer.h), adding
//    BOS/EOS only where the tokenizer's own defaults say so.
//
// Samples and splits. A sample is a window of T+1 consecutive ids (inputs and next-token
// targets). The token stream of n ids is cut into two disjoint regions:
//    calibration = ids [0, n/2)        evaluation = ids [n/2, n)        (n/2 rounded down)
// and windows are taken inside one region only, at offsets region_start + k*(T+1) (whole,
// non-overlapping windows), so no id is ever in both a calibration and an evaluation sample,
// whatever T either side uses. MXP_SPLIT_ALL uses the whole stream (training, or when the
// caller does its own splitting). mxp_eval uses the evaluation split; calibration (the
// sensitivity pass) uses the calibration split.
#ifndef MXP_DATA_H
#define MXP_DATA_H

#include "core/base.h"
#include "io/tokenizer.h"

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

// Read a data file image: a token-id file, or text tokenized with `tok`. tok may be NULL
// when no tokenizer is available: text is then MXP_ERR_UNSUPPORTED saying so. Errors name
// `label`: an empty file, invalid UTF-8 (the byte offset, from the tokenizer), text that gives
// no tokens. On success t owns the ids (free with mxp_tokens_free).
mxp_status mxp_data_parse(mxp_tokens *t, const uint8_t *buf, size_t size, const char *label,
                          const mxp_tokenizer *tok, mxp_err *err);
// The same from a path (mapped read-only while it is read).
mxp_status mxp_data_load(mxp_tokens *t, const char *path, const mxp_tokenizer *tok, mxp_err *err);


typedef enum mxp_split {
    MXP_SPLIT_ALL = 0,    // the whole stream
    MXP_SPLIT_CALIB = 1,  // ids [0, n/2)
    MXP_SPLIT_EVAL = 2,   // ids [n/2, n)
} mxp_split;

const char *mxp_split_name(mxp_split s);  // "all", "calibration", "evaluation"
// The id range [*start, *end) of a split of a stream of n ids.
void mxp_split_range(size_t n, mxp_split s, size_t *start, size_t *end);
// How many whole windows of T+1 ids the split holds.
size_t mxp_split_windows(size_t n, mxp_split s, int T);

// Cut n_samples windows of T+1 ids from split s of t. n_samples == 0 takes every window of
// the split in stream order. Otherwise n_samples distinct windows are drawn uniformly with
// the seeded RNG (same seed, same windows) and returned in stream order. On success *out is
// a malloc'd (n_samples, T+1) array (caller frees) and *n_out the number of windows.
// Errors (MXP_ERR_ARG, naming `label`): T < 1, or the split holding fewer windows than asked
// (the message says how many fit and how many ids the split has).
mxp_status mxp_data_samples(const mxp_tokens *t, mxp_split s, int T, size_t n_samples, uint64_t seed,
                            const char *label, int32_t **out, size_t *n_out, mxp_err *err);

// The fewest windows a split may hold when the sample count is a default, not the user's.
#define MXP_MIN_DEFAULT_SAMPLES 4

// How many windows to draw from split s of t for a sample count the user may have given
// (option names it, e.g. "--samples"). requested > 0: that, as asked (mxp_data_samples
// refuses it if the split is too short). requested == 0: the default def, or every window
// of the split when it holds fewer, down to MXP_MIN_DEFAULT_SAMPLES; *reduced = 1 then (the
// caller warns). Fewer windows than that: MXP_ERR_ARG naming `label`, the split's size and
// what to change.
mxp_status mxp_data_sample_count(const mxp_tokens *t, mxp_split s, int T, size_t requested, size_t def,
                                 const char *option, const char *label, size_t *n, int *reduced, mxp_err *err);

// Cut consecutive non-overlapping windows of T+1 ids (inputs and next-token targets) from
// ids[start...]: writes up to max_windows windows to out (max_windows * (T+1)) and returns
// how many fit.
size_t mxp_tokens_windows(const mxp_tokens *t, size_t start, int T, size_t max_windows, int32_t *out);

#endif

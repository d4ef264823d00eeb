// mixprec.h: the public API of libmixprec.
//
// mixprec picks a numeric format per layer of a neural network so that inference is as
// fast as possible on this machine while the loss stays within a budget. The CLI (cli/) is a
// thin client of this header.
//
// Conventions:
//  - Every fallible call returns an mxp_status and fills a caller-provided mxp_err (may be
//    NULL) with a message that names the file, tensor or argument at fault.
//  - Objects are opaque, caller-owned, created by mxp_x_load/init and released by mxp_x_free.
//  - Nothing in the library calls exit(); nothing writes to stdout.
#ifndef MIXPREC_H
#define MIXPREC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mxp_status {
    MXP_OK = 0,
    MXP_ERR_IO,          // could not open/read/write a file
    MXP_ERR_FORMAT,      // a file is malformed (bad magic, offsets, JSON, dims...)
    MXP_ERR_UNSUPPORTED, // well-formed but not supported (architecture, dtype, config key)
    MXP_ERR_ARG,         // bad argument from the caller or the command line
    MXP_ERR_NOMEM,       // allocation failed or a size overflowed
    MXP_ERR_INTERRUPTED, // stopped by the user (Ctrl-C)
} mxp_status;

typedef struct mxp_err {
    mxp_status code;
    char msg[1024];
} mxp_err;

// Short name of a status code ("format error", ...). Static string.
const char *mxp_status_name(mxp_status s);

// Library version string, e.g. "0.1.0". Static string.
const char *mxp_version(void);

// ---- models ----
typedef struct mxp_model mxp_model;

// Load a Hugging Face folder (config.json + model.safetensors or sharded) or a GGUF file.
// On success *out is a new model owned by the caller (free with mxp_model_free). The model
// keeps the files mapped read-only while it lives.
mxp_status mxp_model_load(const char *path, mxp_model **out, mxp_err *err);
void mxp_model_free(mxp_model *m);

// Write a description of the model to f: architecture, dimensions, parameter count, and every
// tensor with its shape and dtype as stored in the file.
void mxp_model_print_info(const mxp_model *m, FILE *f);

// ---- evaluation ----
typedef struct mxp_eval_opts {
    const char *data_path;  // token-id file (see src/io/data.h) or text
    int seq_len;            // tokens per sample (T); 0: min(256, model maximum)
    int batch;              // sequences per forward pass; 0: 1
    int max_samples;        // 0: every full window in the file
    int progress;           // 1: progress with ETA on stderr
} mxp_eval_opts;

typedef struct mxp_eval_result {
    double loss;            // mean next-token cross-entropy, nats
    double perplexity;      // exp(loss)
    size_t samples, tokens; // windows and predicted tokens evaluated
    double seconds;         // wall time of the forward passes
    double tokens_per_s;    // tokens / seconds
} mxp_eval_result;

mxp_status mxp_eval(mxp_model *m, const mxp_eval_opts *opts, mxp_eval_result *res, mxp_err *err);

#ifdef __cplusplus
}
#endif
#endif

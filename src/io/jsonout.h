// jsonout.h: writing the JSON files mixprec produces: provenance and atomic writes.
// Every output file goes through mxp_write_file_atomic (io/tensors.h): written to a temporary
// in the same folder, flushed, renamed over PATH; on failure PATH is untouched.
#ifndef MXP_JSONOUT_H
#define MXP_JSONOUT_H

#include <cJSON.h>

#include "core/base.h"
#include "io/tensors.h"

// Print j (formatted) and write it atomically.
mxp_status mxp_write_json_atomic(const char *path, const cJSON *j, mxp_err *err);
// Read a whole JSON file; *out owned by the caller (cJSON_Delete). Errors name the file.
mxp_status mxp_read_json(const char *path, cJSON **out, mxp_err *err);
// The same from a memory image (need not be NUL-terminated); errors name `label`.
mxp_status mxp_parse_json(const uint8_t *buf, size_t size, const char *label, cJSON **out, mxp_err *err);

// FNV-1a 64 of a file's bytes, or of every regular file a model folder holds that the
// model reads (config.json, *.safetensors, *.json index), in name order. "fnv1a64:<hex>".
mxp_status mxp_hash_path(const char *path, char out[32], mxp_err *err);
// CPU model name and thread count, e.g. "AMD EPYC 7B13 (2 threads)".
void mxp_machine_description(char *out, size_t cap);

// What every output file records about the run that made it: "mixprec 0.1.0", the ggml
// library "0.23.0 (commit 5b4ebc5)", the machine description and the UTC time
// "2026-11-27T21:50:00Z".
typedef struct mxp_run_stamp {
    char tool[64], ggml[96], machine[320], created[32];
} mxp_run_stamp;
void mxp_run_stamp_now(mxp_run_stamp *s);

// The "provenance" object of docs/FILES.md. data_path may be NULL. Returns NULL on OOM or
// when a hash cannot be read (err set).
cJSON *mxp_provenance_json(const char *model_path, const char *data_path, mxp_err *err);

#endif

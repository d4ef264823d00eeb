// gguf_write.h: building a GGUF v3 file in memory (layout as read by gguf.c):
//   header | KV pairs | tensor infos | zero padding to `alignment` | tensor data, each tensor at
//   an offset that is a multiple of the alignment (32), zero padding between tensors.
// Use: init, add KVs and tensor infos (name, GGML type, shape, byte size) in file order, then
// mxp_gguf_writer_finish lays the file out in one allocation, writes header, KVs and infos,
// and returns the image; fill each tensor's bytes through mxp_gguf_writer_data (so a tensor is
// quantized straight into place), then write the image with mxp_write_file_atomic.
#ifndef MXP_GGUF_WRITE_H
#define MXP_GGUF_WRITE_H

#include "core/base.h"
#include "io/tensors.h"

typedef struct mxp_gguf_wtensor {
    char *name;                  // owned
    uint32_t ggml_type;
    int ndim;
    int64_t shape[MXP_MAX_DIMS]; // row-major (outermost first); written to ne[] reversed
    size_t nbytes;
    size_t offset;               // from the data section start (set by finish)
} mxp_gguf_wtensor;

typedef struct mxp_gguf_writer {
    uint8_t *kv;                 // serialized KV pairs (owned, growable)
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    char **keys;                 // (n_kv) owned copies, for duplicate checks
    mxp_gguf_wtensor *t;         // (n_t)
    int n_t, cap_t;
    uint8_t *image;              // after finish: the whole file (owned until taken)
    size_t size, data_start;
    mxp_status st;               // first error of an add call (later adds do nothing)
    mxp_err err;
} mxp_gguf_writer;

void mxp_gguf_writer_init(mxp_gguf_writer *w);
void mxp_gguf_writer_free(mxp_gguf_writer *w);

// KV adders. Errors (duplicate key, out of memory, bad type) are kept in w->st / w->err and
// reported by mxp_gguf_writer_finish. `value` points to a value of the C type matching `type`
// (uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool as uint8_t, uint64_t,
// int64_t, double).
void mxp_gguf_writer_kv(mxp_gguf_writer *w, const char *key, mxp_gguf_type type, const void *value);
void mxp_gguf_writer_kv_u32(mxp_gguf_writer *w, const char *key, uint32_t v);
void mxp_gguf_writer_kv_f32(mxp_gguf_writer *w, const char *key, float v);
void mxp_gguf_writer_kv_bool(mxp_gguf_writer *w, const char *key, int v);
void mxp_gguf_writer_kv_str(mxp_gguf_writer *w, const char *key, const char *s, size_t len);
// Array of n fixed-size elements of elem_type (values: n packed native values of that type).
void mxp_gguf_writer_kv_arr(mxp_gguf_writer *w, const char *key, mxp_gguf_type elem_type, const void *values,
                            uint64_t n);
// Array of n strings (strs[i] of lens[i] bytes; not necessarily NUL-terminated).
void mxp_gguf_writer_kv_str_arr(mxp_gguf_writer *w, const char *key, const char *const *strs, const size_t *lens,
                                uint64_t n);

// Declare a tensor; its bytes are filled after finish. nbytes must match the GGML type's size
// for the shape (checked for F32 0, F16 1, Q4_0 2, Q8_0 8, I32 26, BF16 30). *index gets its slot.
void mxp_gguf_writer_tensor(mxp_gguf_writer *w, const char *name, uint32_t ggml_type, int ndim,
                            const int64_t *shape, size_t nbytes, int *index);

// Lay out and serialize; after MXP_OK, w->image / w->size hold the file with zeroed tensor
// data. Reports the first error of the add calls.
mxp_status mxp_gguf_writer_finish(mxp_gguf_writer *w, mxp_err *err);
// Where tensor `index` goes in the image (after finish).
uint8_t *mxp_gguf_writer_data(mxp_gguf_writer *w, int index);

#endif

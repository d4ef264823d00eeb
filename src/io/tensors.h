// tensors.h: the tensors of a model file as the loaders present them, and the loaders.
//
// A loader maps a file read-only and describes every tensor it holds: name, dtype, shape
// (row-major, outermost dimension first: safetensors' order; GGUF's ne[] is reversed into
// this order) and a pointer into the mapping. Nothing is converted or copied at load; use
// mxp_tensor_to_f32 to read values. All loaders treat the file as hostile: every count,
// length, offset and size is checked against the bytes present before it is used, and every
// failure is an mxp_status with a message naming the file and the problem (never a crash).
//
// Each loader has a `_parse` entry point that reads from a memory buffer (for tests and
// fuzzers) and an `_open` entry point that maps a path.
#ifndef MXP_TENSORS_H
#define MXP_TENSORS_H

#include "core/base.h"
#include "quant/format.h"

typedef enum mxp_dtype {
    MXP_DT_F32,
    MXP_DT_F16,
    MXP_DT_BF16,
    MXP_DT_Q8_0,   // GGUF type 8: blocks of 32, f16 scale + 32 x int8 (34 bytes)
    MXP_DT_Q4_0,   // GGUF type 2: blocks of 32, f16 scale + 16 bytes of nibbles (18 bytes)
    MXP_DT_I32,
    // ggml's other block formats (GGUF types 3, 6, 7, 10..14, 20), read through the format
    // table (quant/format.h: ggml's dequantizers)
    MXP_DT_Q4_1,
    MXP_DT_Q5_0,
    MXP_DT_Q5_1,
    MXP_DT_Q2_K,
    MXP_DT_Q3_K,
    MXP_DT_Q4_K,
    MXP_DT_Q5_K,
    MXP_DT_Q6_K,
    MXP_DT_IQ4_NL,
    MXP_DT_COUNT,
} mxp_dtype;

const char *mxp_dtype_name(mxp_dtype dt);
// The format of the table (quant/format.h) whose bytes a dtype holds: every dtype but i32.
// Returns 0 for i32 (and invalid values).
int mxp_dtype_format(mxp_dtype dt, mxp_format_id *f);
// The dtype of a GGML type number (GGUF's tensor type); 0 when mixprec does not read it.
int mxp_dtype_from_ggml(uint32_t ggml_type, mxp_dtype *dt);

#define MXP_MAX_DIMS 4

typedef struct mxp_tensor_info {
    char *name;                    // owned, NUL-terminated
    mxp_dtype dtype;
    int ndim;                      // 0..MXP_MAX_DIMS (0 = scalar)
    int64_t shape[MXP_MAX_DIMS];   // row-major, outermost first; every dim >= 0
    size_t nelem;                  // product of shape (checked)
    const uint8_t *data;           // borrowed from the mapping or buffer; read-only; may be
                                   // unaligned (safetensors): read via memcpy or to_f32
    size_t nbytes;                 // exact byte size for dtype and nelem
} mxp_tensor_info;

// A read-only file mapping.
typedef struct mxp_mapping {
    const uint8_t *base;
    size_t size;
} mxp_mapping;

// Map `path` read-only (PROT_READ, MAP_PRIVATE). Empty files map to base=NULL,size=0.
mxp_status mxp_map_file(mxp_mapping *m, const char *path, mxp_err *err);
void mxp_unmap(mxp_mapping *m);
// Done with [p, p + n) for now: when the range lies in m, the whole pages inside it leave the
// process's resident set (madvise MADV_DONTNEED; the mapping is read-only, so a later read gets
// the file's bytes again). Returns 1 if the range was in m (even when no whole page was).
int mxp_map_release(const mxp_mapping *m, const void *p, size_t n);

// A set of tensors from one or several files. Owns the names and the mappings it made;
// the tensor data pointers borrow from those mappings (or from a caller buffer for _parse).
typedef struct mxp_tensor_set {
    mxp_tensor_info *tensors;  // (n)
    int n, cap;
    mxp_mapping *maps;         // (n_maps) mappings to release on free
    int n_maps, cap_maps;
} mxp_tensor_set;

void mxp_tensor_set_free(mxp_tensor_set *ts);  // releases everything; ts is zeroed
// mxp_map_release of t's bytes, when they lie in one of ts's mappings (not a caller buffer).
void mxp_tensor_set_release(const mxp_tensor_set *ts, const mxp_tensor_info *t);
// Lookup by exact name; NULL if absent.
const mxp_tensor_info *mxp_tensor_find(const mxp_tensor_set *ts, const char *name);
// Convert any float dtype (F32/F16/BF16, and the block formats by dequantization) to f32.
// out holds t->nelem floats.
mxp_status mxp_tensor_to_f32(const mxp_tensor_info *t, float *out, mxp_err *err);

// A tensor's byte range [begin, end) in a file's data section, for the overlap check.
typedef struct mxp_span {
    uint64_t begin, end;
    const char *name;
} mxp_span;
// Sort spans and fail (MXP_ERR_FORMAT naming `label` and both tensors) if two non-empty
// spans overlap. Zero-size tensors overlap nothing.
mxp_status mxp_spans_check_disjoint(mxp_span *spans, size_t n, const char *label, mxp_err *err);

// ---- safetensors ----
// Parse one safetensors image (8-byte little-endian header length, JSON header, data).
// Appends its tensors to ts; `label` names the source in error messages. A tensor name that
// is already in ts is an error (duplicate across shards too). Data pointers borrow from buf.
// On failure ts is left exactly as it was (entries appended by this call are removed).
mxp_status mxp_safetensors_parse(mxp_tensor_set *ts, const uint8_t *buf, size_t size,
                                 const char *label, mxp_err *err);
mxp_status mxp_safetensors_open(mxp_tensor_set *ts, const char *path, mxp_err *err);

// Hugging Face folder: reads dir/model.safetensors, or dir/model.safetensors.index.json and
// every shard it names (each shard checked to hold exactly the tensors the index assigns it).
mxp_status mxp_hf_open_weights(mxp_tensor_set *ts, const char *dir, mxp_err *err);

// The shard index of a sharded folder, model.safetensors.index.json:
//   {"metadata": {...}, "weight_map": {"<tensor name>": "<shard file name>", ...}}
// Shard names must be plain file names (no '/', '\\', "." or ".."); no tensor twice.
typedef struct mxp_st_index {
    int n;                  // tensors listed in weight_map
    const char **names;     // (n) tensor names, sorted (borrowed from root)
    const char **shard_of;  // (n) shard file of names[i] (borrowed from root)
    int n_shards;
    const char **shards;    // (n_shards) distinct shard file names, sorted (borrowed from root)
    struct cJSON *root;     // the parsed index (owned)
} mxp_st_index;
// Parse an index image; errors name `label` and the field. Failure leaves *ix zeroed.
mxp_status mxp_st_index_parse(mxp_st_index *ix, const uint8_t *buf, size_t size, const char *label,
                              mxp_err *err);
// Check that tensors [n0, ts->n) of ts, just read from shard s (shard_label names its file),
// are all assigned to that shard by the index (label names the index).
mxp_status mxp_st_index_check_shard(const mxp_st_index *ix, int s, const mxp_tensor_set *ts, int n0,
                                    const char *label, const char *shard_label, mxp_err *err);
// After every shard passed mxp_st_index_check_shard: check that tensors [n0, ts->n) are every
// tensor the index lists (else the error names a missing one).
mxp_status mxp_st_index_check_complete(const mxp_st_index *ix, const mxp_tensor_set *ts, int n0,
                                       const char *label, mxp_err *err);
void mxp_st_index_free(mxp_st_index *ix);

// ---- GGUF (v2 and v3 read) ----
typedef enum mxp_gguf_type {
    MXP_GGUF_U8 = 0, MXP_GGUF_I8 = 1, MXP_GGUF_U16 = 2, MXP_GGUF_I16 = 3, MXP_GGUF_U32 = 4,
    MXP_GGUF_I32 = 5, MXP_GGUF_F32 = 6, MXP_GGUF_BOOL = 7, MXP_GGUF_STRING = 8,
    MXP_GGUF_ARRAY = 9, MXP_GGUF_U64 = 10, MXP_GGUF_I64 = 11, MXP_GGUF_F64 = 12,
} mxp_gguf_type;

typedef struct mxp_gguf_str {
    const char *ptr;  // borrowed, NOT NUL-terminated
    uint64_t len;
} mxp_gguf_str;

typedef struct mxp_gguf_kv {
    char *key;              // owned, NUL-terminated
    mxp_gguf_type type;
    // scalar value (type != ARRAY, != STRING): widened copies
    uint64_t u;  int64_t i;  double f;
    mxp_gguf_str s;         // type == STRING
    // type == ARRAY
    mxp_gguf_type arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;   // borrowed: for fixed-size element types, arr_n packed LE values
    mxp_gguf_str *arr_strs;    // owned: for arr_type == STRING, arr_n entries (else NULL)
} mxp_gguf_kv;

typedef struct mxp_gguf {
    uint32_t version;
    mxp_gguf_kv *kv;  int n_kv;
    size_t alignment;       // general.alignment or 32
    mxp_tensor_set tensors; // shapes in row-major order (GGUF ne[] reversed)
    mxp_mapping map;        // owned mapping when opened from a path
    char *label;            // owned copy of the path/label, named by the getters' messages
} mxp_gguf;

// Parse a GGUF image into *g (overwritten, not freed first). Tensor data, string values and
// fixed-size arrays borrow from buf; keys, names and string-array tables are owned by g.
// Failure leaves *g zeroed. Unsupported GGML tensor types fail with MXP_ERR_UNSUPPORTED.
// mxp_gguf_open maps the path (owned in g->map) and parses it with the path as label.
// Bytes of one value of a fixed-size GGUF type; 0 for STRING, ARRAY and unknown types.
size_t mxp_gguf_type_size(uint32_t type);

mxp_status mxp_gguf_parse(mxp_gguf *g, const uint8_t *buf, size_t size, const char *label,
                          mxp_err *err);
mxp_status mxp_gguf_open(mxp_gguf *g, const char *path, mxp_err *err);
void mxp_gguf_free(mxp_gguf *g);
const mxp_gguf_kv *mxp_gguf_find(const mxp_gguf *g, const char *key);  // NULL if absent
// Typed getters: MXP_ERR_FORMAT naming the key if present with a wrong type,
// MXP_ERR_FORMAT "missing key" if absent and required; *found=0 when absent and optional.
mxp_status mxp_gguf_get_u64(const mxp_gguf *g, const char *key, uint64_t *out, int *found, mxp_err *err);
mxp_status mxp_gguf_get_f64(const mxp_gguf *g, const char *key, double *out, int *found, mxp_err *err);
mxp_status mxp_gguf_get_str(const mxp_gguf *g, const char *key, mxp_gguf_str *out, int *found, mxp_err *err);

// ---- for loaders (internal to src/io, used by safetensors.c and gguf.c) ----
// Elements per block and bytes per block of a dtype (1 and the element size for plain
// dtypes); 0 for an invalid dtype.
int mxp_dtype_block(mxp_dtype dt, size_t *block_elems, size_t *block_bytes);
// Append one zeroed entry to ts (growing it); NULL on out of memory.
mxp_tensor_info *mxp_tensor_set_append(mxp_tensor_set *ts);
// Drop (and free the names of) entries n0..n-1: undoes a failed loader's appends.
void mxp_tensor_set_rollback(mxp_tensor_set *ts, int n0);
// Record a mapping for ts to release on free; ts owns m after MXP_OK.
mxp_status mxp_tensor_set_add_map(mxp_tensor_set *ts, mxp_mapping m, mxp_err *err);
// MXP_ERR_FORMAT "<label>: tensor '<name>': duplicate tensor name" if two entries share a name.
mxp_status mxp_tensor_set_check_unique(const mxp_tensor_set *ts, const char *label, mxp_err *err);

// ---- safetensors writer (safetensors_write.c) ----
// Write tensors t[0..n) as one safetensors file: an 8-byte little-endian header length, the
// JSON header (tensors sorted by name, each {"dtype", "shape", "data_offsets"}, plus
// "__metadata__": {"format": "pt"} and the n_meta key/value string pairs meta[2k], meta[2k+1]),
// padded with spaces to a multiple of 8 bytes, then the data in the same sorted order.
// Reads name, dtype (F32, F16, BF16 or I32), ndim, shape, data and nbytes of each entry
// (nbytes must equal the element count times the element size). The file is written to a
// temporary name beside `path` and renamed over it, so `path` is either the old file or the
// complete new one. Errors: MXP_ERR_ARG (duplicate or empty names, a dtype safetensors
// cannot hold, nbytes inconsistent with the shape), MXP_ERR_IO naming the path.
mxp_status mxp_safetensors_write(const char *path, const mxp_tensor_info *t, int n,
                                 const char *const *meta, int n_meta, mxp_err *err);
// Write len bytes to `path` the same way (temporary file beside it, fsync, rename).
mxp_status mxp_write_file_atomic(const char *path, const void *data, size_t len, mxp_err *err);
// Check before long work that `path` can be written: its folder exists and is writable and
// the path is not a folder. MXP_ERR_IO naming the path otherwise.
mxp_status mxp_check_writable(const char *path, mxp_err *err);

#endif

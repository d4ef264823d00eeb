// gguf_write.c: the GGUF v3 writer (see gguf_write.h and the byte layout in gguf.c).
// Everything is little-endian; strings are u64 length + bytes, no NUL. general.alignment is
// not written: the default (32) is used, as llama.cpp does.
//
// Must not: write a file (callers use mxp_write_file_atomic on the image), accept duplicate
// keys or tensor names, or a tensor whose byte size disagrees with its type and shape.
#include "io/gguf_write.h"

#include <string.h>

#define ALIGN 32

void mxp_gguf_writer_init(mxp_gguf_writer *w) { memset(w, 0, sizeof *w); }

void mxp_gguf_writer_free(mxp_gguf_writer *w) {
    free(w->kv);
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w->image);
    memset(w, 0, sizeof *w);
}

static int fail(mxp_gguf_writer *w, mxp_status code, const char *msg, const char *name) {
    if (!w->st) w->st = mxp_fail(&w->err, code, "GGUF writer: %s%s", msg, name ? name : "");
    return 0;
}

static int reserve(mxp_gguf_writer *w, size_t more) {
    size_t need;
    if (!mxp_add_ok(w->kv_len, more, &need)) return fail(w, MXP_ERR_NOMEM, "size overflow", NULL);
    if (need <= w->kv_cap) return 1;
    size_t cap = w->kv_cap ? w->kv_cap : 4096;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(w->kv, cap);
    if (!p) return fail(w, MXP_ERR_NOMEM, "out of memory", NULL);
    w->kv = p;
    w->kv_cap = cap;
    return 1;
}

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static int emit(mxp_gguf_writer *w, const void *p, size_t n) {
    if (!reserve(w, n)) return 0;
    if (n) memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return 1;
}

static int emit_u(mxp_gguf_writer *w, uint64_t v, int n) {
    uint8_t b[8];
    put_le(b, v, n);
    return emit(w, b, (size_t)n);
}

static int emit_str(mxp_gguf_writer *w, const char *s, size_t len) { return emit_u(w, len, 8) && emit(w, s, len); }

// Start a KV: check the key is new, write key and type.
static int begin_kv(mxp_gguf_writer *w, const char *key, mxp_gguf_type type) {
    if (w->st) return 0;
    if (!key || !key[0]) return fail(w, MXP_ERR_ARG, "empty key", NULL);
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key)) return fail(w, MXP_ERR_ARG, "duplicate key ", key);
    char **k = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *k);
    if (!k) return fail(w, MXP_ERR_NOMEM, "out of memory", NULL);
    w->keys = k;
    if (!(k[w->n_kv] = mxp_strdup(key))) return fail(w, MXP_ERR_NOMEM, "out of memory", NULL);
    w->n_kv++;
    return emit_str(w, key, strlen(key)) && emit_u(w, (uint64_t)type, 4);
}

// One fixed-size value from native memory, written little-endian.
static int emit_value(mxp_gguf_writer *w, mxp_gguf_type type, const void *v) {
    int n = (int)mxp_gguf_type_size(type);
    uint64_t x = 0;
    switch (n) {
    case 1: { uint8_t a; memcpy(&a, v, 1); x = a; break; }
    case 2: { uint16_t a; memcpy(&a, v, 2); x = a; break; }
    case 4: { uint32_t a; memcpy(&a, v, 4); x = a; break; }
    case 8: memcpy(&x, v, 8); break;
    default: return fail(w, MXP_ERR_ARG, "not a fixed-size value type", NULL);
    }
    return emit_u(w, x, n);
}

void mxp_gguf_writer_kv(mxp_gguf_writer *w, const char *key, mxp_gguf_type type, const void *value) {
    if (!mxp_gguf_type_size(type)) {
        fail(w, MXP_ERR_ARG, "mxp_gguf_writer_kv takes fixed-size types only: ", key);
        return;
    }
    if (begin_kv(w, key, type)) emit_value(w, type, value);
}

void mxp_gguf_writer_kv_u32(mxp_gguf_writer *w, const char *key, uint32_t v) { mxp_gguf_writer_kv(w, key, MXP_GGUF_U32, &v); }
void mxp_gguf_writer_kv_f32(mxp_gguf_writer *w, const char *key, float v) { mxp_gguf_writer_kv(w, key, MXP_GGUF_F32, &v); }
void mxp_gguf_writer_kv_bool(mxp_gguf_writer *w, const char *key, int v) {
    uint8_t b = v ? 1 : 0;
    mxp_gguf_writer_kv(w, key, MXP_GGUF_BOOL, &b);
}

void mxp_gguf_writer_kv_str(mxp_gguf_writer *w, const char *key, const char *s, size_t len) {
    if (begin_kv(w, key, MXP_GGUF_STRING)) emit_str(w, s, len);
}

void mxp_gguf_writer_kv_arr(mxp_gguf_writer *w, const char *key, mxp_gguf_type elem_type, const void *values, uint64_t n) {
    int es = (int)mxp_gguf_type_size(elem_type);
    if (!es) {
        fail(w, MXP_ERR_ARG, "array of a non-fixed-size type (use kv_str_arr): ", key);
        return;
    }
    if (!begin_kv(w, key, MXP_GGUF_ARRAY) || !emit_u(w, (uint64_t)elem_type, 4) || !emit_u(w, n, 8)) return;
    const uint8_t *p = values;
    for (uint64_t i = 0; i < n; i++)
        if (!emit_value(w, elem_type, p + i * (size_t)es)) return;
}

void mxp_gguf_writer_kv_str_arr(mxp_gguf_writer *w, const char *key, const char *const *strs, const size_t *lens,
                                uint64_t n) {
    if (!begin_kv(w, key, MXP_GGUF_ARRAY) || !emit_u(w, MXP_GGUF_STRING, 4) || !emit_u(w, n, 8)) return;
    for (uint64_t i = 0; i < n; i++)
        if (!emit_str(w, strs[i], lens[i])) return;
}

static int ggml_size(uint32_t type, const int64_t *shape, int ndim, size_t *out) {
    size_t be, bb, nel = 1;
    mxp_dtype dt;
    if (!mxp_dtype_from_ggml(type, &dt)) return 0;
    MXP_ASSERT(mxp_dtype_block(dt, &be, &bb));
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || !mxp_mul_ok(nel, (size_t)shape[i], &nel)) return 0;
    // blocks run along the innermost dimension
    if (ndim > 0 && (size_t)shape[ndim - 1] % be) return 0;
    return mxp_mul_ok(nel / be, bb, out);
}

void mxp_gguf_writer_tensor(mxp_gguf_writer *w, const char *name, uint32_t ggml_type, int ndim, const int64_t *shape,
                            size_t nbytes, int *index) {
    *index = 0;
    if (w->st) return;
    size_t want;
    if (!name || !name[0]) {
        fail(w, MXP_ERR_ARG, "empty tensor name", NULL);
        return;
    }
    if (ndim < 1 || ndim > MXP_MAX_DIMS || !ggml_size(ggml_type, shape, ndim, &want) || want != nbytes) {
        fail(w, MXP_ERR_ARG, "bad type, shape or byte size for tensor ", name);
        return;
    }
    for (int i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) {
            fail(w, MXP_ERR_ARG, "duplicate tensor name ", name);
            return;
        }
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        mxp_gguf_wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) {
            fail(w, MXP_ERR_NOMEM, "out of memory", NULL);
            return;
        }
        w->t = t;
        w->cap_t = cap;
    }
    mxp_gguf_wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = mxp_strdup(name))) {
        fail(w, MXP_ERR_NOMEM, "out of memory", NULL);
        return;
    }
    t->ggml_type = ggml_type;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->nbytes = nbytes;
    *index = w->n_t++;
}

static size_t pad(size_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

mxp_status mxp_gguf_writer_finish(mxp_gguf_writer *w, mxp_err *err) {
    if (w->st) {
        if (err) *err = w->err;
        return w->st;
    }
    // tensor infos size and data offsets
    size_t info = 0, data = 0;
    for (int i = 0; i < w->n_t; i++) {
        const mxp_gguf_wtensor *t = &w->t[i];
        info += 8 + strlen(t->name) + 4 + 8 * (size_t)t->ndim + 4 + 8;
        w->t[i].offset = data;
        if (!mxp_add_ok(data, pad(t->nbytes), &data)) return mxp_fail(err, MXP_ERR_NOMEM, "GGUF writer: size overflow");
    }
    size_t head = 4 + 4 + 8 + 8 + w->kv_len + info;
    w->data_start = pad(head);
    if (!mxp_add_ok(w->data_start, data, &w->size)) return mxp_fail(err, MXP_ERR_NOMEM, "GGUF writer: size overflow");
    free(w->image);
    w->image = calloc(1, w->size ? w->size : 1);
    if (!w->image) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory for a %zu-byte GGUF image", w->size);
    uint8_t *p = w->image;
    memcpy(p, "GGUF", 4);
    put_le(p + 4, 3, 4);
    put_le(p + 8, (uint64_t)w->n_t, 8);
    put_le(p + 16, w->n_kv, 8);
    p += 24;
    if (w->kv_len) memcpy(p, w->kv, w->kv_len);
    p += w->kv_len;
    for (int i = 0; i < w->n_t; i++) {
        const mxp_gguf_wtensor *t = &w->t[i];
        size_t len = strlen(t->name);
        put_le(p, len, 8);
        memcpy(p + 8, t->name, len);
        p += 8 + len;
        put_le(p, (uint64_t)t->ndim, 4);
        p += 4;
        for (int d = t->ndim - 1; d >= 0; d--, p += 8) put_le(p, (uint64_t)t->shape[d], 8);  // ne[0] innermost
        put_le(p, t->ggml_type, 4);
        put_le(p + 4, t->offset, 8);
        p += 12;
    }
    MXP_ASSERT((size_t)(p - w->image) == head);
    return MXP_OK;
}

uint8_t *mxp_gguf_writer_data(mxp_gguf_writer *w, int index) {
    MXP_ASSERT(w->image && index >= 0 && index < w->n_t);
    return w->image + w->data_start + w->t[index].offset;
}

// gguf.c: the GGUF reader (versions 2 and 3), from a memory buffer or a mapped path.
//
// Byte layout (all little-endian):
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x  { string key | u32 type | value }
//           string = u64 len + len bytes (no NUL); array = u32 elem type + u64 n + n elems
//   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset }
//   padding to `alignment` (general.alignment, u32, power of two; default 32)
//   data section: tensor i's bytes at data_start + offset_i (offset_i a multiple of alignment)
// ne[0] is the innermost (contiguous) dimension; shapes are reported reversed (row-major).
//
// Must not: read a byte before checking it is there, allocate from an unchecked count,
// accept nested arrays, overlapping or out-of-range tensors, duplicate names or keys, or
// leave anything allocated after a failure (mxp_gguf_free is safe on what parse leaves).
#include "io/tensors.h"

#include <string.h>

#define GGUF_MAGIC 0x46554747u  // "GGUF" read as a little-endian u32
#define GGUF_DEFAULT_ALIGN 32

typedef struct rd {
    const uint8_t *p;
    size_t size, off;
    const char *label;
    mxp_err *err;
} rd;

static size_t left(const rd *r) { return r->size - r->off; }

static mxp_status need(rd *r, size_t n, const char *what) {
    if (n > left(r))
        return mxp_fail(r->err, MXP_ERR_FORMAT,
                        "%s: truncated: %s needs %zu bytes at offset %zu but %zu remain", r->label,
                        what, n, r->off, left(r));
    return MXP_OK;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static mxp_status rd_u32(rd *r, uint32_t *v, const char *what) {
    mxp_status st = need(r, 4, what);
    if (st) return st;
    *v = (uint32_t)le(r->p + r->off, 4);
    r->off += 4;
    return MXP_OK;
}

static mxp_status rd_u64(rd *r, uint64_t *v, const char *what) {
    mxp_status st = need(r, 8, what);
    if (st) return st;
    *v = le(r->p + r->off, 8);
    r->off += 8;
    return MXP_OK;
}

static mxp_status rd_str(rd *r, mxp_gguf_str *s, const char *what) {
    uint64_t len;
    mxp_status st = rd_u64(r, &len, what);
    if (st) return st;
    if (len > left(r))
        return mxp_fail(r->err, MXP_ERR_FORMAT,
                        "%s: %s: string length %llu runs past the end (%zu bytes remain)", r->label,
                        what, (unsigned long long)len, left(r));
    s->ptr = (const char *)(r->p + r->off);
    s->len = len;
    r->off += (size_t)len;
    return MXP_OK;
}

// A key or tensor name as an owned C string; embedded NUL bytes are rejected (two distinct
// names would otherwise compare equal).
static mxp_status rd_name(rd *r, char **out, const char *what) {
    mxp_gguf_str s;
    mxp_status st = rd_str(r, &s, what);
    if (st) return st;
    if (s.len == 0) return mxp_fail(r->err, MXP_ERR_FORMAT, "%s: %s is empty", r->label, what);
    if (memchr(s.ptr, 0, (size_t)s.len))
        return mxp_fail(r->err, MXP_ERR_FORMAT, "%s: %s contains a NUL byte", r->label, what);
    char *c = malloc((size_t)s.len + 1);
    if (!c) return mxp_fail(r->err, MXP_ERR_NOMEM, "%s: out of memory reading %s", r->label, what);
    memcpy(c, s.ptr, (size_t)s.len);
    c[s.len] = 0;
    *out = c;
    return MXP_OK;
}

size_t mxp_gguf_type_size(uint32_t t) {
    switch (t) {
    case MXP_GGUF_U8: case MXP_GGUF_I8: case MXP_GGUF_BOOL: return 1;
    case MXP_GGUF_U16: case MXP_GGUF_I16: return 2;
    case MXP_GGUF_U32: case MXP_GGUF_I32: case MXP_GGUF_F32: return 4;
    case MXP_GGUF_U64: case MXP_GGUF_I64: case MXP_GGUF_F64: return 8;
    default: return 0;
    }
}

static int is_int_type(mxp_gguf_type t) {
    return t == MXP_GGUF_U8 || t == MXP_GGUF_I8 || t == MXP_GGUF_U16 || t == MXP_GGUF_I16 ||
           t == MXP_GGUF_U32 || t == MXP_GGUF_I32 || t == MXP_GGUF_U64 || t == MXP_GGUF_I64;
}

static int is_signed_type(mxp_gguf_type t) {
    return t == MXP_GGUF_I8 || t == MXP_GGUF_I16 || t == MXP_GGUF_I32 || t == MXP_GGUF_I64;
}

// Fill kv's widened scalar copies from n little-endian bytes at p.
static void set_scalar(mxp_gguf_kv *kv, const uint8_t *p, size_t n) {
    uint64_t raw = le(p, (int)n);
    switch (kv->type) {
    case MXP_GGUF_F32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        kv->f = f;
        return;
    }
    case MXP_GGUF_F64: memcpy(&kv->f, &raw, 8); return;
    case MXP_GGUF_I8: kv->i = (int8_t)raw; break;
    case MXP_GGUF_I16: kv->i = (int16_t)raw; break;
    case MXP_GGUF_I32: kv->i = (int32_t)raw; break;
    case MXP_GGUF_I64: kv->i = (int64_t)raw; break;
    default: kv->u = raw; kv->i = (int64_t)raw; kv->f = (double)raw; return;  // unsigned, bool
    }
    kv->u = (uint64_t)kv->i;
    kv->f = (double)kv->i;
}

static mxp_status read_kv(rd *r, mxp_gguf_kv *kv, uint64_t index, mxp_err *err) {
    char what[64];
    snprintf(what, sizeof what, "key #%llu", (unsigned long long)index);
    mxp_status st = rd_name(r, &kv->key, what);
    if (st) return st;
    uint32_t type;
    if ((st = rd_u32(r, &type, "value type"))) return st;
    const char *key = kv->key;
    if (type > MXP_GGUF_F64)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key '%s': unknown value type %u", r->label, key,
                        type);
    kv->type = (mxp_gguf_type)type;
    char kw[300];
    snprintf(kw, sizeof kw, "key '%.256s'", key);
    if (type == MXP_GGUF_STRING) return rd_str(r, &kv->s, kw);
    if (type != MXP_GGUF_ARRAY) {
        size_t n = mxp_gguf_type_size(type);
        if ((st = need(r, n, kw))) return st;
        if (type == MXP_GGUF_BOOL && r->p[r->off] > 1)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: key '%s': bool value %u is not 0 or 1",
                            r->label, key, r->p[r->off]);
        set_scalar(kv, r->p + r->off, n);
        r->off += n;
        return MXP_OK;
    }
    uint32_t at;
    uint64_t n;
    if ((st = rd_u32(r, &at, kw)) || (st = rd_u64(r, &n, kw))) return st;
    if (at == MXP_GGUF_ARRAY)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: key '%s': nested arrays are not supported",
                        r->label, key);
    if (at > MXP_GGUF_F64)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key '%s': unknown array element type %u",
                        r->label, key, at);
    kv->arr_type = (mxp_gguf_type)at;
    if (at == MXP_GGUF_STRING) {
        // each string needs at least its 8-byte length
        if (n > left(r) / 8)
            return mxp_fail(err, MXP_ERR_FORMAT,
                            "%s: key '%s': array count %llu exceeds the bytes left (%zu)",
                            r->label, key, (unsigned long long)n, left(r));
        kv->arr_strs = mxp_calloc((size_t)n, sizeof *kv->arr_strs);
        if (!kv->arr_strs)
            return mxp_fail(err, MXP_ERR_NOMEM, "%s: key '%s': out of memory", r->label, key);
        kv->arr_n = n;  // set only once the storage exists, so free never walks past it
        for (uint64_t i = 0; i < n; i++)
            if ((st = rd_str(r, &kv->arr_strs[i], kw))) return st;
        return MXP_OK;
    }
    size_t es = mxp_gguf_type_size(at);
    if (n > left(r) / es)
        return mxp_fail(err, MXP_ERR_FORMAT,
                        "%s: key '%s': array count %llu exceeds the bytes left (%zu)", r->label, key,
                        (unsigned long long)n, left(r));
    if (at == MXP_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (r->p[r->off + i] > 1)
                return mxp_fail(err, MXP_ERR_FORMAT,
                                "%s: key '%s': bool element %llu is not 0 or 1", r->label, key,
                                (unsigned long long)i);
    kv->arr_n = n;
    kv->arr_data = r->p + r->off;
    r->off += (size_t)n * es;
    return MXP_OK;
}

static int cmp_kv_key(const void *a, const void *b) {
    return strcmp((*(const mxp_gguf_kv *const *)a)->key, (*(const mxp_gguf_kv *const *)b)->key);
}

static mxp_status check_unique_keys(const mxp_gguf *g, const char *label, mxp_err *err) {
    if (g->n_kv < 2) return MXP_OK;
    const mxp_gguf_kv **p = mxp_calloc((size_t)g->n_kv, sizeof *p);
    if (!p) return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", label);
    for (int i = 0; i < g->n_kv; i++) p[i] = &g->kv[i];
    qsort(p, (size_t)g->n_kv, sizeof *p, cmp_kv_key);
    mxp_status st = MXP_OK;
    for (int i = 1; i < g->n_kv && !st; i++)
        if (strcmp(p[i - 1]->key, p[i]->key) == 0)
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: key '%s': duplicate key", label, p[i]->key);
    free(p);
    return st;
}

// One tensor info record; fills t (name owned by t on return, even on failure) and *offset.
static mxp_status read_tensor_info(rd *r, mxp_tensor_info *t, uint64_t index, uint64_t *offset,
                                   mxp_err *err) {
    char what[300];
    snprintf(what, sizeof what, "tensor #%llu name", (unsigned long long)index);
    mxp_status st = rd_name(r, &t->name, what);
    if (st) return st;
    snprintf(what, sizeof what, "tensor '%.256s'", t->name);
    const char *name = what;
    uint32_t nd, type;
    if ((st = rd_u32(r, &nd, name))) return st;
    if (nd > MXP_MAX_DIMS)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: %s: n_dims %u exceeds %d", r->label,
                        name, nd, MXP_MAX_DIMS);
    uint64_t ne[MXP_MAX_DIMS];
    size_t nelem = 1;
    for (uint32_t d = 0; d < nd; d++) {
        if ((st = rd_u64(r, &ne[d], name))) return st;
        if (ne[d] > (uint64_t)INT64_MAX)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: %s: ne[%u] = %llu is negative",
                            r->label, name, d, (unsigned long long)ne[d]);
        if (!mxp_mul_ok(nelem, (size_t)ne[d], &nelem))
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: %s: element count overflows",
                            r->label, name);
    }
    if ((st = rd_u32(r, &type, name)) || (st = rd_u64(r, offset, name))) return st;
    if (!mxp_dtype_from_ggml(type, &t->dtype))
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: %s: unsupported GGML type %u",
                        r->label, name, type);
    t->ndim = (int)nd;
    for (uint32_t d = 0; d < nd; d++) t->shape[nd - 1 - d] = (int64_t)ne[d];
    t->nelem = nelem;
    size_t be, bb;
    MXP_ASSERT(mxp_dtype_block(t->dtype, &be, &bb));
    if (be > 1 && (nd == 0 || ne[0] % be != 0))
        return mxp_fail(err, MXP_ERR_FORMAT,
                        "%s: %s: row length %llu is not a multiple of the %s block size %zu",
                        r->label, name, nd ? (unsigned long long)ne[0] : 1ull,
                        mxp_dtype_name(t->dtype), be);
    if (!mxp_mul_ok(nelem / be, bb, &t->nbytes))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: %s: byte size overflows", r->label, name);
    return MXP_OK;
}

mxp_status mxp_gguf_parse(mxp_gguf *g, const uint8_t *buf, size_t size, const char *label,
                          mxp_err *err) {
    MXP_ASSERT(g && (buf || size == 0));
    memset(g, 0, sizeof *g);
    if (!label) label = "(buffer)";
    rd r = {buf, size, 0, label, err};
    mxp_span *spans = NULL;
    uint32_t magic, version;
    uint64_t n_tensors, n_kv;
    mxp_status st;
    if ((st = rd_u32(&r, &magic, "magic"))) goto fail;
    if (magic != GGUF_MAGIC) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: bad magic 0x%08x (not a GGUF file)", label, magic);
        goto fail;
    }
    if ((st = rd_u32(&r, &version, "version"))) goto fail;
    if (version != 2 && version != 3) {
        st = mxp_fail(err, version == 1 ? MXP_ERR_UNSUPPORTED : MXP_ERR_FORMAT,
                      "%s: GGUF version %u not supported (2 and 3 are)", label, version);
        goto fail;
    }
    g->version = version;
    g->label = mxp_strdup(label);
    if (!g->label) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", label);
        goto fail;
    }
    if ((st = rd_u64(&r, &n_tensors, "tensor count")) || (st = rd_u64(&r, &n_kv, "key count")))
        goto fail;
    // smallest kv: 8-byte key length + 1 key byte + 4-byte type + 1-byte value
    if (n_kv > left(&r) / 14 || n_kv > (uint64_t)INT32_MAX) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: key count %llu exceeds the bytes left (%zu)", label,
                      (unsigned long long)n_kv, left(&r));
        goto fail;
    }
    g->kv = mxp_calloc((size_t)n_kv, sizeof *g->kv);
    if (!g->kv) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", label);
        goto fail;
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv++;  // counted before reading so free() sees a partly read entry
        if ((st = read_kv(&r, &g->kv[i], i, err))) goto fail;
    }
    if ((st = check_unique_keys(g, label, err))) goto fail;

    g->alignment = GGUF_DEFAULT_ALIGN;
    const mxp_gguf_kv *al = mxp_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != MXP_GGUF_U32) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: key 'general.alignment' must be a u32", label);
            goto fail;
        }
        if (al->u == 0 || (al->u & (al->u - 1)) != 0) {
            st = mxp_fail(err, MXP_ERR_FORMAT,
                          "%s: key 'general.alignment' = %llu is not a nonzero power of two",
                          label, (unsigned long long)al->u);
            goto fail;
        }
        g->alignment = (size_t)al->u;
    }

    // smallest tensor info: 8 + 1 name bytes, 4 n_dims, 4 type, 8 offset
    if (n_tensors > left(&r) / 25 || n_tensors > ((uint64_t)1 << 28)) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor count %llu exceeds the bytes left (%zu)",
                      label, (unsigned long long)n_tensors, left(&r));
        goto fail;
    }
    spans = mxp_calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *spans);
    if (!spans) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", label);
        goto fail;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        mxp_tensor_info *t = mxp_tensor_set_append(&g->tensors);
        if (!t) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", label);
            goto fail;
        }
        if ((st = read_tensor_info(&r, t, i, &spans[i].begin, err))) goto fail;
        spans[i].name = t->name;
    }
    if ((st = mxp_tensor_set_check_unique(&g->tensors, label, err))) goto fail;

    // Data section: starts at the header end rounded up to the alignment.
    size_t data_start = r.off;
    size_t rem = data_start % g->alignment;
    if (rem && !mxp_add_ok(data_start, g->alignment - rem, &data_start)) data_start = SIZE_MAX;
    size_t data_size = data_start <= size ? size - data_start : 0;
    if (n_tensors && data_start > size) {
        st = mxp_fail(err, MXP_ERR_FORMAT,
                      "%s: truncated: data section would start at %zu, past the end (%zu bytes)",
                      label, data_start, size);
        goto fail;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        mxp_tensor_info *t = &g->tensors.tensors[i];
        uint64_t off = spans[i].begin;
        if (off % g->alignment != 0) {
            st = mxp_fail(err, MXP_ERR_FORMAT,
                          "%s: tensor '%s': offset %llu is not aligned to %zu", label, t->name,
                          (unsigned long long)off, g->alignment);
            goto fail;
        }
        if (off > data_size || t->nbytes > data_size - off) {
            st = mxp_fail(err, MXP_ERR_FORMAT,
                          "%s: tensor '%s': bytes [%llu, +%zu) out of range (data section is %zu "
                          "bytes)",
                          label, t->name, (unsigned long long)off, t->nbytes, data_size);
            goto fail;
        }
        t->data = buf + data_start + off;
        spans[i].end = off + t->nbytes;
    }
    if ((st = mxp_spans_check_disjoint(spans, (size_t)n_tensors, label, err))) goto fail;
    free(spans);
    return MXP_OK;
fail:
    free(spans);
    mxp_gguf_free(g);
    return st;
}

mxp_status mxp_gguf_open(mxp_gguf *g, const char *path, mxp_err *err) {
    MXP_ASSERT(g && path);
    memset(g, 0, sizeof *g);
    mxp_mapping m;
    mxp_status st = mxp_map_file(&m, path, err);
    if (st) return st;
    st = mxp_gguf_parse(g, m.base, m.size, path, err);
    if (st) {
        mxp_unmap(&m);
        return st;
    }
    g->map = m;
    return MXP_OK;
}

void mxp_gguf_free(mxp_gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].arr_strs);
    }
    free(g->kv);
    free(g->label);
    mxp_tensor_set_free(&g->tensors);
    mxp_unmap(&g->map);
    memset(g, 0, sizeof *g);
}

const mxp_gguf_kv *mxp_gguf_find(const mxp_gguf *g, const char *key) {
    if (!g || !key) return NULL;
    for (int i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

static const char *glabel(const mxp_gguf *g) { return g->label ? g->label : "GGUF"; }

static mxp_status lookup(const mxp_gguf *g, const char *key, const mxp_gguf_kv **kv, int *found,
                         mxp_err *err) {
    *kv = mxp_gguf_find(g, key);
    if (found) *found = *kv != NULL;
    if (!*kv && !found) return mxp_fail(err, MXP_ERR_FORMAT, "%s: missing key '%s'", glabel(g), key);
    return MXP_OK;
}

mxp_status mxp_gguf_get_u64(const mxp_gguf *g, const char *key, uint64_t *out, int *found,
                            mxp_err *err) {
    const mxp_gguf_kv *kv;
    mxp_status st = lookup(g, key, &kv, found, err);
    if (st || !kv) return st;
    if (!is_int_type(kv->type))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key '%s' is not an integer", glabel(g), key);
    if (is_signed_type(kv->type) && kv->i < 0)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key '%s' = %lld is negative", glabel(g),
                        key, (long long)kv->i);
    *out = kv->u;
    return MXP_OK;
}

mxp_status mxp_gguf_get_f64(const mxp_gguf *g, const char *key, double *out, int *found,
                            mxp_err *err) {
    const mxp_gguf_kv *kv;
    mxp_status st = lookup(g, key, &kv, found, err);
    if (st || !kv) return st;
    if (kv->type != MXP_GGUF_F32 && kv->type != MXP_GGUF_F64 && !is_int_type(kv->type))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key '%s' is not a number", glabel(g), key);
    *out = kv->f;
    return MXP_OK;
}

mxp_status mxp_gguf_get_str(const mxp_gguf *g, const char *key, mxp_gguf_str *out, int *found,
                            mxp_err *err) {
    const mxp_gguf_kv *kv;
    mxp_status st = lookup(g, key, &kv, found, err);
    if (st || !kv) return st;
    if (kv->type != MXP_GGUF_STRING)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: key '%s' is not a string", glabel(g), key);
    *out = kv->s;
    return MXP_OK;
}

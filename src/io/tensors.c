// tensors.c: the tensor set shared by every loader (append, rollback, lookup, free), dtype
// names and sizes, and conversion of a tensor's bytes to f32.
//
// Must not: copy tensor data at load, or trust anything about the bytes it converts beyond
// what the loader already checked (nelem and nbytes agree with the dtype). Data pointers may
// be unaligned (safetensors headers have any length), so values are read with memcpy.
#include "io/tensors.h"

#include <string.h>

#include "quant/format.h"

// dtype -> format of the table (i32 has none)
static const struct {
    mxp_format_id fmt;
    bool has_fmt;
} dtype_fmt[MXP_DT_COUNT] = {
    [MXP_DT_F32] = {MXP_FMT_F32, true},     [MXP_DT_F16] = {MXP_FMT_F16, true},
    [MXP_DT_BF16] = {MXP_FMT_BF16, true},   [MXP_DT_Q8_0] = {MXP_FMT_Q8_0, true},
    [MXP_DT_Q4_0] = {MXP_FMT_Q4_0, true},   [MXP_DT_I32] = {MXP_FMT_F32, false},
    [MXP_DT_Q4_1] = {MXP_FMT_Q4_1, true},   [MXP_DT_Q5_0] = {MXP_FMT_Q5_0, true},
    [MXP_DT_Q5_1] = {MXP_FMT_Q5_1, true},   [MXP_DT_Q2_K] = {MXP_FMT_Q2_K, true},
    [MXP_DT_Q3_K] = {MXP_FMT_Q3_K, true},   [MXP_DT_Q4_K] = {MXP_FMT_Q4_K, true},
    [MXP_DT_Q5_K] = {MXP_FMT_Q5_K, true},   [MXP_DT_Q6_K] = {MXP_FMT_Q6_K, true},
    [MXP_DT_IQ4_NL] = {MXP_FMT_IQ4_NL, true},
};

int mxp_dtype_format(mxp_dtype dt, mxp_format_id *f) {
    if (dt < 0 || dt >= MXP_DT_COUNT || !dtype_fmt[dt].has_fmt) return 0;
    *f = dtype_fmt[dt].fmt;
    return 1;
}

int mxp_dtype_from_ggml(uint32_t ggml_type, mxp_dtype *dt) {
    if (ggml_type == 26) {  // GGML_TYPE_I32
        *dt = MXP_DT_I32;
        return 1;
    }
    for (int d = 0; d < MXP_DT_COUNT; d++) {
        mxp_format_id f;
        if (mxp_dtype_format((mxp_dtype)d, &f) && mxp_format_get(f)->ggml_type == ggml_type) {
            *dt = (mxp_dtype)d;
            return 1;
        }
    }
    return 0;
}

const char *mxp_dtype_name(mxp_dtype dt) {
    mxp_format_id f;
    if (dt == MXP_DT_I32) return "i32";
    return mxp_dtype_format(dt, &f) ? mxp_format_get(f)->name : "unknown";
}

int mxp_dtype_block(mxp_dtype dt, size_t *block_elems, size_t *block_bytes) {
    mxp_format_id f;
    if (dt == MXP_DT_I32) {
        *block_elems = 1, *block_bytes = 4;
        return 1;
    }
    if (!mxp_dtype_format(dt, &f) || f == MXP_FMT_F8_E4M3) return 0;
    *block_elems = (size_t)mxp_format_get(f)->block_size;
    *block_bytes = (size_t)mxp_format_get(f)->block_bytes;
    return 1;
}

void mxp_tensor_set_release(const mxp_tensor_set *ts, const mxp_tensor_info *t) {
    for (int i = 0; i < ts->n_maps; i++)
        if (mxp_map_release(&ts->maps[i], t->data, t->nbytes)) return;
}

void mxp_tensor_set_free(mxp_tensor_set *ts) {
    if (!ts) return;
    for (int i = 0; i < ts->n; i++) free(ts->tensors[i].name);
    free(ts->tensors);
    for (int i = 0; i < ts->n_maps; i++) mxp_unmap(&ts->maps[i]);
    free(ts->maps);
    memset(ts, 0, sizeof *ts);
}

mxp_tensor_info *mxp_tensor_set_append(mxp_tensor_set *ts) {
    if (ts->n < 0 || ts->cap < ts->n) return NULL;  // corrupted set: refuse, never index it
    if (ts->n == ts->cap) {
        if (ts->cap > (1 << 28)) return NULL;
        int cap = ts->cap ? ts->cap * 2 : 16;
        mxp_tensor_info *t = realloc(ts->tensors, (size_t)cap * sizeof *t);
        if (!t) return NULL;
        ts->tensors = t;
        ts->cap = cap;
    }
    mxp_tensor_info *t = &ts->tensors[ts->n++];
    memset(t, 0, sizeof *t);
    return t;
}

void mxp_tensor_set_rollback(mxp_tensor_set *ts, int n0) {
    MXP_ASSERT(n0 >= 0 && n0 <= ts->n);
    for (int i = n0; i < ts->n; i++) free(ts->tensors[i].name);
    ts->n = n0;
}

mxp_status mxp_tensor_set_add_map(mxp_tensor_set *ts, mxp_mapping m, mxp_err *err) {
    if (ts->n_maps == ts->cap_maps) {
        int cap = ts->cap_maps ? ts->cap_maps * 2 : 4;
        mxp_mapping *p = realloc(ts->maps, (size_t)cap * sizeof *p);
        if (!p) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory recording a file mapping");
        ts->maps = p;
        ts->cap_maps = cap;
    }
    ts->maps[ts->n_maps++] = m;
    return MXP_OK;
}

static int cmp_name_ptr(const void *a, const void *b) {
    const mxp_tensor_info *x = *(const mxp_tensor_info *const *)a;
    const mxp_tensor_info *y = *(const mxp_tensor_info *const *)b;
    return strcmp(x->name, y->name);
}

mxp_status mxp_tensor_set_check_unique(const mxp_tensor_set *ts, const char *label,
                                       mxp_err *err) {
    if (ts->n < 2) return MXP_OK;
    const mxp_tensor_info **p = mxp_calloc((size_t)ts->n, sizeof *p);
    if (!p) return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory checking tensor names", label);
    for (int i = 0; i < ts->n; i++) p[i] = &ts->tensors[i];
    qsort(p, (size_t)ts->n, sizeof *p, cmp_name_ptr);
    mxp_status st = MXP_OK;
    for (int i = 1; i < ts->n; i++) {
        if (strcmp(p[i - 1]->name, p[i]->name) == 0) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': duplicate tensor name", label,
                          p[i]->name);
            break;
        }
    }
    free(p);
    return st;
}

const mxp_tensor_info *mxp_tensor_find(const mxp_tensor_set *ts, const char *name) {
    if (!ts || !name) return NULL;
    for (int i = 0; i < ts->n; i++)
        if (strcmp(ts->tensors[i].name, name) == 0) return &ts->tensors[i];
    return NULL;
}

// IEEE half -> float, exact for every input (subnormals, infinities, NaN payload kept).
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);  // inf or NaN
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);  // rebias 15 -> 127
    } else if (mant == 0) {
        bits = sign;  // signed zero
    } else {
        // subnormal: value = mant * 2^-24; normalise the mantissa
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while (!(mant & 0x400u));
        mant &= 0x3FFu;
        bits = sign | ((uint32_t)(112 - e) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

// Block formats: the format table's dequantizer, one innermost row at a time (blocks run
// along the innermost dimension). Rows at an address the block struct may not be read from (odd:
// the f16 scale is a uint16_t) are copied to an aligned buffer first.
static mxp_status dequantize_blocks(const mxp_tensor_info *t, float *out, mxp_err *err) {
    const char *name = t->name ? t->name : "(unnamed)";
    mxp_format_id fid;
    MXP_ASSERT(mxp_dtype_format(t->dtype, &fid));
    const mxp_format *f = mxp_format_get(fid);
    if (t->nelem == 0) return MXP_OK;
    int64_t n = t->ndim > 0 ? t->shape[t->ndim - 1] : 1;
    if (n <= 0 || n % f->block_size || n > (1 << 30))
        return mxp_fail(err, MXP_ERR_FORMAT, "tensor '%s': innermost dimension %lld is not a multiple of %d (%s blocks)",
                        name, (long long)n, f->block_size, f->name);
    size_t row_bytes = (size_t)(n / f->block_size) * (size_t)f->block_bytes;
    size_t rows = t->nelem / (size_t)n;
    uint8_t *tmp = NULL;
    if (((uintptr_t)t->data | row_bytes) % 2) {
        tmp = mxp_aligned_alloc(row_bytes);
        if (!tmp) return mxp_fail(err, MXP_ERR_NOMEM, "tensor '%s': out of memory", name);
    }
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *src = t->data + r * row_bytes;
        if (tmp) {
            memcpy(tmp, src, row_bytes);
            src = tmp;
        }
        f->dequantize_row(src, out + r * (size_t)n, (int)n);
    }
    free(tmp);
    return MXP_OK;
}

mxp_status mxp_tensor_to_f32(const mxp_tensor_info *t, float *out, mxp_err *err) {
    MXP_ASSERT(t && (out || t->nelem == 0));
    const char *name = t->name ? t->name : "(unnamed)";
    size_t be, bb, need;
    if (!mxp_dtype_block(t->dtype, &be, &bb))
        return mxp_fail(err, MXP_ERR_ARG, "tensor '%s': invalid dtype %d", name, (int)t->dtype);
    if (t->nelem % be != 0 || !mxp_mul_ok(t->nelem / be, bb, &need) || need != t->nbytes ||
        (need && !t->data))
        return mxp_fail(err, MXP_ERR_ARG, "tensor '%s': byte size %zu does not match %zu %s elements",
                        name, t->nbytes, t->nelem, mxp_dtype_name(t->dtype));
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case MXP_DT_F32:
        if (t->nelem) memcpy(out, p, t->nelem * 4);
        return MXP_OK;
    case MXP_DT_F16:
        for (size_t i = 0; i < t->nelem; i++) out[i] = f16_to_f32(rd16(p + 2 * i));
        return MXP_OK;
    case MXP_DT_BF16:
        for (size_t i = 0; i < t->nelem; i++) out[i] = bf16_to_f32(rd16(p + 2 * i));
        return MXP_OK;
    case MXP_DT_I32:
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "tensor '%s': dtype i32 is not a float dtype",
                        name);
    case MXP_DT_COUNT: break;
    default:  // the block formats
        return dequantize_blocks(t, out, err);
    }
    return mxp_fail(err, MXP_ERR_ARG, "tensor '%s': invalid dtype", name);
}

static int cmp_span(const void *a, const void *b) {
    const mxp_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

mxp_status mxp_spans_check_disjoint(mxp_span *spans, size_t n, const char *label, mxp_err *err) {
    if (n) qsort(spans, n, sizeof *spans, cmp_span);
    // compare each sized span with the furthest end seen so far
    uint64_t far = 0;
    const char *far_name = NULL;
    for (size_t i = 0; i < n; i++) {
        if (spans[i].end == spans[i].begin) continue;
        if (far_name && spans[i].begin < far)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data", label, far_name,
                            spans[i].name);
        if (spans[i].end > far || !far_name) {
            far = spans[i].end;
            far_name = spans[i].name;
        }
    }
    return MXP_OK;
}

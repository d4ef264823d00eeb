// safetensors.c: the safetensors reader and the Hugging Face weights folder (single file or
// sharded with model.safetensors.index.json).
//
// Byte layout of a safetensors file:
//   [0, 8)          u64 little-endian N: length of the JSON header
//   [8, 8+N)        UTF-8 JSON object (may be padded with trailing spaces):
//                     "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...],
//                                       "data_offsets": [begin, end]}, ...
//                     "__metadata__": {"key": "string value", ...}   (optional)
//   [8+N, size)     data section; a tensor's bytes are [8+N+begin, 8+N+end)
//
// Only the header is read; data pointers borrow from the caller's buffer or the mapping, so
// opening a 4 GB file costs one header parse. Must not: trust any number in the header
// (every dim, offset and size is checked, products with overflow checks), accept overlapping
// or out-of-range tensors, or leave anything appended or allocated after a failure.
#include "io/tensors.h"

#include <cJSON.h>
#include <string.h>
#include <sys/stat.h>

#define ST_MAX_HEADER ((uint64_t)100 << 20)  // 100 MB, the format's own limit
#define ST_MAX_INT 9007199254740992.0         // 2^53: larger JSON numbers are not exact

typedef struct st_dtype {
    const char *name;
    int supported;
    mxp_dtype dt;
} st_dtype;

// Every dtype the safetensors format defines; the unsupported ones get a clean
// MXP_ERR_UNSUPPORTED instead of a "format error".
static const st_dtype st_dtypes[] = {
    {"F32", 1, MXP_DT_F32},   {"F16", 1, MXP_DT_F16},  {"BF16", 1, MXP_DT_BF16},
    {"I32", 1, MXP_DT_I32},   {"F64", 0, MXP_DT_F32},  {"I64", 0, MXP_DT_F32},
    {"U64", 0, MXP_DT_F32},   {"U32", 0, MXP_DT_F32},  {"I16", 0, MXP_DT_F32},
    {"U16", 0, MXP_DT_F32},   {"I8", 0, MXP_DT_F32},   {"U8", 0, MXP_DT_F32},
    {"BOOL", 0, MXP_DT_F32},  {"F8_E4M3", 0, MXP_DT_F32}, {"F8_E5M2", 0, MXP_DT_F32},
    {"F8_E8M0", 0, MXP_DT_F32}, {"F6_E2M3", 0, MXP_DT_F32}, {"F6_E3M2", 0, MXP_DT_F32},
    {"F4", 0, MXP_DT_F32},
};


// A JSON number that is an exact non-negative integer below 2^53.
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_INT || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

// Copy `len` bytes into a NUL-terminated string and parse it as JSON. Embedded NUL bytes are
// rejected (cJSON would stop there and ignore the rest).
static mxp_status parse_json(const uint8_t *p, size_t len, const char *label, const char *what,
                             cJSON **out, mxp_err *err) {
    *out = NULL;
    if (len && memchr(p, 0, len))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: %s JSON contains a NUL byte", label, what);
    char *s = malloc(len + 1);
    if (!s) return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory reading %s JSON", label, what);
    if (len) memcpy(s, p, len);
    s[len] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(s, &end, 1);
    size_t at = end && end >= s ? (size_t)(end - s) : 0;
    free(s);
    if (!root)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: %s is not valid JSON (error near byte %zu)", label,
                        what, at);
    *out = root;
    return MXP_OK;
}

// Parse one tensor entry `e` of the header into *t (name not set). data_size: bytes after
// the header.
static mxp_status parse_entry(const cJSON *e, const char *label, size_t data_size,
                              mxp_tensor_info *t, uint64_t *begin, uint64_t *end, mxp_err *err) {
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", label,
                        name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!jd) return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': missing \"dtype\"", label, name);
    if (!cJSON_IsString(jd))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': \"dtype\" is not a string", label,
                        name);
    if (!js) return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': missing \"shape\"", label, name);
    if (!cJSON_IsArray(js))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': \"shape\" is not an array", label,
                        name);
    if (!jo)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': missing \"data_offsets\"", label,
                        name);
    if (!cJSON_IsArray(jo))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" is not an array",
                        label, name);

    const st_dtype *dt = NULL;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, jd->valuestring) == 0) dt = &st_dtypes[i];
    if (!dt)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': unknown dtype \"%.32s\"", label, name,
                        jd->valuestring);
    if (!dt->supported)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: tensor '%s': unsupported dtype %s", label,
                        name, dt->name);
    t->dtype = dt->dt;

    int ndim = cJSON_GetArraySize(js);
    if (ndim > MXP_MAX_DIMS)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED,
                        "%s: tensor '%s': shape has %d dimensions (at most %d supported)", label,
                        name, ndim, MXP_MAX_DIMS);
    size_t nelem = 1;
    int d = 0;
    for (const cJSON *v = js->child; v; v = v->next, d++) {
        uint64_t dim;
        if (!json_uint(v, &dim))
            return mxp_fail(err, MXP_ERR_FORMAT,
                            "%s: tensor '%s': shape[%d] is not a non-negative integer below 2^53",
                            label, name, d);
        t->shape[d] = (int64_t)dim;
        if (!mxp_mul_ok(nelem, (size_t)dim, &nelem))
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': shape product overflows", label,
                            name);
    }
    t->ndim = ndim;
    t->nelem = nelem;
    size_t be, bb;
    MXP_ASSERT(mxp_dtype_block(t->dtype, &be, &bb) && be == 1);
    if (!mxp_mul_ok(nelem, bb, &t->nbytes))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': byte size overflows", label, name);

    if (cJSON_GetArraySize(jo) != 2)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must hold 2 numbers",
                        label, name);
    if (!json_uint(jo->child, begin) || !json_uint(jo->child->next, end))
        return mxp_fail(err, MXP_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets are not non-negative integers below 2^53",
                        label, name);
    if (*end < *begin)
        return mxp_fail(err, MXP_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets end %llu < begin %llu", label, name,
                        (unsigned long long)*end, (unsigned long long)*begin);
    if (*end > data_size)
        return mxp_fail(err, MXP_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section "
                        "is %zu bytes)",
                        label, name, (unsigned long long)*begin, (unsigned long long)*end,
                        data_size);
    if (*end - *begin != t->nbytes)
        return mxp_fail(err, MXP_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets span %llu bytes but %s x %zu elements "
                        "needs %zu (byte size mismatch)",
                        label, name, (unsigned long long)(*end - *begin), mxp_dtype_name(t->dtype),
                        nelem, t->nbytes);
    return MXP_OK;
}

static mxp_status check_metadata(const cJSON *m, const char *label, mxp_err *err) {
    if (!cJSON_IsObject(m))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", label);
    for (const cJSON *v = m->child; v; v = v->next)
        if (!cJSON_IsString(v))
            return mxp_fail(err, MXP_ERR_FORMAT,
                            "%s: \"__metadata__\" value of '%s' is not a string", label, v->string);
    return MXP_OK;
}

mxp_status mxp_safetensors_parse(mxp_tensor_set *ts, const uint8_t *buf, size_t size,
                                 const char *label, mxp_err *err) {
    MXP_ASSERT(ts && (buf || size == 0));
    if (!label) label = "(buffer)";
    if (size < 8)
        return mxp_fail(err, MXP_ERR_FORMAT,
                        "%s: file too short for a safetensors header (%zu bytes, need 8)", label,
                        size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > size - 8)
        return mxp_fail(err, MXP_ERR_FORMAT,
                        "%s: header length %llu runs past the end of the file (%zu bytes)", label,
                        (unsigned long long)hlen, size);
    if (hlen > ST_MAX_HEADER)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: header length %llu exceeds the 100 MB limit",
                        label, (unsigned long long)hlen);
    const uint8_t *data = buf + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;

    cJSON *root = NULL;
    mxp_status st = parse_json(buf + 8, (size_t)hlen, label, "header", &root, err);
    if (st) return st;
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: header is not a JSON object", label);
    }
    int n0 = ts->n;
    int count = cJSON_GetArraySize(root);
    mxp_span *spans = mxp_calloc((size_t)(count > 0 ? count : 1), sizeof *spans);
    if (!spans) {
        cJSON_Delete(root);
        return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", label);
    }
    int ns = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if ((st = check_metadata(e, label, err))) goto fail;
            continue;
        }
        if (e->string[0] == 0) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor with an empty name", label);
            goto fail;
        }
        mxp_tensor_info t;
        memset(&t, 0, sizeof t);
        uint64_t begin = 0, end = 0;
        if ((st = parse_entry(e, label, data_size, &t, &begin, &end, err))) goto fail;
        t.data = data + begin;
        t.name = mxp_strdup(e->string);
        mxp_tensor_info *slot = t.name ? mxp_tensor_set_append(ts) : NULL;
        if (!slot) {
            free(t.name);
            st = mxp_fail(err, MXP_ERR_NOMEM, "%s: tensor '%s': out of memory", label, e->string);
            goto fail;
        }
        *slot = t;
        spans[ns].begin = begin;
        spans[ns].end = end;
        spans[ns].name = slot->name;
        ns++;
    }
    if ((st = mxp_spans_check_disjoint(spans, (size_t)ns, label, err))) goto fail;
    if ((st = mxp_tensor_set_check_unique(ts, label, err))) goto fail;
    free(spans);
    cJSON_Delete(root);
    return MXP_OK;
fail:
    mxp_tensor_set_rollback(ts, n0);
    free(spans);
    cJSON_Delete(root);
    return st;
}

mxp_status mxp_safetensors_open(mxp_tensor_set *ts, const char *path, mxp_err *err) {
    MXP_ASSERT(ts && path);
    mxp_mapping m;
    mxp_status st = mxp_map_file(&m, path, err);
    if (st) return st;
    int n0 = ts->n;
    st = mxp_safetensors_parse(ts, m.base, m.size, path, err);
    if (!st) {
        st = mxp_tensor_set_add_map(ts, m, err);
        if (st) mxp_tensor_set_rollback(ts, n0);
    }
    if (st) mxp_unmap(&m);
    return st;
}

// ---- Hugging Face folder ----

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int is_regular(const char *path) {
    struct stat s;
    return stat(path, &s) == 0 && S_ISREG(s.st_mode);
}

static int cmp_cstr_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Sort order of the index's (tensor name, shard) pairs: by tensor name.
typedef struct ix_pair {
    const char *name, *shard;
} ix_pair;
static int cmp_pair(const void *a, const void *b) {
    return strcmp(((const ix_pair *)a)->name, ((const ix_pair *)b)->name);
}

void mxp_st_index_free(mxp_st_index *ix) {
    free(ix->names);
    free(ix->shards);
    cJSON_Delete(ix->root);
    memset(ix, 0, sizeof *ix);
}

// The index: {"metadata": {...}, "weight_map": {tensor name: plain shard file name, ...}},
// no tensor listed twice. Pairs are sorted by name (looked up by bisection, so a large index
// costs n log n, not n^2); the distinct shard names are sorted too.
mxp_status mxp_st_index_parse(mxp_st_index *ix, const uint8_t *buf, size_t size, const char *label,
                              mxp_err *err) {
    memset(ix, 0, sizeof *ix);
    mxp_status st = parse_json(buf, size, label, "index", &ix->root, err);
    if (st) return st;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(ix->root, "weight_map");
    ix_pair *pairs = NULL;
    int n = 0;
    if (!cJSON_IsObject(ix->root)) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: the index is not a JSON object", label);
    } else if (!wm) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: missing \"weight_map\"", label);
    } else if (!cJSON_IsObject(wm)) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: \"weight_map\" is not a JSON object", label);
    } else if ((n = cJSON_GetArraySize(wm)) == 0) {
        st = mxp_fail(err, MXP_ERR_FORMAT, "%s: \"weight_map\" is empty", label);
    } else if (!(pairs = mxp_calloc((size_t)n, sizeof *pairs)) ||
               !(ix->shards = mxp_calloc((size_t)n, sizeof *ix->shards))) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory reading \"weight_map\"", label);
    }
    if (st) goto fail;
    int i = 0;
    for (const cJSON *e = wm->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e)) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: \"weight_map\" entry of tensor '%.200s' is not a string",
                          label, e->string);
            goto fail;
        }
        const char *f = e->valuestring;
        if (!f[0] || strchr(f, '/') || strchr(f, '\\') || strcmp(f, ".") == 0 || strcmp(f, "..") == 0) {
            st = mxp_fail(err, MXP_ERR_FORMAT,
                          "%s: \"weight_map\": tensor '%.200s': shard file name \"%.200s\" is not a plain "
                          "file name inside the folder",
                          label, e->string, f);
            goto fail;
        }
        pairs[i] = (ix_pair){e->string, f};
        ix->shards[i] = f;
    }
    qsort(pairs, (size_t)n, sizeof *pairs, cmp_pair);
    for (i = 1; i < n; i++)
        if (strcmp(pairs[i - 1].name, pairs[i].name) == 0) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%.200s' is listed twice in \"weight_map\"", label,
                          pairs[i].name);
            goto fail;
        }
    qsort(ix->shards, (size_t)n, sizeof *ix->shards, cmp_cstr_ptr);
    int ns = 0;
    for (i = 0; i < n; i++)
        if (ns == 0 || strcmp(ix->shards[ns - 1], ix->shards[i]) != 0) ix->shards[ns++] = ix->shards[i];
    // names[0..n) then shard_of[0..n) in one allocation
    ix->names = mxp_calloc(2 * (size_t)n, sizeof *ix->names);
    if (!ix->names) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory reading \"weight_map\"", label);
        goto fail;
    }
    ix->shard_of = ix->names + n;
    for (i = 0; i < n; i++) {
        ix->names[i] = pairs[i].name;
        ix->shard_of[i] = pairs[i].shard;
    }
    ix->n = n;
    ix->n_shards = ns;
    free(pairs);
    return MXP_OK;
fail:
    free(pairs);
    mxp_st_index_free(ix);
    return st;
}

// Position of tensor `name` in the index; -1 when absent.
static int index_find(const mxp_st_index *ix, const char *name) {
    int lo = 0, hi = ix->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(ix->names[mid], name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

mxp_status mxp_st_index_check_shard(const mxp_st_index *ix, int s, const mxp_tensor_set *ts, int n0,
                                    const char *label, const char *shard_label, mxp_err *err) {
    MXP_ASSERT(s >= 0 && s < ix->n_shards && n0 >= 0 && n0 <= ts->n);
    for (int i = n0; i < ts->n; i++) {
        const char *name = ts->tensors[i].name;
        int k = index_find(ix, name);
        if (k < 0)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%.200s' is not listed in the index %s", shard_label,
                            name, label);
        if (strcmp(ix->shard_of[k], ix->shards[s]) != 0)
            return mxp_fail(err, MXP_ERR_FORMAT,
                            "%s: tensor '%.200s' is in shard %.200s but the index assigns it to shard %.200s",
                            label, name, ix->shards[s], ix->shard_of[k]);
    }
    return MXP_OK;
}

mxp_status mxp_st_index_check_complete(const mxp_st_index *ix, const mxp_tensor_set *ts, int n0, const char *label,
                                       mxp_err *err) {
    MXP_ASSERT(n0 >= 0 && n0 <= ts->n);
    // Every tensor read was found in the index (check_shard) and names are unique in ts, so
    // the index is covered exactly when the counts agree; otherwise name one missing tensor.
    if (ts->n - n0 == ix->n) return MXP_OK;
    unsigned char *seen = calloc((size_t)ix->n, 1);
    if (!seen) return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", label);
    for (int i = n0; i < ts->n; i++) {
        int k = index_find(ix, ts->tensors[i].name);
        if (k >= 0) seen[k] = 1;
    }
    int miss = 0;
    while (miss < ix->n && seen[miss]) miss++;
    free(seen);
    MXP_ASSERT(miss < ix->n);  // fewer tensors read than listed, all of them listed
    return mxp_fail(err, MXP_ERR_FORMAT, "%s: tensor '%.200s' is assigned to shard %.200s, which does not hold it",
                    label, ix->names[miss], ix->shard_of[miss]);
}

static mxp_status open_sharded(mxp_tensor_set *ts, const char *dir, const char *index_path,
                               mxp_err *err) {
    int n_start = ts->n;
    mxp_mapping im;
    mxp_status st = mxp_map_file(&im, index_path, err);
    if (st) return st;
    mxp_st_index ix;
    st = mxp_st_index_parse(&ix, im.base, im.size, index_path, err);
    mxp_unmap(&im);
    if (st) return st;
    char *path = NULL;
    for (int s = 0; s < ix.n_shards && !st; s++) {
        free(path);
        path = join_path(dir, ix.shards[s]);
        if (!path) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", index_path);
            break;
        }
        int n0 = ts->n;
        if ((st = mxp_safetensors_open(ts, path, err))) mxp_fail_prefix(err, "shard named by %s: ", index_path);
        else st = mxp_st_index_check_shard(&ix, s, ts, n0, index_path, path, err);
    }
    if (!st) st = mxp_st_index_check_complete(&ix, ts, n_start, index_path, err);
    free(path);
    mxp_st_index_free(&ix);
    return st;
}

mxp_status mxp_hf_open_weights(mxp_tensor_set *ts, const char *dir, mxp_err *err) {
    MXP_ASSERT(ts && dir);
    char *single = join_path(dir, "model.safetensors");
    char *index = join_path(dir, "model.safetensors.index.json");
    mxp_status st;
    int n0 = ts->n, m0 = ts->n_maps;
    if (!single || !index) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", dir);
    } else if (is_regular(single)) {
        st = mxp_safetensors_open(ts, single, err);
    } else if (is_regular(index)) {
        st = open_sharded(ts, dir, index, err);
    } else {
        st = mxp_fail(err, MXP_ERR_IO,
                      "%s: holds neither model.safetensors nor model.safetensors.index.json", dir);
    }
    if (st) {  // undo every shard already loaded
        mxp_tensor_set_rollback(ts, n0);
        for (int i = m0; i < ts->n_maps; i++) mxp_unmap(&ts->maps[i]);
        ts->n_maps = m0;
    }
    free(single);
    free(index);
    return st;
}

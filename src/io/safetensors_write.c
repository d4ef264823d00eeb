// safetensors_write.c: write a safetensors file (layout in tensors.h beside the declaration)
// and small files, atomically: everything goes to a temporary file in the target's folder,
// which is flushed and renamed over the target. It never leaves a half-written target and
// never modifies the tensors it is given.
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/tensors.h"

// Growable string for the JSON header.
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

// A JSON string literal: quotes, backslashes and control bytes escaped; other bytes as is.
static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            sb_put(b, esc, 2);
        } else if (*c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *c);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, (const char *)c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static const char *st_dtype(mxp_dtype dt, size_t *size) {
    switch (dt) {
    case MXP_DT_F32: *size = 4; return "F32";
    case MXP_DT_F16: *size = 2; return "F16";
    case MXP_DT_BF16: *size = 2; return "BF16";
    case MXP_DT_I32: *size = 4; return "I32";
    default: return NULL;
    }
}

static int cmp_name(const void *a, const void *b) {
    const mxp_tensor_info *x = *(const mxp_tensor_info *const *)a, *y = *(const mxp_tensor_info *const *)b;
    return strcmp(x->name, y->name);
}

// Write the pieces to a temporary file beside `path`, then rename it into place.
static mxp_status write_atomic_parts(const char *path, const void *const *parts, const size_t *lens, int n_parts,
                                     mxp_err *err) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        mxp_status st = mxp_fail(err, MXP_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(tmp);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    int ok = f != NULL;
    if (!f) close(fd);
    for (int i = 0; ok && i < n_parts; i++)
        if (lens[i] && fwrite(parts[i], 1, lens[i], f) != lens[i]) ok = 0;
    if (ok && fflush(f)) ok = 0;
    if (ok && fsync(fileno(f))) ok = 0;
    if (f && fclose(f)) ok = 0;
    if (ok && chmod(tmp, 0644)) ok = 0;
    if (ok && rename(tmp, path)) ok = 0;
    mxp_status st = MXP_OK;
    if (!ok) {
        st = mxp_fail(err, MXP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return st;
}

mxp_status mxp_write_file_atomic(const char *path, const void *data, size_t len, mxp_err *err) {
    const void *parts[1] = {data};
    size_t lens[1] = {len};
    return write_atomic_parts(path, parts, lens, 1, err);
}

mxp_status mxp_safetensors_write(const char *path, const mxp_tensor_info *t, int n, const char *const *meta,
                                 int n_meta, mxp_err *err) {
    MXP_ASSERT(n >= 0 && n_meta >= 0 && (t || n == 0) && (meta || n_meta == 0));
    const mxp_tensor_info **order = calloc((size_t)n + 1, sizeof *order);
    if (!order) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    mxp_status st = MXP_OK;
    for (int i = 0; i < n && !st; i++) {
        order[i] = &t[i];
        size_t esize = 0, nelem = 1;
        if (!t[i].name || !t[i].name[0] || !strcmp(t[i].name, "__metadata__"))
            st = mxp_fail(err, MXP_ERR_ARG, "%s: tensor %d has an empty or reserved name", path, i);
        else if (!st_dtype(t[i].dtype, &esize))
            st = mxp_fail(err, MXP_ERR_ARG, "%s: tensor '%s': dtype %s cannot be stored in safetensors", path,
                          t[i].name, mxp_dtype_name(t[i].dtype));
        else if (t[i].ndim < 0 || t[i].ndim > MXP_MAX_DIMS)
            st = mxp_fail(err, MXP_ERR_ARG, "%s: tensor '%s': %d dimensions", path, t[i].name, t[i].ndim);
        for (int d = 0; !st && d < t[i].ndim; d++)
            if (t[i].shape[d] < 0 || !mxp_mul_ok(nelem, (size_t)t[i].shape[d], &nelem))
                st = mxp_fail(err, MXP_ERR_ARG, "%s: tensor '%s': bad shape", path, t[i].name);
        if (!st && (!mxp_mul_ok(nelem, esize, &esize) || esize != t[i].nbytes || (t[i].nbytes && !t[i].data)))
            st = mxp_fail(err, MXP_ERR_ARG, "%s: tensor '%s': %zu bytes given, the shape needs %zu", path, t[i].name,
                          t[i].nbytes, esize);
    }
    if (!st) qsort(order, (size_t)n, sizeof *order, cmp_name);
    for (int i = 1; i < n && !st; i++)
        if (!strcmp(order[i - 1]->name, order[i]->name))
            st = mxp_fail(err, MXP_ERR_ARG, "%s: duplicate tensor name '%s'", path, order[i]->name);
    sbuf h = {0};
    char num[64];
    size_t off = 0;
    if (!st) {
        sb_str(&h, "{\"__metadata__\":{\"format\":\"pt\"");
        for (int k = 0; k < n_meta; k++) {
            sb_str(&h, ",");
            sb_json_str(&h, meta[2 * k]);
            sb_str(&h, ":");
            sb_json_str(&h, meta[2 * k + 1]);
        }
        sb_str(&h, "}");
        for (int i = 0; i < n; i++) {
            const mxp_tensor_info *x = order[i];
            size_t esize = 0;
            sb_str(&h, ",");
            sb_json_str(&h, x->name);
            sb_str(&h, ":{\"dtype\":\"");
            sb_str(&h, st_dtype(x->dtype, &esize));
            sb_str(&h, "\",\"shape\":[");
            for (int d = 0; d < x->ndim; d++) {
                snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)x->shape[d]);
                sb_str(&h, num);
            }
            snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + x->nbytes);
            sb_str(&h, num);
            off += x->nbytes;
        }
        sb_str(&h, "}");
        while (h.len % 8) sb_str(&h, " ");  // the data starts 8-byte aligned (8 + header length)
        if (h.oom) st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        const void **parts = calloc((size_t)n + 2, sizeof *parts);
        size_t *lens = calloc((size_t)n + 2, sizeof *lens);
        uint8_t len8[8];
        for (int k = 0; k < 8; k++) len8[k] = (uint8_t)((uint64_t)h.len >> (8 * k));
        if (!parts || !lens) {
            st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        } else {
            parts[0] = len8;
            lens[0] = 8;
            parts[1] = h.p;
            lens[1] = h.len;
            for (int i = 0; i < n; i++) {
                parts[i + 2] = order[i]->data;
                lens[i + 2] = order[i]->nbytes;
            }
            st = write_atomic_parts(path, parts, lens, n + 2, err);
        }
        free(parts);
        free(lens);
    }
    free(h.p);
    free(order);
    return st;
}

mxp_status mxp_check_writable(const char *path, mxp_err *err) {
    struct stat sb;
    if (!path || !path[0]) return mxp_fail(err, MXP_ERR_ARG, "empty output path");
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return mxp_fail(err, MXP_ERR_IO, "%s: is a folder", path);
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return mxp_fail(err, MXP_ERR_IO, "%s: folder %s does not exist", path, dir);
    if (access(dir, W_OK) != 0) return mxp_fail(err, MXP_ERR_IO, "%s: folder %s is not writable", path, dir);
    return MXP_OK;
}

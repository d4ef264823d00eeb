// test_loaders.c: the safetensors, GGUF and Hugging Face folder loaders.
//
// Valid images are built byte by byte here (independently of the loaders) and every parsed
// field is compared with what was written; f16/bf16 decoding is checked against hand-derived
// bit patterns. Each format then gets a list of corrupt images, each of which must fail with
// a non-OK status and a message naming the label and the problem. Every strict prefix of a
// valid image must fail cleanly too (run under ASan+UBSan to catch out-of-bounds reads).
//
// `test_loaders --write-seeds DIR` writes the valid images as fuzzing seeds into
// DIR/safetensors/ and DIR/gguf/ and exits.
#include "io/tensors.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------- byte builder
typedef struct bbuf {
    uint8_t *p;
    size_t n, cap;
} bbuf;

static void put(bbuf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        MXP_ASSERT(np);  // a test cannot go on without memory
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u8(bbuf *b, uint8_t v) { put(b, &v, 1); }
static void put_u16(bbuf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}
static void put_u32(bbuf *b, uint32_t v) {
    for (int i = 0; i < 4; i++) put_u8(b, (uint8_t)(v >> (8 * i)));
}
static void put_u64(bbuf *b, uint64_t v) {
    for (int i = 0; i < 8; i++) put_u8(b, (uint8_t)(v >> (8 * i)));
}
static void put_f32(bbuf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(b, u);
}
static void set_u32(bbuf *b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; i++) b->p[at + i] = (uint8_t)(v >> (8 * i));
}
static void set_u64(bbuf *b, size_t at, uint64_t v) {
    for (int i = 0; i < 8; i++) b->p[at + i] = (uint8_t)(v >> (8 * i));
}
static void pad_to(bbuf *b, size_t align) {
    while (b->n % align) put_u8(b, 0);
}
static bbuf bbuf_dup(const bbuf *b) {
    bbuf c = {0};
    put(&c, b->p, b->n);
    return c;
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    return fclose(f) == 0 && w == n;
}

// ---------------------------------------------------------------- safetensors images
// u64 header length + header + data
static bbuf st_image(const char *json, const void *data, size_t ndata) {
    bbuf b = {0};
    put_u64(&b, strlen(json));
    put(&b, json, strlen(json));
    put(&b, data, ndata);
    return b;
}

// The data section of the valid image: a f32 (2,3) | b f16 (8) | c bf16 (2,2) | s f32 () | z (0,5)
static const float A_VALS[6] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f};
static const uint16_t B_BITS[8] = {0x3C00, 0xC000, 0x0001, 0x7C00, 0x03FF, 0x0400, 0x8000, 0x7BFF};
static const float B_WANT[8] = {1.0f, -2.0f, 5.9604644775390625e-08f /* 2^-24 */, INFINITY,
                                6.0975551605224609375e-05f /* 1023 * 2^-24 */,
                                6.103515625e-05f /* 2^-14 */, -0.0f, 65504.0f};
static const uint16_t C_BITS[4] = {0x3F80, 0xC040, 0xFF80, 0x0001};
static const float C_WANT[4] = {1.0f, -3.0f, -INFINITY, 9.18354961579912115600575419705e-41f /* 2^-133 */};

static void st_valid_data(bbuf *d) {
    for (int i = 0; i < 6; i++) put_f32(d, A_VALS[i]);  // [0, 24)
    for (int i = 0; i < 8; i++) put_u16(d, B_BITS[i]);  // [24, 40)
    for (int i = 0; i < 4; i++) put_u16(d, C_BITS[i]);  // [40, 48)
    put_f32(d, 42.0f);                                  // [48, 52)
}

static const char *ST_VALID_JSON =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"c\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[40,48]},"
    "\"b\":{\"dtype\":\"F16\",\"shape\":[8],\"data_offsets\":[24,40]},"
    "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[48,52]},"
    "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[52,52]}}       ";

static bbuf st_valid(void) {
    bbuf d = {0};
    st_valid_data(&d);
    bbuf b = st_image(ST_VALID_JSON, d.p, d.n);
    free(d.p);
    return b;
}

// Check the tensors of the valid image in ts (data borrowed from base + 8 + hlen).
static void check_st_valid(const mxp_tensor_set *ts, const uint8_t *data) {
    const mxp_tensor_info *a = mxp_tensor_find(ts, "a"), *b = mxp_tensor_find(ts, "b"),
                          *c = mxp_tensor_find(ts, "c"), *s = mxp_tensor_find(ts, "s"),
                          *z = mxp_tensor_find(ts, "z");
    CHECK(a && b && c && s && z, "missing tensors");
    CHECK(mxp_tensor_find(ts, "__metadata__") == NULL, "metadata taken for a tensor");
    CHECK(mxp_tensor_find(ts, "nope") == NULL, "find of an absent name");
    if (!(a && b && c && s && z)) return;
    CHECK(a->dtype == MXP_DT_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 &&
              a->nelem == 6 && a->nbytes == 24 && a->data == data,
          "a: dtype %d ndim %d", (int)a->dtype, a->ndim);
    CHECK(b->dtype == MXP_DT_F16 && b->ndim == 1 && b->shape[0] == 8 && b->nbytes == 16 &&
              b->data == data + 24,
          "b");
    CHECK(c->dtype == MXP_DT_BF16 && c->ndim == 2 && c->shape[0] == 2 && c->shape[1] == 2 &&
              c->nbytes == 8 && c->data == data + 40,
          "c");
    CHECK(s->ndim == 0 && s->nelem == 1 && s->nbytes == 4 && s->data == data + 48, "s scalar");
    CHECK(z->ndim == 2 && z->shape[0] == 0 && z->shape[1] == 5 && z->nelem == 0 && z->nbytes == 0,
          "z empty");
    float out[8];
    mxp_err err = {0};
    CHECK(mxp_tensor_to_f32(a, out, &err) == MXP_OK, "%s", err.msg);
    CHECK_CLOSE("a values", out, A_VALS, 6, 0, 0);
    CHECK(mxp_tensor_to_f32(b, out, &err) == MXP_OK, "%s", err.msg);
    CHECK_CLOSE("f16 values", out, B_WANT, 8, 0, 0);
    CHECK(signbit(out[6]) && out[6] == 0.0f, "f16 0x8000 must be -0.0");
    CHECK(mxp_tensor_to_f32(c, out, &err) == MXP_OK, "%s", err.msg);
    CHECK(out[0] == 1.0f && out[1] == -3.0f && isinf(out[2]) && out[2] < 0 && out[3] == C_WANT[3],
          "bf16 values %g %g %g %g", out[0], out[1], out[2], out[3]);
    CHECK(mxp_tensor_to_f32(s, out, &err) == MXP_OK && out[0] == 42.0f, "scalar");
    CHECK(mxp_tensor_to_f32(z, NULL, &err) == MXP_OK, "empty tensor");
}

static void test_f16_exhaustive(void) {
    // Every finite f16 against an independent formula: (-1)^s * 2^(e-15) * (1 + m/1024), or
    // 2^-14 * m/1024 for subnormals. NaNs must decode to NaN, infinities to infinities.
    mxp_tensor_info t = {0};
    uint8_t bytes[2 * 65536];
    for (int i = 0; i < 65536; i++) {
        bytes[2 * i] = (uint8_t)i;
        bytes[2 * i + 1] = (uint8_t)(i >> 8);
    }
    t.name = "all";
    t.dtype = MXP_DT_F16;
    t.ndim = 1;
    t.shape[0] = 65536;
    t.nelem = 65536;
    t.nbytes = sizeof bytes;
    t.data = bytes;
    float *out = malloc(65536 * sizeof *out);
    mxp_err err = {0};
    CHECK(mxp_tensor_to_f32(&t, out, &err) == MXP_OK, "%s", err.msg);
    int bad = 0;
    for (int h = 0; h < 65536; h++) {
        int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
        double want;
        if (e == 31) {
            if (m ? !isnan(out[h]) : !(isinf(out[h]) && (signbit(out[h]) != 0) == s)) bad++;
            continue;
        }
        want = e ? ldexp(1.0 + m / 1024.0, e - 15) : ldexp(m / 1024.0, -14);
        if (s) want = -want;
        if ((double)out[h] != want || (signbit(out[h]) != 0) != s) {
            if (bad < 5) fprintf(stderr, "f16 0x%04x -> %.9g want %.9g\n", h, out[h], want);
            bad++;
        }
    }
    CHECK(bad == 0, "%d f16 values decoded wrongly", bad);
    // bf16: the top 16 bits of the f32
    t.dtype = MXP_DT_BF16;
    CHECK(mxp_tensor_to_f32(&t, out, &err) == MXP_OK, "%s", err.msg);
    bad = 0;
    for (int h = 0; h < 65536; h++) {
        uint32_t u;
        memcpy(&u, &out[h], 4);
        if (u != (uint32_t)h << 16) bad++;
    }
    CHECK(bad == 0, "%d bf16 values decoded wrongly", bad);
    free(out);
}

static void test_st_valid(void) {
    bbuf b = st_valid();
    mxp_tensor_set ts = {0};
    mxp_err err = {0};
    mxp_status st = mxp_safetensors_parse(&ts, b.p, b.n, "valid.safetensors", &err);
    CHECK(st == MXP_OK, "valid image: %s", err.msg);
    CHECK(ts.n == 5, "n = %d", ts.n);
    check_st_valid(&ts, b.p + 8 + strlen(ST_VALID_JSON));
    // Same image again into the same set: every name is a duplicate, set left unchanged.
    st = mxp_safetensors_parse(&ts, b.p, b.n, "again.safetensors", &err);
    CHECK(st == MXP_ERR_FORMAT && strstr(err.msg, "again.safetensors") &&
              strstr(err.msg, "duplicate"),
          "cross-file duplicate: %d %s", (int)st, err.msg);
    CHECK(ts.n == 5, "rollback after failed parse: n = %d", ts.n);
    mxp_tensor_set_free(&ts);
    CHECK(ts.n == 0 && ts.tensors == NULL, "free zeroes the set");
    mxp_tensor_set_free(&ts);  // a zeroed set frees fine
    // {} is a valid empty file
    bbuf e = st_image("{}", NULL, 0);
    CHECK(mxp_safetensors_parse(&ts, e.p, e.n, "empty", &err) == MXP_OK && ts.n == 0, "%s", err.msg);
    mxp_tensor_set_free(&ts);
    free(e.p);
    free(b.p);
}

typedef struct st_case {
    const char *json;
    size_t data_len;  // bytes of zero data after the header
    mxp_status want;  // 0 = any error
    const char *word;
} st_case;

static void expect_fail(mxp_status st, const mxp_err *err, mxp_status want, const char *label,
                        const char *word, const char *what) {
    CHECK(st != MXP_OK, "%s: accepted", what);
    if (st == MXP_OK) return;
    if (getenv("MXP_TEST_VERBOSE")) fprintf(stderr, "  %-32s -> %s\n", what, err->msg);
    CHECK(want == MXP_OK || st == want, "%s: status %s, want %s (%s)", what, mxp_status_name(st),
          mxp_status_name(want), err->msg);
    CHECK(strstr(err->msg, label) != NULL, "%s: message lacks label '%s': %s", what, label,
          err->msg);
    CHECK(strstr(err->msg, word) != NULL, "%s: message lacks '%s': %s", what, word, err->msg);
}

static void test_st_corrupt(void) {
    const char *L = "bad.safetensors";
    mxp_err err = {0};
    mxp_tensor_set ts = {0};
    const st_case cases[] = {
        {"[1,2]", 0, MXP_ERR_FORMAT, "not a JSON object"},
        {"{\"a\":", 0, MXP_ERR_FORMAT, "not valid JSON"},
        {"{} x", 0, MXP_ERR_FORMAT, "not valid JSON"},
        {"{\"a\":[1]}", 0, MXP_ERR_FORMAT, "'a': entry is not a JSON object"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "missing \"dtype\""},
        {"{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "\"dtype\" is not a string"},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, MXP_ERR_UNSUPPORTED, "'a': unsupported dtype F64"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "missing \"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "\"shape\" is not an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "shape[1]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, MXP_ERR_UNSUPPORTED, "5 dimensions"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, MXP_ERR_FORMAT, "missing \"data_offsets\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, MXP_ERR_FORMAT, "must hold 2"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4, MXP_ERR_FORMAT, "data_offsets are not"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4, MXP_ERR_FORMAT, "data_offsets are not"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, MXP_ERR_FORMAT, "end 0 < begin 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, MXP_ERR_FORMAT, "out of range"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,12]}}", 12, MXP_ERR_FORMAT, "mismatch"},
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "mismatch"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, MXP_ERR_FORMAT, "overlap"},
        {"{\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16, MXP_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, MXP_ERR_FORMAT, "duplicate"},
        {"{\"__metadata__\":{\"k\":1}}", 0, MXP_ERR_FORMAT, "\"__metadata__\" value of 'k'"},
        {"{\"__metadata__\":[]}", 0, MXP_ERR_FORMAT, "\"__metadata__\" is not"},
        {"{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT, "empty name"},
        {"", 0, MXP_ERR_FORMAT, "not valid JSON"},
    };
    int n_cases = (int)(sizeof cases / sizeof cases[0]);
    uint8_t zeros[64] = {0};
    for (int i = 0; i < n_cases; i++) {
        bbuf b = st_image(cases[i].json, zeros, cases[i].data_len);
        char what[64];
        snprintf(what, sizeof what, "safetensors case %d", i);
        memset(&err, 0, sizeof err);
        mxp_status st = mxp_safetensors_parse(&ts, b.p, b.n, L, &err);
        expect_fail(st, &err, cases[i].want, L, cases[i].word, what);
        CHECK(ts.n == 0, "%s: set not rolled back (n = %d)", what, ts.n);
        mxp_tensor_set_free(&ts);
        free(b.p);
    }
    // Byte-level corruptions of the valid image.
    bbuf v = st_valid();
    {
        mxp_status st = mxp_safetensors_parse(&ts, v.p, 7, L, &err);
        expect_fail(st, &err, MXP_ERR_FORMAT, L, "too short", "7-byte file");
        st = mxp_safetensors_parse(&ts, NULL, 0, L, &err);
        expect_fail(st, &err, MXP_ERR_FORMAT, L, "too short", "empty buffer");
        bbuf c = bbuf_dup(&v);
        set_u64(&c, 0, c.n);  // header length past the end
        st = mxp_safetensors_parse(&ts, c.p, c.n, L, &err);
        expect_fail(st, &err, MXP_ERR_FORMAT, L, "past the end", "header length past end");
        set_u64(&c, 0, UINT64_MAX);
        st = mxp_safetensors_parse(&ts, c.p, c.n, L, &err);
        expect_fail(st, &err, MXP_ERR_FORMAT, L, "past the end", "header length 2^64-1");
        free(c.p);
        c = bbuf_dup(&v);
        c.p[8 + 30] = 0;  // NUL inside the JSON
        st = mxp_safetensors_parse(&ts, c.p, c.n, L, &err);
        expect_fail(st, &err, MXP_ERR_FORMAT, L, "NUL", "NUL in header");
        free(c.p);
        CHECK(ts.n == 0, "n = %d", ts.n);
    }
    // Every strict prefix of the valid image fails (the data ends exactly at the last tensor).
    int accepted = 0;
    for (size_t len = 0; len < v.n; len++) {
        uint8_t *cp = malloc(len ? len : 1);  // exact-size copy so ASan sees over-reads
        memcpy(cp, v.p, len);
        mxp_status st = mxp_safetensors_parse(&ts, len ? cp : NULL, len, L, &err);
        if (st == MXP_OK) accepted++;
        else if (!strstr(err.msg, L)) CHECK(0, "prefix %zu: message lacks label: %s", len, err.msg);
        mxp_tensor_set_free(&ts);
        free(cp);
    }
    CHECK(accepted == 0, "%d truncated safetensors images accepted", accepted);
    free(v.p);
}

// ---------------------------------------------------------------- GGUF images
static void g_str(bbuf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void g_key(bbuf *b, const char *k, uint32_t type) {
    g_str(b, k);
    put_u32(b, type);
}
static void g_tensor(bbuf *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type,
                     uint64_t off) {
    g_str(b, name);
    put_u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) put_u64(b, ne[i]);
    put_u32(b, type);
    put_u64(b, off);
}
static void g_head(bbuf *b, uint32_t version, uint64_t nt, uint64_t nkv) {
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, nt);
    put_u64(b, nkv);
}

// Positions inside the valid GGUF image, for byte patches.
typedef struct gpos {
    size_t version, n_tensors, n_kv, first_key_len, name_val_len, arr_type, arr_n, align_val,
        t0_ndims, t0_ne0, t0_type, t0_off, t1_off, t2_ne0, t2_type, data_start;
} gpos;

static const float G_T0[6] = {0.5f, -1.0f, 2.0f, -4.0f, 8.0f, 1.0f / 3.0f};

// A valid GGUF: 12 keys of every scalar type, a string array and an f32 array; 5 tensors of
// f32, f16, q8_0, q4_0 and bf16 at aligned offsets. alignment: 0 = no key (default 32).
static bbuf gguf_valid(uint32_t version, uint32_t alignment, gpos *P) {
    gpos dummy;
    if (!P) P = &dummy;
    bbuf b = {0};
    int nkv = alignment ? 14 : 13;
    put(&b, "GGUF", 4);
    P->version = b.n;
    put_u32(&b, version);
    P->n_tensors = b.n;
    put_u64(&b, 5);
    P->n_kv = b.n;
    put_u64(&b, (uint64_t)nkv);
    P->first_key_len = b.n;
    g_key(&b, "general.architecture", MXP_GGUF_STRING);
    g_str(&b, "llama");
    g_key(&b, "general.name", MXP_GGUF_STRING);
    P->name_val_len = b.n;
    g_str(&b, "tiny test");
    if (alignment) {
        g_key(&b, "general.alignment", MXP_GGUF_U32);
        P->align_val = b.n;
        put_u32(&b, alignment);
    }
    g_key(&b, "k.u8", MXP_GGUF_U8);
    put_u8(&b, 200);
    g_key(&b, "k.i8", MXP_GGUF_I8);
    put_u8(&b, 0xFD);  // -3
    g_key(&b, "k.u16", MXP_GGUF_U16);
    put_u16(&b, 60000);
    g_key(&b, "k.i16", MXP_GGUF_I16);
    put_u16(&b, 0x8000);  // -32768
    g_key(&b, "llama.block_count", MXP_GGUF_U32);
    put_u32(&b, 2);
    g_key(&b, "k.i64", MXP_GGUF_I64);
    put_u64(&b, (uint64_t)-5);
    g_key(&b, "k.f64", MXP_GGUF_F64);
    double d = 2.5;
    uint64_t du;
    memcpy(&du, &d, 8);
    put_u64(&b, du);
    g_key(&b, "llama.rope.freq_base", MXP_GGUF_F32);
    put_f32(&b, 10000.0f);
    g_key(&b, "tokenizer.ggml.tokens", MXP_GGUF_ARRAY);
    P->arr_type = b.n;
    put_u32(&b, MXP_GGUF_STRING);
    P->arr_n = b.n;
    put_u64(&b, 3);
    g_str(&b, "a");
    g_str(&b, "bc");
    g_str(&b, "");
    g_key(&b, "tokenizer.ggml.scores", MXP_GGUF_ARRAY);
    put_u32(&b, MXP_GGUF_F32);
    put_u64(&b, 2);
    put_f32(&b, 0.5f);
    put_f32(&b, -1.0f);
    g_key(&b, "k.bool", MXP_GGUF_BOOL);
    put_u8(&b, 1);

    size_t al = alignment ? alignment : 32;
    // offsets: t0 f32 (2,3) 24 bytes at 0; t1 f16 (4) 8 bytes; t2 q8_0 (2,32) 68 bytes;
    // t3 q4_0 (64) 36 bytes; t4 bf16 (2) 4 bytes; each at the next aligned offset
    size_t off[5], sz[5] = {24, 8, 68, 36, 4}, o = 0;
    for (int i = 0; i < 5; i++) {
        off[i] = o;
        o = (o + sz[i] + al - 1) / al * al;
    }
    uint64_t ne0[2] = {3, 2}, ne1[1] = {4}, ne2[2] = {32, 2}, ne3[1] = {64}, ne4[1] = {2};
    P->t0_ndims = b.n + 8 + strlen("tok_embd.weight");
    P->t0_ne0 = P->t0_ndims + 4;
    P->t0_type = P->t0_ne0 + 16;
    P->t0_off = P->t0_type + 4;
    g_tensor(&b, "tok_embd.weight", 2, ne0, 0, off[0]);
    g_tensor(&b, "blk.0.attn_norm.weight", 1, ne1, 1, off[1]);
    P->t1_off = b.n - 8;
    P->t2_ne0 = b.n + 8 + strlen("blk.0.attn_q.weight") + 4;
    P->t2_type = P->t2_ne0 + 16;
    g_tensor(&b, "blk.0.attn_q.weight", 2, ne2, 8, off[2]);
    g_tensor(&b, "blk.0.ffn_up.weight", 1, ne3, 2, off[3]);
    g_tensor(&b, "output_norm.weight", 1, ne4, 30, off[4]);
    pad_to(&b, al);
    P->data_start = b.n;
    for (int i = 0; i < 6; i++) put_f32(&b, G_T0[i]);
    pad_to(&b, al);
    put_u16(&b, 0x3C00);  // 1
    put_u16(&b, 0xC000);  // -2
    put_u16(&b, 0x3555);  // 0.333251953125
    put_u16(&b, 0xFC00);  // -inf
    pad_to(&b, al);
    for (int i = 0; i < 68; i++) put_u8(&b, (uint8_t)i);
    pad_to(&b, al);
    for (int i = 0; i < 36; i++) put_u8(&b, (uint8_t)(255 - i));
    pad_to(&b, al);
    put_u16(&b, 0x3F80);
    put_u16(&b, 0x4049);  // 3.140625
    MXP_ASSERT(b.n == P->data_start + off[4] + 4);
    return b;
}

static void check_gguf_valid(const mxp_gguf *g, const uint8_t *base, const gpos *P,
                             uint32_t version, size_t alignment) {
    mxp_err err = {0};
    CHECK(g->version == version, "version %u", g->version);
    CHECK(g->alignment == alignment, "alignment %zu", g->alignment);
    CHECK(g->n_kv == (alignment != 32 || mxp_gguf_find(g, "general.alignment") ? 14 : 13),
          "n_kv %d", g->n_kv);
    mxp_gguf_str s = {0};
    CHECK(mxp_gguf_get_str(g, "general.architecture", &s, NULL, &err) == MXP_OK && s.len == 5 &&
              memcmp(s.ptr, "llama", 5) == 0,
          "architecture");
    uint64_t u = 0;
    CHECK(mxp_gguf_get_u64(g, "llama.block_count", &u, NULL, &err) == MXP_OK && u == 2, "blocks");
    CHECK(mxp_gguf_get_u64(g, "k.u8", &u, NULL, &err) == MXP_OK && u == 200, "u8");
    CHECK(mxp_gguf_get_u64(g, "k.u16", &u, NULL, &err) == MXP_OK && u == 60000, "u16");
    const mxp_gguf_kv *kv = mxp_gguf_find(g, "k.i8");
    CHECK(kv && kv->type == MXP_GGUF_I8 && kv->i == -3, "i8");
    kv = mxp_gguf_find(g, "k.i16");
    CHECK(kv && kv->i == -32768, "i16");
    kv = mxp_gguf_find(g, "k.i64");
    CHECK(kv && kv->i == -5, "i64");
    kv = mxp_gguf_find(g, "k.bool");
    CHECK(kv && kv->type == MXP_GGUF_BOOL && kv->u == 1, "bool");
    double d = 0;
    CHECK(mxp_gguf_get_f64(g, "k.f64", &d, NULL, &err) == MXP_OK && d == 2.5, "f64");
    CHECK(mxp_gguf_get_f64(g, "llama.rope.freq_base", &d, NULL, &err) == MXP_OK && d == 10000.0,
          "f32 kv");
    // getters: wrong type, negative, missing required, missing optional
    mxp_status st = mxp_gguf_get_u64(g, "k.i64", &u, NULL, &err);
    CHECK(st == MXP_ERR_FORMAT && strstr(err.msg, "k.i64") && strstr(err.msg, "negative"), "%s",
          err.msg);
    st = mxp_gguf_get_u64(g, "general.name", &u, NULL, &err);
    CHECK(st == MXP_ERR_FORMAT && strstr(err.msg, "general.name") && strstr(err.msg, "integer"),
          "%s", err.msg);
    st = mxp_gguf_get_str(g, "k.u8", &s, NULL, &err);
    CHECK(st == MXP_ERR_FORMAT && strstr(err.msg, "not a string"), "%s", err.msg);
    st = mxp_gguf_get_u64(g, "llama.context_length", &u, NULL, &err);
    CHECK(st == MXP_ERR_FORMAT && strstr(err.msg, "missing key 'llama.context_length'") &&
              strstr(err.msg, "valid"),
          "%s", err.msg);
    int found = 1;
    CHECK(mxp_gguf_get_u64(g, "llama.context_length", &u, &found, &err) == MXP_OK && found == 0,
          "optional absent");
    CHECK(mxp_gguf_get_u64(g, "llama.block_count", &u, &found, &err) == MXP_OK && found == 1,
          "optional present");
    kv = mxp_gguf_find(g, "tokenizer.ggml.tokens");
    CHECK(kv && kv->type == MXP_GGUF_ARRAY && kv->arr_type == MXP_GGUF_STRING && kv->arr_n == 3 &&
              kv->arr_strs && kv->arr_strs[1].len == 2 && memcmp(kv->arr_strs[1].ptr, "bc", 2) == 0 &&
              kv->arr_strs[2].len == 0,
          "string array");
    kv = mxp_gguf_find(g, "tokenizer.ggml.scores");
    CHECK(kv && kv->arr_type == MXP_GGUF_F32 && kv->arr_n == 2 && kv->arr_data && !kv->arr_strs,
          "f32 array");
    if (kv && kv->arr_data) {
        float f[2];
        memcpy(f, kv->arr_data, 8);
        CHECK(f[0] == 0.5f && f[1] == -1.0f, "f32 array values");
    }

    const mxp_tensor_set *ts = &g->tensors;
    CHECK(ts->n == 5, "n tensors %d", ts->n);
    if (ts->n != 5) return;
    const uint8_t *data = base + P->data_start;
    const mxp_tensor_info *t = mxp_tensor_find(ts, "tok_embd.weight");
    CHECK(t && t->dtype == MXP_DT_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
              t->nbytes == 24 && t->data == data,
          "t0 (ne [3,2] -> shape (2,3))");
    float out[64];
    if (t) {
        CHECK(mxp_tensor_to_f32(t, out, &err) == MXP_OK, "%s", err.msg);
        CHECK_CLOSE("gguf f32", out, G_T0, 6, 0, 0);
    }
    t = mxp_tensor_find(ts, "blk.0.attn_norm.weight");
    CHECK(t && t->dtype == MXP_DT_F16 && t->ndim == 1 && t->shape[0] == 4 &&
              t->data == data + (24 + alignment - 1) / alignment * alignment,
          "t1");
    if (t) {
        CHECK(mxp_tensor_to_f32(t, out, &err) == MXP_OK, "%s", err.msg);
        CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.333251953125f && isinf(out[3]) &&
                  out[3] < 0,
              "gguf f16 %g %g %g %g", out[0], out[1], out[2], out[3]);
    }
    t = mxp_tensor_find(ts, "blk.0.attn_q.weight");
    CHECK(t && t->dtype == MXP_DT_Q8_0 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 32 &&
              t->nelem == 64 && t->nbytes == 68,
          "q8_0 tensor");
    if (t) {
        // hand-decoded: block 0 bytes 0,1 = f16 0x0100 = 2^-16 (subnormal), q = 2..33;
        // block 1 bytes 34,35 = f16 0x2322 = 1826/1024 * 2^-7, q = 36..67
        st = mxp_tensor_to_f32(t, out, &err);
        CHECK(st == MXP_OK, "q8_0 to_f32: %s", err.msg);
        int q8_ok = 1;
        for (int i = 0; i < 32; i++) {
            q8_ok &= out[i] == (float)((i + 2) * ldexp(1.0, -16));
            q8_ok &= out[32 + i] == (float)((36 + i) * (1826.0 / 131072.0));
        }
        CHECK(q8_ok, "q8_0 values: %g %g %g", out[0], out[31], out[32]);
    }
    t = mxp_tensor_find(ts, "blk.0.ffn_up.weight");
    CHECK(t && t->dtype == MXP_DT_Q4_0 && t->nelem == 64 && t->nbytes == 36, "q4_0 tensor");
    t = mxp_tensor_find(ts, "output_norm.weight");
    CHECK(t && t->dtype == MXP_DT_BF16 && t->nbytes == 4, "bf16 tensor");
    if (t) {
        CHECK(mxp_tensor_to_f32(t, out, &err) == MXP_OK && out[0] == 1.0f && out[1] == 3.140625f,
              "gguf bf16");
    }
}

static void test_gguf_valid(void) {
    const struct { uint32_t version, align_key; size_t align; } v[] = {
        {3, 32, 32}, {2, 0, 32}, {3, 64, 64}, {3, 8, 8}, {3, 1, 1}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        gpos P;
        bbuf b = gguf_valid(v[i].version, v[i].align_key, &P);
        mxp_gguf g;
        mxp_err err = {0};
        mxp_status st = mxp_gguf_parse(&g, b.p, b.n, "valid.gguf", &err);
        CHECK(st == MXP_OK, "valid gguf v%u align %zu: %s", v[i].version, v[i].align, err.msg);
        if (st == MXP_OK) check_gguf_valid(&g, b.p, &P, v[i].version, v[i].align);
        mxp_gguf_free(&g);
        mxp_gguf_free(&g);  // a freed (zeroed) gguf frees again safely
        free(b.p);
    }
    // no tensors, no keys: header only
    bbuf b = {0};
    g_head(&b, 3, 0, 0);
    mxp_gguf g;
    mxp_err err = {0};
    CHECK(mxp_gguf_parse(&g, b.p, b.n, "empty.gguf", &err) == MXP_OK && g.tensors.n == 0, "%s",
          err.msg);
    mxp_gguf_free(&g);
    free(b.p);
}

// A patch of the valid image: write `val` (4 or 8 bytes) at the position `pos` picks, or
// truncate to `trunc` bytes.
typedef struct g_patch {
    const char *what;
    int field;  // index into gpos as size_t[]
    int width;  // 4 or 8
    uint64_t val;
    mxp_status want;
    const char *word;
} g_patch;

static void test_gguf_corrupt(void) {
    const char *L = "bad.gguf";
    mxp_err err = {0};
    mxp_gguf g;
#define F(name) ((int)(offsetof(gpos, name) / sizeof(size_t)))
    const g_patch patches[] = {
        {"magic", -1, 4, 0x46554748u, MXP_ERR_FORMAT, "magic"},
        {"version 1", F(version), 4, 1, MXP_ERR_UNSUPPORTED, "version 1"},
        {"version 4", F(version), 4, 4, MXP_ERR_FORMAT, "version 4"},
        {"huge tensor count", F(n_tensors), 8, UINT64_MAX, MXP_ERR_FORMAT, "tensor count"},
        {"tensor count +1", F(n_tensors), 8, 6, 0, "tensor"},
        {"huge key count", F(n_kv), 8, (uint64_t)1 << 40, MXP_ERR_FORMAT, "key count"},
        {"key length past end", F(first_key_len), 8, 1u << 30, MXP_ERR_FORMAT, "string length"},
        {"key length 2^64-1", F(first_key_len), 8, UINT64_MAX, MXP_ERR_FORMAT, "string length"},
        {"string value length", F(name_val_len), 8, (uint64_t)1 << 62, MXP_ERR_FORMAT, "general.name"},
        {"nested array", F(arr_type), 4, MXP_GGUF_ARRAY, MXP_ERR_UNSUPPORTED, "nested"},
        {"unknown array type", F(arr_type), 4, 13, MXP_ERR_FORMAT, "element type 13"},
        {"string array count", F(arr_n), 8, (uint64_t)1 << 61, MXP_ERR_FORMAT, "array count"},
        {"alignment 0", F(align_val), 4, 0, MXP_ERR_FORMAT, "power of two"},
        {"alignment 48", F(align_val), 4, 48, MXP_ERR_FORMAT, "power of two"},
        {"alignment 2^31", F(align_val), 4, 1u << 31, MXP_ERR_FORMAT, "data section"},
        {"n_dims 5", F(t0_ndims), 4, 5, MXP_ERR_FORMAT, "n_dims 5"},
        {"negative ne", F(t0_ne0), 8, (uint64_t)1 << 63, MXP_ERR_FORMAT, "negative"},
        {"unsupported type", F(t0_type), 4, 16, MXP_ERR_UNSUPPORTED, "'tok_embd.weight': unsupported GGML type 16"},
        {"type 99", F(t0_type), 4, 99, MXP_ERR_UNSUPPORTED, "GGML type 99"},
        {"misaligned offset", F(t0_off), 8, 4, MXP_ERR_FORMAT, "not aligned"},
        {"offset out of range", F(t0_off), 8, (uint64_t)1 << 40, MXP_ERR_FORMAT, "out of range"},
        {"offset 2^64-32", F(t0_off), 8, UINT64_MAX - 31, MXP_ERR_FORMAT, "out of range"},
        {"overlap", F(t1_off), 8, 0, MXP_ERR_FORMAT, "overlap"},
        {"ne grows past data", F(t0_ne0), 8, 1000, MXP_ERR_FORMAT, "out of range"},
        {"q8_0 row not a block multiple", F(t2_ne0), 8, 16, MXP_ERR_FORMAT, "block size"},
        {"q8_0 huge ne", F(t2_ne0), 8, (uint64_t)1 << 62, MXP_ERR_FORMAT, "out of range"},
    };
    for (size_t i = 0; i < sizeof patches / sizeof patches[0]; i++) {
        gpos P;
        bbuf b = gguf_valid(3, 32, &P);
        const g_patch *pt = &patches[i];
        size_t at = pt->field < 0 ? 0 : ((const size_t *)&P)[pt->field];
        if (pt->width == 4) set_u32(&b, at, (uint32_t)pt->val);
        else set_u64(&b, at, pt->val);
        memset(&err, 0, sizeof err);
        mxp_status st = mxp_gguf_parse(&g, b.p, b.n, L, &err);
        expect_fail(st, &err, pt->want, L, pt->word, pt->what);
        CHECK(g.n_kv == 0 && g.kv == NULL && g.tensors.n == 0, "%s: gguf not cleared", pt->what);
        mxp_gguf_free(&g);
        free(b.p);
    }
#undef F
    // Structural cases, each a small hand-built image.
    struct {
        const char *what;
        bbuf b;
        mxp_status want;
        const char *word;
    } cs[12];
    int nc = 0;
    uint64_t ne4[1] = {4};
    bbuf *b;
#define NEW(w, st_, word_) (cs[nc].what = w, cs[nc].want = st_, cs[nc].word = word_, \
                            memset(&cs[nc].b, 0, sizeof(bbuf)), b = &cs[nc++].b)
    NEW("duplicate key", MXP_ERR_FORMAT, "'a.b': duplicate key");
    g_head(b, 3, 0, 2);
    g_key(b, "a.b", MXP_GGUF_U32); put_u32(b, 1);
    g_key(b, "a.b", MXP_GGUF_U32); put_u32(b, 2);
    NEW("unknown kv type", MXP_ERR_FORMAT, "unknown value type 13");
    g_head(b, 3, 0, 1);
    g_key(b, "a", 13); put_u32(b, 0);
    NEW("bool 2", MXP_ERR_FORMAT, "bool");
    g_head(b, 3, 0, 1);
    g_key(b, "flag", MXP_GGUF_BOOL); put_u8(b, 2); put_u32(b, 0);
    NEW("alignment as u64", MXP_ERR_FORMAT, "u32");
    g_head(b, 3, 0, 1);
    g_key(b, "general.alignment", MXP_GGUF_U64); put_u64(b, 32);
    NEW("empty key", MXP_ERR_FORMAT, "empty");
    g_head(b, 3, 0, 1);
    g_key(b, "", MXP_GGUF_U32); put_u32(b, 0);
    NEW("NUL in key", MXP_ERR_FORMAT, "NUL");
    g_head(b, 3, 0, 1);
    put_u64(b, 3); put(b, "a\0b", 3); put_u32(b, MXP_GGUF_U32); put_u32(b, 0);
    NEW("u32 array count", MXP_ERR_FORMAT, "array count");
    g_head(b, 3, 0, 1);
    g_key(b, "arr", MXP_GGUF_ARRAY); put_u32(b, MXP_GGUF_U32); put_u64(b, (uint64_t)1 << 62);
    put_u32(b, 0);
    NEW("duplicate tensor", MXP_ERR_FORMAT, "'w': duplicate");
    g_head(b, 3, 2, 0);
    g_tensor(b, "w", 1, ne4, 0, 0);
    g_tensor(b, "w", 1, ne4, 0, 32);
    pad_to(b, 32);
    for (int i = 0; i < 48; i++) put_u8(b, 0);
    NEW("data section past end", MXP_ERR_FORMAT, "data section");
    g_head(b, 3, 1, 0);
    g_tensor(b, "w", 1, ne4, 0, 0);
    NEW("tensor data truncated", MXP_ERR_FORMAT, "out of range");
    g_head(b, 3, 1, 0);
    g_tensor(b, "w", 1, ne4, 0, 0);
    pad_to(b, 32);
    put_u32(b, 0);
    NEW("ne product overflow", MXP_ERR_FORMAT, "overflows");
    g_head(b, 3, 1, 0);
    {
        uint64_t ne[3] = {(uint64_t)1 << 32, (uint64_t)1 << 32, (uint64_t)1 << 32};
        g_tensor(b, "big", 3, ne, 0, 0);
    }
    NEW("bad header length", MXP_ERR_FORMAT, "truncated");
    put(b, "GGUF", 4);
    put_u32(b, 3);
#undef NEW
    MXP_ASSERT(nc <= (int)(sizeof cs / sizeof cs[0]));
    for (int i = 0; i < nc; i++) {
        memset(&err, 0, sizeof err);
        mxp_status st = mxp_gguf_parse(&g, cs[i].b.p, cs[i].b.n, L, &err);
        expect_fail(st, &err, cs[i].want, L, cs[i].word, cs[i].what);
        mxp_gguf_free(&g);
        free(cs[i].b.p);
    }
    // Every strict prefix of the valid image fails, with the label in the message.
    bbuf v = gguf_valid(3, 32, NULL);
    int accepted = 0;
    for (size_t len = 0; len < v.n; len++) {
        uint8_t *cp = malloc(len ? len : 1);
        memcpy(cp, v.p, len);
        mxp_status st = mxp_gguf_parse(&g, len ? cp : NULL, len, L, &err);
        if (st == MXP_OK) accepted++;
        else if (!strstr(err.msg, L)) CHECK(0, "prefix %zu: message lacks label: %s", len, err.msg);
        mxp_gguf_free(&g);
        free(cp);
    }
    CHECK(accepted == 0, "%d truncated GGUF images accepted", accepted);
    free(v.p);
}

// ---------------------------------------------------------------- files and folders
typedef struct path_buf {
    char s[600];
} path_buf;

static const char *pjoin(path_buf *pb, const char *dir, const char *name) {
    snprintf(pb->s, sizeof pb->s, "%s/%s", dir, name);
    return pb->s;
}

// A shard holding the given tensors, each an f32 vector of 2 values (v, v + 1).
static void write_shard(const char *path, const char **names, const float *vals, int n) {
    char json[1024];
    size_t o = 0;
    o += (size_t)snprintf(json + o, sizeof json - o, "{");
    bbuf d = {0};
    for (int i = 0; i < n; i++) {
        o += (size_t)snprintf(json + o, sizeof json - o,
                              "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[%d,%d]}",
                              i ? "," : "", names[i], 8 * i, 8 * i + 8);
        put_f32(&d, vals[i]);
        put_f32(&d, vals[i] + 1);
    }
    snprintf(json + o, sizeof json - o, "}");
    bbuf b = st_image(json, d.p, d.n);
    CHECK(write_file(path, b.p, b.n), "write %s", path);
    free(b.p);
    free(d.p);
}

static void test_files(void) {
    char tmpl[200];
    char *dir = check_tmpdir(tmpl, sizeof tmpl, "mxp_test_loaders");
    if (!dir) return;
    mxp_err err = {0};
    mxp_tensor_set ts = {0};
    mxp_status st;

    // mapping: empty file, directory, missing file
    path_buf pb_empty, pb_g, pb_idx, pb_tmp;
    const char *empty = pjoin(&pb_empty, dir, "empty.bin");
    CHECK(write_file(empty, "", 0), "write empty");
    mxp_mapping m;
    CHECK(mxp_map_file(&m, empty, &err) == MXP_OK && m.base == NULL && m.size == 0, "%s", err.msg);
    mxp_unmap(&m);
    st = mxp_map_file(&m, dir, &err);
    expect_fail(st, &err, MXP_ERR_IO, dir, "directory", "map a directory");
    st = mxp_safetensors_open(&ts, empty, &err);
    expect_fail(st, &err, MXP_ERR_FORMAT, "empty.bin", "too short", "empty safetensors");
    st = mxp_safetensors_open(&ts, pjoin(&pb_tmp, dir, "absent.safetensors"), &err);
    expect_fail(st, &err, MXP_ERR_IO, "absent.safetensors", "cannot open", "missing file");

    // a GGUF file
    bbuf gv = gguf_valid(3, 32, NULL);
    const char *gpath = pjoin(&pb_g, dir, "m.gguf");
    CHECK(write_file(gpath, gv.p, gv.n), "write gguf");
    mxp_gguf g;
    st = mxp_gguf_open(&g, gpath, &err);
    CHECK(st == MXP_OK && g.tensors.n == 5 && g.map.base != NULL && g.map.size == gv.n, "%s",
          err.msg);
    if (st == MXP_OK) {
        const mxp_tensor_info *t = mxp_tensor_find(&g.tensors, "tok_embd.weight");
        float out[6];
        CHECK(t && mxp_tensor_to_f32(t, out, &err) == MXP_OK, "gguf file tensor");
        if (t) CHECK_CLOSE("gguf file f32", out, G_T0, 6, 0, 0);
        uint64_t u;
        st = mxp_gguf_get_u64(&g, "missing.key", &u, NULL, &err);
        CHECK(st == MXP_ERR_FORMAT && strstr(err.msg, "m.gguf"), "getter names file: %s", err.msg);
    }
    mxp_gguf_free(&g);
    free(gv.p);
    st = mxp_gguf_open(&g, empty, &err);
    expect_fail(st, &err, MXP_ERR_FORMAT, "empty.bin", "truncated", "empty gguf");

    // HF folder, single file
    char single[600];
    snprintf(single, sizeof single, "%s/single", dir);
    CHECK(mkdir(single, 0700) == 0, "mkdir");
    bbuf sv = st_valid();
    CHECK(write_file(pjoin(&pb_tmp, single, "model.safetensors"), sv.p, sv.n), "write");
    st = mxp_hf_open_weights(&ts, single, &err);
    CHECK(st == MXP_OK && ts.n == 5 && ts.n_maps == 1, "single folder: %s", err.msg);
    if (st == MXP_OK) check_st_valid(&ts, ts.maps[0].base + 8 + strlen(ST_VALID_JSON));
    mxp_tensor_set_free(&ts);
    free(sv.p);

    // HF folder, sharded
    char sh[600];
    snprintf(sh, sizeof sh, "%s/sharded", dir);
    CHECK(mkdir(sh, 0700) == 0, "mkdir");
    const char *s1 = "model-00001-of-00002.safetensors", *s2 = "model-00002-of-00002.safetensors";
    const char *n1[] = {"a", "b"}, *n2[] = {"c"};
    const float v1[] = {1, 3}, v2[] = {5};
    write_shard(pjoin(&pb_tmp, sh, s1), n1, v1, 2);
    write_shard(pjoin(&pb_tmp, sh, s2), n2, v2, 1);
    const char *idx = pjoin(&pb_idx, sh, "model.safetensors.index.json");
    char json[2048];
    snprintf(json, sizeof json,
             "{\"metadata\":{\"total_size\":24},\"weight_map\":{\"a\":\"%s\",\"c\":\"%s\",\"b\":\"%s\"}}",
             s1, s2, s1);
    CHECK(write_file(idx, json, strlen(json)), "write index");
    st = mxp_hf_open_weights(&ts, sh, &err);
    CHECK(st == MXP_OK && ts.n == 3 && ts.n_maps == 2, "sharded: %s", err.msg);
    {
        const char *names[3] = {"a", "b", "c"};
        const float want[3] = {1, 3, 5};
        for (int i = 0; i < 3; i++) {
            const mxp_tensor_info *t = mxp_tensor_find(&ts, names[i]);
            float out[2];
            CHECK(t && t->ndim == 1 && t->shape[0] == 2 && mxp_tensor_to_f32(t, out, &err) == MXP_OK &&
                      out[0] == want[i] && out[1] == want[i] + 1,
                  "sharded tensor %s", names[i]);
        }
    }
    mxp_tensor_set_free(&ts);

    // Sharded failure cases: each rewrites the index. After a failure the set is empty.
    struct {
        const char *what, *json, *word;
        mxp_status want;
    } hc[] = {
        {"missing shard", "{\"weight_map\":{\"a\":\"S1\",\"b\":\"S1\",\"c\":\"S2\",\"d\":\"model-00003-of-00003.safetensors\"}}",
         "model-00003-of-00003.safetensors", MXP_ERR_IO},
        {"tensor in the wrong shard", "{\"weight_map\":{\"a\":\"S1\",\"b\":\"S2\",\"c\":\"S2\"}}",
         "'b' is in shard model-00001-of-00002.safetensors but the index assigns it to shard model-00002", MXP_ERR_FORMAT},
        {"tensor not in index", "{\"weight_map\":{\"a\":\"S1\",\"c\":\"S2\"}}", "'b' is not listed",
         MXP_ERR_FORMAT},
        {"index names an absent tensor", "{\"weight_map\":{\"a\":\"S1\",\"b\":\"S1\",\"c\":\"S2\",\"x\":\"S2\"}}",
         "'x' is assigned to shard", MXP_ERR_FORMAT},
        {"path traversal", "{\"weight_map\":{\"a\":\"../S1\"}}", "plain file name", MXP_ERR_FORMAT},
        {"index not JSON", "{\"weight_map\":", "not valid JSON", MXP_ERR_FORMAT},
        {"no weight_map", "{\"metadata\":{}}", "missing \"weight_map\"", MXP_ERR_FORMAT},
        {"weight_map not object", "{\"weight_map\":[]}", "\"weight_map\" is not", MXP_ERR_FORMAT},
        {"weight_map value not string", "{\"weight_map\":{\"a\":1}}", "'a' is not a string", MXP_ERR_FORMAT},
        {"empty weight_map", "{\"weight_map\":{}}", "empty", MXP_ERR_FORMAT},
        {"duplicate in weight_map", "{\"weight_map\":{\"a\":\"S1\",\"a\":\"S1\",\"b\":\"S1\",\"c\":\"S2\"}}",
         "'a' is listed twice", MXP_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof hc / sizeof hc[0]; i++) {
        // substitute S1/S2 with the shard names
        char j[1024];
        size_t o = 0;
        for (const char *p = hc[i].json; *p && o < sizeof j - 64; p++) {
            if (p[0] == 'S' && (p[1] == '1' || p[1] == '2')) {
                o += (size_t)snprintf(j + o, sizeof j - o, "%s", p[1] == '1' ? s1 : s2);
                p++;
            } else {
                j[o++] = *p;
            }
        }
        j[o] = 0;
        CHECK(write_file(idx, j, o), "write index");
        memset(&err, 0, sizeof err);
        st = mxp_hf_open_weights(&ts, sh, &err);
        const char *lab = strstr(hc[i].what, "missing shard") ? sh : "model.safetensors.index.json";
        expect_fail(st, &err, hc[i].want, lab, hc[i].word, hc[i].what);
        CHECK(ts.n == 0 && ts.n_maps == 0, "%s: set not rolled back (n %d, maps %d)", hc[i].what,
              ts.n, ts.n_maps);
        mxp_tensor_set_free(&ts);
    }
    // A shard that is itself corrupt: the message names the shard.
    CHECK(write_file(idx, json, strlen(json)), "write index");
    CHECK(write_file(pjoin(&pb_tmp, sh, s2), "garbage!!", 9), "write");
    st = mxp_hf_open_weights(&ts, sh, &err);
    expect_fail(st, &err, MXP_ERR_FORMAT, s2, "past the end", "corrupt shard");
    CHECK(ts.n == 0 && ts.n_maps == 0, "corrupt shard: not rolled back");
    mxp_tensor_set_free(&ts);
    st = mxp_hf_open_weights(&ts, dir, &err);
    expect_fail(st, &err, MXP_ERR_IO, dir, "neither", "folder without weights");

    // 4 GiB sparse file: opening parses only the header (no data is read).
    {
        const char *big = pjoin(&pb_tmp, dir, "big.safetensors");
        const uint64_t n = (uint64_t)1 << 30;  // 2^30 f32 = 4 GiB
        char hj[256];
        snprintf(hj, sizeof hj,
                 "{\"w\":{\"dtype\":\"F32\",\"shape\":[%llu],\"data_offsets\":[0,%llu]}}",
                 (unsigned long long)n, (unsigned long long)(4 * n));
        bbuf hb = st_image(hj, NULL, 0);
        int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int ok = fd >= 0 && write(fd, hb.p, hb.n) == (ssize_t)hb.n &&
                 ftruncate(fd, (off_t)(hb.n + 4 * n)) == 0;
        if (fd >= 0) close(fd);
        CHECK(ok, "could not create a sparse 4 GiB file in %s", dir);
        if (ok) {
            double t0 = mxp_now();
            st = mxp_safetensors_open(&ts, big, &err);
            double dt = mxp_now() - t0;
            CHECK(st == MXP_OK && ts.n == 1 && ts.tensors[0].nbytes == 4 * n, "big: %s", err.msg);
            fprintf(stderr, "opened a 4 GiB safetensors file in %.3f ms\n", dt * 1e3);
            mxp_tensor_set_free(&ts);
        }
        unlink(big);
        free(hb.p);
    }

    // clean up the temp folder
    const char *files[] = {"empty.bin", "m.gguf"};
    for (size_t i = 0; i < 2; i++) unlink(pjoin(&pb_tmp, dir, files[i]));
    unlink(pjoin(&pb_tmp, single, "model.safetensors"));
    rmdir(single);
    unlink(pjoin(&pb_tmp, sh, s1));
    unlink(pjoin(&pb_tmp, sh, s2));
    unlink(idx);
    rmdir(sh);
    CHECK(rmdir(dir) == 0, "temp folder left behind: %s", strerror(errno));
}

static int write_seeds(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s/safetensors", dir);
    mkdir(dir, 0755);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/gguf", dir);
    mkdir(p, 0755);
    int ok = 1;
    bbuf b = st_valid();
    snprintf(p, sizeof p, "%s/safetensors/valid.safetensors", dir);
    ok &= write_file(p, b.p, b.n);
    free(b.p);
    const char *two = "{\"x\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[0,4]},"
                      "\"y\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    uint8_t d8[8] = {0x80, 0x3f, 0, 0xc0, 7, 0, 0, 0};
    b = st_image(two, d8, 8);
    snprintf(p, sizeof p, "%s/safetensors/small.safetensors", dir);
    ok &= write_file(p, b.p, b.n);
    free(b.p);
    const uint32_t aligns[3] = {32, 0, 8};
    for (int i = 0; i < 3; i++) {
        b = gguf_valid(i == 1 ? 2 : 3, aligns[i], NULL);
        snprintf(p, sizeof p, "%s/gguf/valid%d.gguf", dir, i);
        ok &= write_file(p, b.p, b.n);
        free(b.p);
    }
    fprintf(stderr, "%s seeds to %s\n", ok ? "wrote" : "FAILED writing", dir);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2]);
    test_f16_exhaustive();
    test_st_valid();
    test_st_corrupt();
    test_gguf_valid();
    test_gguf_corrupt();
    test_files();
    CHECK_DONE();
}

// nfc.c: Unicode Normalization Form C (UAX #15) of UTF-8 text, for tokenizers whose
// tokenizer.json has an NFC normalizer (Qwen2). Three passes over code points:
//   1. canonical decomposition: each code point replaced by its full canonical decomposition
//      (unicode_tables.c), Hangul syllables split into L V (T) jamo arithmetically;
//   2. canonical ordering: each run of non-starters (combining class != 0) stably sorted by
//      combining class;
//   3. canonical composition: each character joins the last starter when it is not blocked
//      (nothing between them, or everything between has a nonzero class lower than its own)
//      and the pair is a primary composite (table) or a Hangul LV / LV+T pair.
// The data is Unicode 14.0 (Python's unicodedata, tools/gen_unicode_tables.py), as the
// rest of the tokenizer's tables. Must not: read past the input, take quadratic time on long
// runs of combining marks (the sort is O(n log n)), keep any state.
#include <string.h>

#include "io/tokenizer.h"

// Hangul syllable arithmetic (Unicode chapter 3.12).
enum {
    S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
    L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT, S_COUNT = L_COUNT * N_COUNT,
};

static size_t put_utf8(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    return mxp_unicode_compose(a, b);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int mxp_utf8_nfc_quick(const uint8_t *s, size_t len) {
    int last_ccc = 0;
    for (size_t p = 0; p < len;) {
        uint32_t cp;
        int k = mxp_utf8_decode(s + p, len - p, &cp);
        if (!k) return 0;
        p += (size_t)k;
        if (cp < 0x300) {
            last_ccc = 0;
            continue;
        }
        int ccc = mxp_unicode_ccc(cp);
        if (mxp_unicode_nfc_qc(cp) || (ccc && last_ccc > ccc)) return 0;
        last_ccc = ccc;
    }
    return 1;
}

mxp_status mxp_utf8_nfc(const uint8_t *s, size_t len, uint8_t **out, size_t *out_len, mxp_err *err) {
    *out = NULL;
    *out_len = 0;
    // 1. decompose. A UTF-8 character of k bytes decomposes into at most 4 code points, and
    // k >= 2 for every code point that decomposes, so 2 code points per byte suffice.
    size_t cap, bytes;
    if (!mxp_mul_ok(len, 2, &cap) || !mxp_mul_ok(cap + 1, sizeof(uint64_t), &bytes))
        return mxp_fail(err, MXP_ERR_NOMEM, "NFC: text of %zu bytes is too long", len);
    uint32_t *cps = malloc(bytes / 2), *run = malloc(bytes / 2);
    uint64_t *keys = malloc(bytes);  // sort keys of a run: class << 32 | position in the run
    if (!cps || !run || !keys) {
        free(cps);
        free(run);
        free(keys);
        return mxp_fail(err, MXP_ERR_NOMEM, "NFC: out of memory");
    }
    size_t n = 0;
    for (size_t p = 0; p < len;) {
        uint32_t cp;
        int k = mxp_utf8_decode(s + p, len - p, &cp);
        if (!k) {
            free(cps);
            free(run);
            free(keys);
            return mxp_fail(err, MXP_ERR_ARG, "NFC: invalid UTF-8 at byte offset %zu", p);
        }
        p += (size_t)k;
        const uint32_t *seq;
        int m;
        if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
            uint32_t si = cp - S_BASE;
            cps[n++] = L_BASE + si / N_COUNT;
            cps[n++] = V_BASE + (si % N_COUNT) / T_COUNT;
            if (si % T_COUNT) cps[n++] = T_BASE + si % T_COUNT;
        } else if ((m = mxp_unicode_decomp(cp, &seq)) > 0) {
            MXP_ASSERT(m <= 2 * k);
            for (int i = 0; i < m; i++) cps[n++] = seq[i];
        } else {
            cps[n++] = cp;
        }
        MXP_ASSERT(n <= cap);
    }
    // 2. canonical ordering of each run of non-starters
    for (size_t a = 0; a < n;) {
        if (!mxp_unicode_ccc(cps[a])) {
            a++;
            continue;
        }
        size_t b = a;
        while (b < n && mxp_unicode_ccc(cps[b])) {
            keys[b - a] = (uint64_t)mxp_unicode_ccc(cps[b]) << 32 | (uint64_t)(b - a);
            b++;
        }
        if (b - a > 1) {
            qsort(keys, b - a, sizeof *keys, cmp_u64);
            for (size_t i = 0; i < b - a; i++) run[i] = cps[a + (uint32_t)keys[i]];
            memcpy(cps + a, run, (b - a) * sizeof *cps);
        }
        a = b;
    }
    // 3. compose in place: o is the output length, st the last starter's position (or n: none)
    size_t o = 0, st = n;
    int last_ccc = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        int ccc = mxp_unicode_ccc(c);
        if (st < n && (o == st + 1 || (last_ccc != 0 && last_ccc < ccc))) {
            uint32_t comp = compose(cps[st], c);
            if (comp) {
                cps[st] = comp;
                continue;
            }
        }
        if (ccc == 0) st = o;
        last_ccc = ccc;
        cps[o++] = c;
    }
    free(run);
    free(keys);
    // back to UTF-8
    uint8_t *buf = malloc(o * 4 + 1);
    if (!buf) {
        free(cps);
        return mxp_fail(err, MXP_ERR_NOMEM, "NFC: out of memory");
    }
    size_t w = 0;
    for (size_t i = 0; i < o; i++) w += put_utf8(buf + w, cps[i]);
    buf[w] = 0;
    free(cps);
    *out = buf;
    *out_len = w;
    return MXP_OK;
}

// tokenizer.c: the tokenizer core. Builds a tokenizer from arrays (mxp_tokenizer_from_arrays),
// encodes (added-token split, normalization, pre-tokenizer matchers, BPE merge loop) and
// decodes. It reads no file: tokenizer_json.c turns a tokenizer.json into the arrays.
//
// Representation: every token has its stored string (as in the vocabulary: "Ġthe",
// "▁the", "<0x0A>") and its raw bytes (what it decodes to: " the", " the", "\n"). Encoding
// works on raw bytes throughout: a byte-level piece starts as one symbol per byte, a
// SentencePiece piece as one symbol per character (spaces stay spaces; the vocabulary's "▁"
// was turned into a space at build). Merges are looked up by (left id, right id) -> (rank,
// result) in rank mode, or by the merged bytes -> token, highest score first, in score mode.
// The merge loop keeps a binary heap of candidate pairs ordered by (priority, position):
// O(n log n) per piece, equal priorities merge left to right.
//
// The pre-tokenizer regexes are not run by a regex engine: each known pattern has a
// hand-written matcher that returns the end of the match starting at a position, following
// the leftmost-alternative, greedy-with-backtracking semantics of the regex it replaces.
// \s is Unicode White_Space (as Oniguruma, Rust regex and Python regex use it); \p{L} and
// \p{N} come from unicode_tables.c.
#include "io/tokenizer.h"

#include <string.h>

struct mxp_tokenizer {
    mxp_tok_kind kind;
    mxp_tok_pre pre;
    int32_t n;                 // vocabulary size
    char *str_blob;            // stored strings, each NUL-terminated
    size_t *str_off;           // (n)
    uint32_t *str_len;         // (n)
    uint8_t *raw_blob;         // raw bytes
    size_t *raw_off;           // (n)
    uint32_t *raw_len;         // (n)
    uint8_t *type;             // (n) mxp_tok_type
    uint8_t *strip;            // (n) bit0 lstrip, bit1 rstrip
    uint32_t *str_map;         // open addressing, stored string -> id + 1 (0: empty)
    size_t str_cap;            // power of two
    uint32_t *txt_map;         // raw bytes of NORMAL/UNUSED tokens -> id + 1
    size_t txt_cap;
    uint64_t *pair_key;        // (left << 32 | right)
    uint32_t *pair_rank;       // rank + 1 (0: empty slot)
    int32_t *pair_res;         // merged token
    size_t pair_cap;
    float *scores;             // (n) score mode only
    int use_scores;
    int byte_merges;           // some merge has a <0xNN> token on one side (rank mode)
    int space_split_safe;      // LLAMA: no token has a space right after a non-space byte,
                               // so no merge crosses such a boundary: pieces can split there
    int32_t byte_sym[256];     // GPT2: token whose raw bytes are that one byte
    int32_t byte_tok[256];     // LLAMA: <0xNN> tokens (valid when byte_fallback)
    int32_t *added;            // ids of CONTROL/USER_DEFINED tokens, longest raw first
    int32_t n_added;
    uint8_t added_first[256];  // 1 if some added token starts with that byte
    int has_bos, has_eos, has_unk;
    int32_t bos_id, eos_id, unk_id;
    int add_bos, add_eos;
    int add_space_prefix, prefix_first_only, split_on_space, byte_fallback;
    int ignore_merges, add_prefix_space, nfc;
};

// ---------------------------------------------------------------- UTF-8 and classes

int mxp_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp) {
    if (len == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) { n = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)n > len) return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

// Unicode White_Space (PropList.txt, unchanged since Unicode 6.3).
static int is_ws(uint32_t c) {
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
    if (c < 0x85) return 0;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

enum { CL_L = 1, CL_N = 2, CL_WS = 3, CL_OTHER = 4 };

static int char_class(uint32_t c) {
    if (mxp_unicode_is_letter(c)) return CL_L;
    if (mxp_unicode_is_number(c)) return CL_N;
    if (is_ws(c)) return CL_WS;
    return CL_OTHER;
}

// ---------------------------------------------------------------- hashing

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    return k ^ (k >> 33);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

// Lookup in a string map whose entries are ids into (blob, off, len).
static int map_find(const uint32_t *map, size_t cap, const void *blob, const size_t *off,
                    const uint32_t *lens, const void *s, size_t n, int32_t *id) {
    size_t mask = cap - 1, i = (size_t)hash_bytes(s, n) & mask;
    for (;;) {
        uint32_t v = map[i];
        if (!v) return 0;
        int32_t k = (int32_t)(v - 1);
        if (lens[k] == n && memcmp((const char *)blob + off[k], s, n) == 0) {
            *id = k;
            return 1;
        }
        i = (i + 1) & mask;
    }
}

// Insert id if its string is absent; return 0 (and the existing id) if present.
static int map_insert(uint32_t *map, size_t cap, const void *blob, const size_t *off,
                      const uint32_t *lens, int32_t id, int32_t *existing) {
    const void *s = (const char *)blob + off[id];
    size_t n = lens[id], mask = cap - 1, i = (size_t)hash_bytes(s, n) & mask;
    for (;;) {
        uint32_t v = map[i];
        if (!v) {
            map[i] = (uint32_t)id + 1;
            return 1;
        }
        int32_t k = (int32_t)(v - 1);
        if (lens[k] == n && memcmp((const char *)blob + off[k], s, n) == 0) {
            *existing = k;
            return 0;
        }
        i = (i + 1) & mask;
    }
}

static int pair_find(const mxp_tokenizer *t, int32_t a, int32_t b, uint32_t *rank, int32_t *res) {
    if (!t->pair_cap) return 0;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t mask = t->pair_cap - 1, i = (size_t)hash_pair(key) & mask;
    for (;;) {
        if (!t->pair_rank[i]) return 0;
        if (t->pair_key[i] == key) {
            *rank = t->pair_rank[i] - 1;
            *res = t->pair_res[i];
            return 1;
        }
        i = (i + 1) & mask;
    }
}

// ---------------------------------------------------------------- build

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100.. in byte order.
static void gpt2_byte_map(uint32_t b2u[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        b2u[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
    }
}

void mxp_tokenizer_free(mxp_tokenizer *t) {
    if (!t) return;
    free(t->str_blob); free(t->str_off); free(t->str_len);
    free(t->raw_blob); free(t->raw_off); free(t->raw_len);
    free(t->type); free(t->strip); free(t->str_map); free(t->txt_map);
    free(t->pair_key); free(t->pair_rank); free(t->pair_res);
    free(t->scores); free(t->added);
    free(t);
}

static int parse_byte_token(const char *s, size_t n, uint8_t *b) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return 0;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v * 16 + d;
    }
    *b = (uint8_t)v;
    return 1;
}

// Raw bytes of token i into dst (capacity >= stored length: raw is never longer).
static mxp_status token_raw(const mxp_tokenizer *t, int32_t i, const char *lab,
                            const uint32_t *u2b, uint8_t *dst, uint32_t *out_len, mxp_err *err) {
    const uint8_t *s = (const uint8_t *)t->str_blob + t->str_off[i];
    size_t n = t->str_len[i], o = 0;
    int ty = t->type[i];
    if (ty == MXP_TOKT_CONTROL || ty == MXP_TOKT_USER_DEFINED || ty == MXP_TOKT_UNKNOWN) {
        memcpy(dst, s, n);
        *out_len = (uint32_t)n;
        return MXP_OK;
    }
    if (ty == MXP_TOKT_BYTE) {
        if (t->kind != MXP_TOK_LLAMA || !parse_byte_token((const char *)s, n, dst))
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: token %d (%.40s) has type BYTE but is not "
                            "a <0xNN> token of a llama tokenizer", lab, (int)i, (const char *)s);
        *out_len = 1;
        return MXP_OK;
    }
    for (size_t p = 0; p < n;) {
        uint32_t cp;
        int k = mxp_utf8_decode(s + p, n - p, &cp);
        if (!k)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: token %d is not valid UTF-8 (byte %zu)",
                            lab, (int)i, p);
        if (t->kind == MXP_TOK_GPT2) {
            if (cp >= 324 || u2b[cp] > 255)
                return mxp_fail(err, MXP_ERR_FORMAT, "%s: token %d (%.40s) is not byte-level "
                                "encoded (U+%04X at byte %zu)", lab, (int)i, (const char *)s,
                                (unsigned)cp, p);
            dst[o++] = (uint8_t)u2b[cp];
        } else if (cp == 0x2581) {
            dst[o++] = ' ';
        } else {
            memcpy(dst + o, s + p, (size_t)k);
            o += (size_t)k;
        }
        p += (size_t)k;
    }
    *out_len = (uint32_t)o;
    return MXP_OK;
}

static size_t str_span(const mxp_tok_str *x) { return x->s ? x->len : 0; }

static int cmp_added(const void *a, const void *b, void *ctx) {
    const mxp_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->raw_len[x] != t->raw_len[y]) return t->raw_len[x] > t->raw_len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static mxp_status add_merge(mxp_tokenizer *t, const char *lab, int32_t m, const char *l,
                            size_t ln, const char *r, size_t rn, char *tmp, mxp_err *err) {
    int32_t a, b, c;
    if (!map_find(t->str_map, t->str_cap, t->str_blob, t->str_off, t->str_len, l, ln, &a))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: merge %d names unknown token '%.*s'", lab,
                        (int)m, (int)(ln > 60 ? 60 : ln), l);
    if (!map_find(t->str_map, t->str_cap, t->str_blob, t->str_off, t->str_len, r, rn, &b))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: merge %d names unknown token '%.*s'", lab,
                        (int)m, (int)(rn > 60 ? 60 : rn), r);
    memcpy(tmp, l, ln);
    memcpy(tmp + ln, r, rn);
    if (!map_find(t->str_map, t->str_cap, t->str_blob, t->str_off, t->str_len, tmp, ln + rn, &c))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: merge %d ('%.*s' '%.*s'): the merged token is "
                        "not in the vocabulary", lab, (int)m, (int)(ln > 40 ? 40 : ln), l,
                        (int)(rn > 40 ? 40 : rn), r);
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t mask = t->pair_cap - 1, i = (size_t)hash_pair(key) & mask;
    while (t->pair_rank[i]) {
        if (t->pair_key[i] == key)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: merge %d ('%.*s' '%.*s') repeats merge %u",
                            lab, (int)m, (int)(ln > 40 ? 40 : ln), l, (int)(rn > 40 ? 40 : rn), r,
                            (unsigned)(t->pair_rank[i] - 1));
        i = (i + 1) & mask;
    }
    t->pair_key[i] = key;
    t->pair_rank[i] = (uint32_t)m + 1;
    t->pair_res[i] = c;
    if (t->type[a] == MXP_TOKT_BYTE || t->type[b] == MXP_TOKT_BYTE) t->byte_merges = 1;
    return MXP_OK;
}

static mxp_status build(mxp_tokenizer *t, const mxp_tokenizer_desc *d, const char *lab,
                        mxp_err *err) {
    int32_t n = d->n_tokens;
    mxp_status st;
    t->kind = d->kind;
    t->pre = d->pre ? d->pre : MXP_TOK_PRE_GPT2;
    t->n = n;
    // Stored strings.
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t len = str_span(&d->tokens[i]);
        if (len == 0)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: token %d is empty", lab, (int)i);
        if (len > 65536)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: token %d is %zu bytes long (limit 65536)",
                            lab, (int)i, len);
        if (!mxp_add_ok(total, len + 1, &total))
            return mxp_fail(err, MXP_ERR_NOMEM, "%s: vocabulary too large", lab);
    }
    t->str_blob = malloc(total);
    t->raw_blob = malloc(total);
    t->str_off = mxp_calloc((size_t)n, sizeof *t->str_off);
    t->raw_off = mxp_calloc((size_t)n, sizeof *t->raw_off);
    t->str_len = mxp_calloc((size_t)n, sizeof *t->str_len);
    t->raw_len = mxp_calloc((size_t)n, sizeof *t->raw_len);
    t->type = mxp_calloc((size_t)n, 1);
    t->strip = mxp_calloc((size_t)n, 1);
    t->str_cap = pow2_at_least((size_t)n * 2);
    t->txt_cap = t->str_cap;
    t->str_map = mxp_calloc(t->str_cap, sizeof *t->str_map);
    t->txt_map = mxp_calloc(t->txt_cap, sizeof *t->txt_map);
    if (!t->str_blob || !t->raw_blob || !t->str_off || !t->raw_off || !t->str_len ||
        !t->raw_len || !t->type || !t->strip || !t->str_map || !t->txt_map)
        return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory for %d tokens", lab, (int)n);
    size_t o = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t len = d->tokens[i].len;
        memcpy(t->str_blob + o, d->tokens[i].s, len);
        t->str_blob[o + len] = 0;
        t->str_off[i] = o;
        t->str_len[i] = (uint32_t)len;
        o += len + 1;
        int ty = d->token_types ? d->token_types[i] : MXP_TOKT_NORMAL;
        if (ty < MXP_TOKT_NORMAL || ty > MXP_TOKT_BYTE)
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: token %d has unknown type %d", lab, (int)i, ty);
        t->type[i] = (uint8_t)ty;
        t->strip[i] = d->token_strip ? (uint8_t)(d->token_strip[i] & 3) : 0;
        int32_t prev;
        if (!map_insert(t->str_map, t->str_cap, t->str_blob, t->str_off, t->str_len, i, &prev))
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: token %d (%.60s) duplicates token %d", lab,
                            (int)i, t->str_blob + t->str_off[i], (int)prev);
    }
    // Raw bytes.
    uint32_t b2u[256], u2b[324];
    gpt2_byte_map(b2u);
    for (int i = 0; i < 324; i++) u2b[i] = 0xFFFFFFFFu;
    for (int b = 0; b < 256; b++) u2b[b2u[b]] = (uint32_t)b;
    o = 0;
    for (int32_t i = 0; i < n; i++) {
        t->raw_off[i] = o;
        if ((st = token_raw(t, i, lab, u2b, t->raw_blob + o, &t->raw_len[i], err))) return st;
        o += t->raw_len[i];
        int ty = t->type[i];
        if ((ty == MXP_TOKT_NORMAL || ty == MXP_TOKT_UNUSED) && t->raw_len[i] > 0) {
            int32_t prev;
            map_insert(t->txt_map, t->txt_cap, t->raw_blob, t->raw_off, t->raw_len, i, &prev);
        }
        if ((ty == MXP_TOKT_CONTROL || ty == MXP_TOKT_USER_DEFINED) && t->raw_len[i] > 0) {
            if (!t->added) {
                t->added = mxp_calloc((size_t)n, sizeof *t->added);
                if (!t->added) return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", lab);
            }
            t->added[t->n_added++] = i;
            t->added_first[t->raw_blob[t->raw_off[i]]] = 1;
        }
    }
    if (t->n_added) qsort_r(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added, t);
    // Special ids.
    struct { int has; int32_t id; const char *what; } sp[3] = {
        {d->has_bos, d->bos_id, "BOS"}, {d->has_eos, d->eos_id, "EOS"}, {d->has_unk, d->unk_id, "UNK"}};
    for (int k = 0; k < 3; k++)
        if (sp[k].has && (sp[k].id < 0 || sp[k].id >= n))
            return mxp_fail(err, MXP_ERR_FORMAT, "%s: %s id %d out of range [0, %d)", lab,
                            sp[k].what, (int)sp[k].id, (int)n);
    t->has_bos = d->has_bos; t->bos_id = d->bos_id;
    t->has_eos = d->has_eos; t->eos_id = d->eos_id;
    t->has_unk = d->has_unk; t->unk_id = d->unk_id;
    t->add_bos = d->add_bos && d->has_bos;
    t->add_eos = d->add_eos && d->has_eos;
    t->add_space_prefix = d->add_space_prefix;
    t->prefix_first_only = d->prefix_first_only;
    t->split_on_space = d->split_on_space;
    t->byte_fallback = d->byte_fallback;
    t->ignore_merges = d->ignore_merges;
    t->add_prefix_space = d->add_prefix_space;
    t->nfc = d->nfc;
    // Byte tokens.
    if (t->kind == MXP_TOK_GPT2) {
        for (int b = 0; b < 256; b++) {
            uint8_t c = (uint8_t)b;
            if (!map_find(t->txt_map, t->txt_cap, t->raw_blob, t->raw_off, t->raw_len, &c, 1,
                          &t->byte_sym[b]))
                return mxp_fail(err, MXP_ERR_FORMAT, "%s: byte-level vocabulary has no token for "
                                "byte 0x%02X ('%s' in GPT-2's byte mapping)", lab, b,
                                b2u[b] < 0x80 ? (char[2]){(char)b2u[b], 0} : "non-ASCII");
        }
    } else {
        int have[256] = {0};
        for (int32_t i = 0; i < n; i++) {
            if (t->type[i] != MXP_TOKT_BYTE) continue;
            uint8_t b = t->raw_blob[t->raw_off[i]];
            if (have[b])
                return mxp_fail(err, MXP_ERR_FORMAT, "%s: byte token <0x%02X> appears twice (ids "
                                "%d and %d)", lab, b, (int)t->byte_tok[b], (int)i);
            have[b] = 1;
            t->byte_tok[b] = i;
        }
        if (t->byte_fallback)
            for (int b = 0; b < 256; b++)
                if (!have[b])
                    return mxp_fail(err, MXP_ERR_FORMAT, "%s: byte fallback is on but token "
                                    "<0x%02X> is missing", lab, b);
    }
    // Merges: by rank, or by score.
    if (d->n_merges > 0) {
        t->pair_cap = pow2_at_least((size_t)d->n_merges * 2);
        t->pair_key = mxp_calloc(t->pair_cap, sizeof *t->pair_key);
        t->pair_rank = mxp_calloc(t->pair_cap, sizeof *t->pair_rank);
        t->pair_res = mxp_calloc(t->pair_cap, sizeof *t->pair_res);
        size_t maxlen = 0;
        for (int32_t i = 0; i < n; i++) maxlen = t->str_len[i] > maxlen ? t->str_len[i] : maxlen;
        char *tmp = malloc(2 * maxlen + 2);
        if (!t->pair_key || !t->pair_rank || !t->pair_res || !tmp) {
            free(tmp);
            return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory for %d merges", lab,
                            (int)d->n_merges);
        }
        for (int32_t m = 0; m < d->n_merges && !st; m++) {
            const char *l, *r;
            size_t ln, rn;
            if (d->merge_pairs) {
                l = d->merge_pairs[2 * m].s; ln = str_span(&d->merge_pairs[2 * m]);
                r = d->merge_pairs[2 * m + 1].s; rn = str_span(&d->merge_pairs[2 * m + 1]);
            } else {
                const char *s = d->merges[m].s;
                size_t len = str_span(&d->merges[m]);
                const char *sp1 = s ? memchr(s, ' ', len) : NULL;
                if (!sp1 || memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - s))) {
                    free(tmp);
                    return mxp_fail(err, MXP_ERR_FORMAT, "%s: merge %d ('%.*s') is not two tokens "
                                    "separated by one space", lab, (int)m,
                                    (int)(len > 60 ? 60 : len), s ? s : "");
                }
                l = s; ln = (size_t)(sp1 - s);
                r = sp1 + 1; rn = len - ln - 1;
            }
            if (ln > maxlen || rn > maxlen || !ln || !rn) {
                free(tmp);
                return mxp_fail(err, MXP_ERR_FORMAT, "%s: merge %d names an empty or unknown token",
                                lab, (int)m);
            }
            st = add_merge(t, lab, m, l, ln, r, rn, tmp, err);
        }
        free(tmp);
        if (st) return st;
    } else if (t->kind == MXP_TOK_LLAMA && d->scores) {
        t->scores = mxp_calloc((size_t)n, sizeof *t->scores);
        if (!t->scores) return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", lab);
        for (int32_t i = 0; i < n; i++) {
            if (!(d->scores[i] == d->scores[i]))
                return mxp_fail(err, MXP_ERR_FORMAT, "%s: score of token %d is NaN", lab, (int)i);
            t->scores[i] = d->scores[i];
        }
        t->use_scores = 1;
    }
    if (t->kind == MXP_TOK_LLAMA) {
        t->space_split_safe = 1;
        for (int32_t i = 0; i < n && t->space_split_safe; i++) {
            if (t->type[i] != MXP_TOKT_NORMAL && t->type[i] != MXP_TOKT_UNUSED) continue;
            const uint8_t *r = t->raw_blob + t->raw_off[i];
            for (uint32_t k = 1; k < t->raw_len[i]; k++)
                if (r[k] == ' ' && r[k - 1] != ' ') t->space_split_safe = 0;
        }
    }
    return MXP_OK;
}

mxp_status mxp_tokenizer_from_arrays(const mxp_tokenizer_desc *d, mxp_tokenizer **out,
                                     mxp_err *err) {
    *out = NULL;
    const char *lab = d && d->label ? d->label : "tokenizer";
    if (!d || (d->kind != MXP_TOK_GPT2 && d->kind != MXP_TOK_LLAMA))
        return mxp_fail(err, MXP_ERR_ARG, "%s: tokenizer kind must be gpt2 or llama", lab);
    if (d->kind == MXP_TOK_GPT2 && d->pre && d->pre != MXP_TOK_PRE_GPT2 &&
        d->pre != MXP_TOK_PRE_LLAMA3 && d->pre != MXP_TOK_PRE_QWEN2)
        return mxp_fail(err, MXP_ERR_ARG, "%s: unknown pre-tokenizer %d", lab, (int)d->pre);
    if (d->n_tokens <= 0 || !d->tokens)
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: empty vocabulary", lab);
    if (d->n_tokens > (1 << 26))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: %d tokens (limit %d)", lab, (int)d->n_tokens,
                        1 << 26);
    if (d->n_merges < 0 || (d->n_merges > 0 && !d->merges && !d->merge_pairs))
        return mxp_fail(err, MXP_ERR_FORMAT, "%s: bad merge count %d", lab, (int)d->n_merges);
    mxp_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory", lab);
    mxp_status st = build(t, d, lab, err);
    if (st) {
        mxp_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MXP_OK;
}

mxp_status mxp_tokenizer_pre_from_name(const char *name, mxp_tok_pre *pre, mxp_err *err) {
    static const struct { const char *name; mxp_tok_pre pre; } names[] = {
        {"default", MXP_TOK_PRE_GPT2}, {"gpt2", MXP_TOK_PRE_GPT2}, {"gpt-2", MXP_TOK_PRE_GPT2},
        {"llama3", MXP_TOK_PRE_LLAMA3}, {"llama-v3", MXP_TOK_PRE_LLAMA3},
        {"llama-bpe", MXP_TOK_PRE_LLAMA3}, {"qwen2", MXP_TOK_PRE_QWEN2},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name && strcmp(name, names[i].name) == 0) {
            *pre = names[i].pre;
            return MXP_OK;
        }
    return mxp_fail(err, MXP_ERR_UNSUPPORTED, "pre-tokenizer '%s' is not supported (known: "
                    "default, gpt2, llama-bpe, llama3, qwen2)", name ? name : "(null)");
}

// ---------------------------------------------------------------- small accessors

int32_t mxp_tokenizer_vocab_size(const mxp_tokenizer *t) { return t->n; }
mxp_tok_kind mxp_tokenizer_kind(const mxp_tokenizer *t) { return t->kind; }
int mxp_tokenizer_bos(const mxp_tokenizer *t, int32_t *id) {
    if (t->has_bos) *id = t->bos_id;
    return t->has_bos;
}
int mxp_tokenizer_eos(const mxp_tokenizer *t, int32_t *id) {
    if (t->has_eos) *id = t->eos_id;
    return t->has_eos;
}
int mxp_tokenizer_add_bos(const mxp_tokenizer *t) { return t->add_bos; }
int mxp_tokenizer_add_eos(const mxp_tokenizer *t) { return t->add_eos; }

void mxp_tokenizer_info(const mxp_tokenizer *t, mxp_tok_info *out) {
    memset(out, 0, sizeof *out);
    out->kind = t->kind;
    out->pre = t->pre;
    for (size_t i = 0; i < t->pair_cap; i++) out->n_merges += t->pair_rank[i] != 0;
    out->use_scores = t->use_scores;
    out->ignore_merges = t->ignore_merges;
    out->add_prefix_space = t->add_prefix_space;
    out->nfc = t->nfc;
    out->add_space_prefix = t->add_space_prefix;
    out->prefix_first_only = t->prefix_first_only;
    out->split_on_space = t->split_on_space;
    out->space_split_safe = t->space_split_safe;
    out->byte_fallback = t->byte_fallback;
    out->has_unk = t->has_unk;
    out->unk_id = t->unk_id;
}

int mxp_tokenizer_token_type(const mxp_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n ? t->type[id] : 0;
}

int mxp_tokenizer_token_strip(const mxp_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n ? t->strip[id] : 0;
}

mxp_status mxp_tokenizer_merges(const mxp_tokenizer *t, int32_t **pairs, int32_t *n, mxp_err *err) {
    *pairs = NULL;
    *n = 0;
    int32_t count = 0;
    for (size_t i = 0; i < t->pair_cap; i++) count += t->pair_rank[i] != 0;
    if (!count) return MXP_OK;
    int32_t *p = malloc((size_t)count * 2 * sizeof *p);
    if (!p) return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory for %d merges", (int)count);
    for (size_t i = 0; i < t->pair_cap; i++) {
        if (!t->pair_rank[i]) continue;
        uint32_t r = t->pair_rank[i] - 1;  // ranks are 0..count-1, each once (build refuses repeats)
        MXP_ASSERT(r < (uint32_t)count);
        p[2 * r] = (int32_t)(t->pair_key[i] >> 32);
        p[2 * r + 1] = (int32_t)(uint32_t)t->pair_key[i];
    }
    *pairs = p;
    *n = count;
    return MXP_OK;
}

int32_t mxp_tokenizer_merge_result(const mxp_tokenizer *t, int32_t left, int32_t right) {
    uint32_t rank;
    int32_t res;
    return pair_find(t, left, right, &rank, &res) ? res : -1;
}

const char *mxp_tokenizer_pre_llama_name(mxp_tok_pre pre) {
    switch (pre) {
    case MXP_TOK_PRE_GPT2: return "gpt-2";
    case MXP_TOK_PRE_LLAMA3: return "llama-bpe";
    case MXP_TOK_PRE_QWEN2: return "qwen2";
    }
    return NULL;
}
const char *mxp_tokenizer_token(const mxp_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n) return NULL;
    if (len) *len = t->str_len[id];
    return t->str_blob + t->str_off[id];
}
int mxp_tokenizer_find(const mxp_tokenizer *t, const char *s, size_t len, int32_t *id) {
    return map_find(t->str_map, t->str_cap, t->str_blob, t->str_off, t->str_len, s, len, id);
}

// ---------------------------------------------------------------- output vector and scratch

typedef struct sym {
    uint32_t start, len;  // bytes of the piece
    int32_t id;
    int32_t prev, next;   // -1 at the ends
    uint8_t mergeable;
} sym;

typedef struct cand {
    double key;           // rank, or -score
    int32_t left;         // symbol index (= position order)
    uint32_t llen, rlen;  // lengths when queued: a stale candidate no longer matches
    int32_t res;
} cand;

typedef struct work {
    int32_t *ids;  // output
    size_t n, cap;
    sym *syms;
    size_t syms_cap;
    cand *heap;
    size_t nheap, heap_cap;
    uint32_t *cps;  // code points of a segment  (nc)
    uint32_t *off;  // their byte offsets        (nc + 1)
    size_t cp_cap, off_cap;
    uint8_t *buf;   // normalized segment bytes
    size_t buf_cap;
} work;

static void work_free(work *w) {
    free(w->syms); free(w->heap); free(w->cps); free(w->off); free(w->buf);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (!mxp_mul_ok(c, 2, &c)) return 0;
    }
    size_t bytes;
    if (!mxp_mul_ok(c, elem, &bytes)) return 0;
    void *q = realloc(*p, bytes);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

static int push_id(work *w, int32_t id) {
    if (!grow((void **)&w->ids, &w->cap, w->n + 1, sizeof *w->ids)) return 0;
    w->ids[w->n++] = id;
    return 1;
}

static int cand_less(const cand *a, const cand *b) {
    if (a->key != b->key) return a->key < b->key;
    return a->left < b->left;
}

static int heap_push(work *w, cand c) {
    if (!grow((void **)&w->heap, &w->heap_cap, w->nheap + 1, sizeof *w->heap)) return 0;
    size_t i = w->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
    return 1;
}

static cand heap_pop(work *w) {
    cand top = w->heap[0], last = w->heap[--w->nheap];
    size_t i = 0, n = w->nheap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < n && cand_less(&w->heap[l], best)) { m = l; best = &w->heap[l]; }
        if (r < n && cand_less(&w->heap[r], best)) { m = r; }
        if (m == i) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n) w->heap[i] = last;
    return top;
}

// ---------------------------------------------------------------- BPE on one piece

static int try_pair(const mxp_tokenizer *t, work *w, const uint8_t *s, int32_t l) {
    sym *a = &w->syms[l];
    if (a->next < 0) return 1;
    sym *b = &w->syms[a->next];
    if (!a->mergeable || !b->mergeable) return 1;
    cand c;
    c.left = l;
    c.llen = a->len;
    c.rlen = b->len;
    if (t->use_scores) {
        int32_t id;
        if (!map_find(t->txt_map, t->txt_cap, t->raw_blob, t->raw_off, t->raw_len, s + a->start,
                      (size_t)a->len + b->len, &id))
            return 1;
        c.key = -(double)t->scores[id];
        c.res = id;
    } else {
        uint32_t rank;
        if (!pair_find(t, a->id, b->id, &rank, &c.res)) return 1;
        c.key = rank;
    }
    return heap_push(w, c);
}

static mxp_status merge_run(const mxp_tokenizer *t, work *w, const uint8_t *s, int32_t r0,
                            int32_t r1, mxp_err *err);

static mxp_status bpe_piece(const mxp_tokenizer *t, work *w, const uint8_t *s, size_t len,
                            size_t text_off, mxp_err *err) {
    if (len == 0) return MXP_OK;
    int32_t whole;
    if (t->kind == MXP_TOK_GPT2 && t->ignore_merges &&
        map_find(t->txt_map, t->txt_cap, t->raw_blob, t->raw_off, t->raw_len, s, len, &whole))
        return push_id(w, whole) ? MXP_OK : mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory");
    if (!grow((void **)&w->syms, &w->syms_cap, len, sizeof *w->syms))
        return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte piece", len);
    int32_t ns = 0;
    if (t->kind == MXP_TOK_GPT2) {
        for (size_t i = 0; i < len; i++, ns++)
            w->syms[ns] = (sym){(uint32_t)i, 1, t->byte_sym[s[i]], ns - 1, ns + 1, 1};
    } else {
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            int k = mxp_utf8_decode(s + i, len - i, &cp);
            MXP_ASSERT(k > 0);  // validated by the caller
            int32_t id;
            if (map_find(t->txt_map, t->txt_cap, t->raw_blob, t->raw_off, t->raw_len, s + i,
                         (size_t)k, &id)) {
                w->syms[ns] = (sym){(uint32_t)i, (uint32_t)k, id, ns - 1, ns + 1, 1};
                ns++;
            } else if (t->byte_fallback) {
                for (int j = 0; j < k; j++) {
                    w->syms[ns] = (sym){(uint32_t)(i + (size_t)j), 1, t->byte_tok[s[i + (size_t)j]],
                                        ns - 1, ns + 1, (uint8_t)t->byte_merges};
                    ns++;
                }
            } else if (t->has_unk) {
                if (ns > 0 && w->syms[ns - 1].id == t->unk_id && !w->syms[ns - 1].mergeable) {
                    w->syms[ns - 1].len += (uint32_t)k;  // consecutive unknowns fuse
                } else {
                    w->syms[ns] = (sym){(uint32_t)i, (uint32_t)k, t->unk_id, ns - 1, ns + 1, 0};
                    ns++;
                }
            } else {
                return mxp_fail(err, MXP_ERR_ARG, "tokenizer: character U+%04X at byte offset %zu "
                                "is not in the vocabulary and the model has neither byte "
                                "fallback nor an unknown token", (unsigned)cp,
                                text_off + i);
            }
            i += (size_t)k;
        }
    }
    w->syms[ns - 1].next = -1;
    // Runs of mergeable symbols are independent (nothing merges across an unmergeable one):
    // merge each run with its own heap, which stays small and cache-resident.
    for (int32_t r0 = 0; r0 < ns;) {
        int32_t r1 = r0 + 1;
        while (r1 < ns && w->syms[r1].mergeable && w->syms[r1 - 1].mergeable) r1++;
        mxp_status st = merge_run(t, w, s, r0, r1, err);
        if (st) return st;
        r0 = r1;
    }
    for (int32_t i = 0; i >= 0; i = w->syms[i].next)
        if (!push_id(w, w->syms[i].id)) return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory");
    return MXP_OK;
}

// The merge loop over symbols [r0, r1) of the current piece.
static mxp_status merge_run(const mxp_tokenizer *t, work *w, const uint8_t *s, int32_t r0,
                            int32_t r1, mxp_err *err) {
    w->nheap = 0;
    for (int32_t i = r0; i + 1 < r1; i++)
        if (!try_pair(t, w, s, i)) return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory");
    while (w->nheap) {
        cand c = heap_pop(w);
        sym *a = &w->syms[c.left];
        if (a->len != c.llen || a->next < 0) continue;
        sym *b = &w->syms[a->next];
        if (b->len != c.rlen) continue;
        a->len += b->len;
        a->id = c.res;
        a->next = b->next;
        if (b->next >= 0) w->syms[b->next].prev = c.left;
        b->len = 0;
        if (a->prev >= 0 && !try_pair(t, w, s, a->prev))
            return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory");
        if (!try_pair(t, w, s, c.left)) return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory");
    }
    return MXP_OK;
}

// ---------------------------------------------------------------- pre-tokenizer matchers

// Each returns the end (in characters) of the match that starts at character i < n.
// cps: (n) code points of the segment.

static size_t run_class(const uint32_t *cps, size_t n, size_t i, int cl) {
    while (i < n && char_class(cps[i]) == cl) i++;
    return i;
}

static size_t ws_end(const uint32_t *cps, size_t n, size_t i) {
    while (i < n && is_ws(cps[i])) i++;
    return i;
}

// \s+(?!\S)|\s+ at a whitespace character i.
static size_t match_ws_tail(const uint32_t *cps, size_t n, size_t i) {
    size_t j = ws_end(cps, n, i);
    if (j < n && j - i >= 2) return j - 1;
    return j;
}

static uint32_t fold_ascii(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's';  // LATIN SMALL LETTER LONG S case-folds to s
    return c;
}

// 's|'t|'re|'ve|'m|'ll|'d, case-sensitive or (?i:...). Returns the end or 0.
static size_t match_contraction(const uint32_t *cps, size_t n, size_t i, int icase) {
    if (cps[i] != '\'' || i + 1 >= n) return 0;
    uint32_t a = icase ? fold_ascii(cps[i + 1]) : cps[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 >= n) return 0;
    uint32_t b = icase ? fold_ascii(cps[i + 2]) : cps[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
static size_t match_gpt2(const uint32_t *cps, size_t n, size_t i) {
    size_t e = match_contraction(cps, n, i, 0);
    if (e) return e;
    uint32_t c = cps[i];
    if (c == ' ' && i + 1 < n) {
        int cl = char_class(cps[i + 1]);
        if (cl != CL_WS) return run_class(cps, n, i + 1, cl);
    }
    int cl = char_class(c);
    if (cl != CL_WS) return run_class(cps, n, i, cl);
    return match_ws_tail(cps, n, i);
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
static size_t match_llama3(const uint32_t *cps, size_t n, size_t i, size_t max_digits) {
    size_t e = match_contraction(cps, n, i, 1);
    if (e) return e;
    uint32_t c = cps[i];
    int cl = char_class(c);
    if (cl == CL_L) return run_class(cps, n, i, CL_L);
    if (cl != CL_N && c != '\r' && c != '\n' && i + 1 < n && char_class(cps[i + 1]) == CL_L)
        return run_class(cps, n, i + 1, CL_L);
    if (cl == CL_N) {
        size_t j = i;
        while (j < n && j - i < max_digits && char_class(cps[j]) == CL_N) j++;
        return j;
    }
    size_t j = 0;
    if (c == ' ' && i + 1 < n && char_class(cps[i + 1]) == CL_OTHER) j = i + 1;
    else if (cl == CL_OTHER) j = i;
    if (cl == CL_OTHER || j) {
        j = run_class(cps, n, j, CL_OTHER);
        while (j < n && (cps[j] == '\r' || cps[j] == '\n')) j++;
        return j;
    }
    // c is whitespace: \s*[\r\n]+ ends after the last \r or \n of the whitespace run.
    size_t w = ws_end(cps, n, i), last = 0;
    for (size_t k = i; k < w; k++)
        if (cps[k] == '\r' || cps[k] == '\n') last = k + 1;
    if (last) return last;
    return match_ws_tail(cps, n, i);
}

// ---------------------------------------------------------------- segments

static mxp_status decode_cps(work *w, const uint8_t *s, size_t len, size_t *nc, mxp_err *err) {
    if (!grow((void **)&w->cps, &w->cp_cap, len + 1, sizeof *w->cps) ||
        !grow((void **)&w->off, &w->off_cap, len + 1, sizeof *w->off))
        return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory");
    size_t k = 0;
    for (size_t p = 0; p < len;) {
        int m = mxp_utf8_decode(s + p, len - p, &w->cps[k]);
        MXP_ASSERT(m > 0);
        w->off[k++] = (uint32_t)p;
        p += (size_t)m;
    }
    w->off[k] = (uint32_t)len;
    *nc = k;
    return MXP_OK;
}

static mxp_status encode_normalized(const mxp_tokenizer *t, work *w, const uint8_t *s, size_t len,
                                    size_t text_off, mxp_err *err) {
    if (len == 0) return MXP_OK;
    if (len > UINT32_MAX - 8)
        return mxp_fail(err, MXP_ERR_ARG, "tokenizer: text segment of %zu bytes is too long", len);
    mxp_status st;
    if (t->kind == MXP_TOK_GPT2) {
        const uint8_t *p = s;
        size_t plen = len;
        if (t->add_prefix_space && s[0] != ' ') {
            if (!grow((void **)&w->buf, &w->buf_cap, len + 1, 1))
                return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory");
            w->buf[0] = ' ';
            memcpy(w->buf + 1, s, len);
            p = w->buf;
            plen = len + 1;
        }
        size_t nc = 0;
        if ((st = decode_cps(w, p, plen, &nc, err))) return st;
        for (size_t i = 0; i < nc;) {
            size_t e = t->pre == MXP_TOK_PRE_GPT2 ? match_gpt2(w->cps, nc, i)
                     : match_llama3(w->cps, nc, i, t->pre == MXP_TOK_PRE_QWEN2 ? 1 : 3);
            MXP_ASSERT(e > i && e <= nc);
            if ((st = bpe_piece(t, w, p + w->off[i], w->off[e] - w->off[i], text_off + w->off[i], err)))
                return st;
            i = e;
        }
        return MXP_OK;
    }
    // SentencePiece style: spaces (and a literal U+2581) are "▁" = raw ' '; optional prefix.
    int prefix = t->add_space_prefix && (!t->prefix_first_only || text_off == 0);
    if (!grow((void **)&w->buf, &w->buf_cap, len + 1, 1))
        return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory");
    size_t o = 0;
    if (prefix) w->buf[o++] = ' ';
    for (size_t i = 0; i < len; i++) {
        if (i + 2 < len && s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
            w->buf[o++] = ' ';
            i += 2;
        } else {
            w->buf[o++] = s[i];
        }
    }
    // Byte offsets in messages refer to the normalized text when a prefix was added.
    // Pieces: Metaspace split=true starts one at every space; otherwise the text is one word,
    // cut (exactly, see space_split_safe) before each space that follows a non-space.
    if (!t->split_on_space && !t->space_split_safe) return bpe_piece(t, w, w->buf, o, text_off, err);
    for (size_t a = 0; a < o;) {
        size_t b = a + 1;
        if (t->split_on_space)
            while (b < o && w->buf[b] != ' ') b++;
        else
            while (b < o && !(w->buf[b] == ' ' && w->buf[b - 1] != ' ')) b++;
        if ((st = bpe_piece(t, w, w->buf + a, b - a, text_off + a, err))) return st;
        a = b;
    }
    return MXP_OK;
}

// One segment of text between added tokens: NFC-normalized first when the tokenizer has an
// NFC normalizer (as Hugging Face normalizes each such segment on its own; added tokens are
// matched in the raw text). Byte offsets in messages then refer to the normalized segment.
static mxp_status encode_segment(const mxp_tokenizer *t, work *w, const uint8_t *s, size_t len,
                                 size_t text_off, mxp_err *err) {
    if (!t->nfc || mxp_utf8_nfc_quick(s, len)) return encode_normalized(t, w, s, len, text_off, err);
    uint8_t *nfc;
    size_t n;
    mxp_status st = mxp_utf8_nfc(s, len, &nfc, &n, err);
    if (st) return mxp_fail_prefix(err, "tokenizer: ");
    st = encode_normalized(t, w, nfc, n, text_off, err);
    free(nfc);
    return st;
}

static int is_ascii_ws(uint8_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0D); }

mxp_status mxp_tokenizer_encode(const mxp_tokenizer *t, const char *utf8, size_t len,
                                unsigned flags, int32_t **ids, size_t *n, mxp_err *err) {
    *ids = NULL;
    *n = 0;
    const uint8_t *s = (const uint8_t *)utf8;
    if (len && !s) return mxp_fail(err, MXP_ERR_ARG, "tokenizer: NULL text");
    if ((flags & MXP_TOK_ADD_BOS) && !t->has_bos)
        return mxp_fail(err, MXP_ERR_ARG, "tokenizer: BOS requested but the model has no BOS token");
    if ((flags & MXP_TOK_ADD_EOS) && !t->has_eos)
        return mxp_fail(err, MXP_ERR_ARG, "tokenizer: EOS requested but the model has no EOS token");
    // Validate UTF-8 before anything else.
    for (size_t p = 0; p < len;) {
        uint32_t cp;
        int k = mxp_utf8_decode(s + p, len - p, &cp);
        if (!k)
            return mxp_fail(err, MXP_ERR_ARG, "tokenizer: invalid UTF-8 at byte offset %zu "
                            "(byte 0x%02X)", p, s[p]);
        p += (size_t)k;
    }
    work w = {0};
    mxp_status st = MXP_OK;
    if ((flags & MXP_TOK_ADD_BOS) && !push_id(&w, t->bos_id)) goto nomem;
    size_t seg = 0;  // start of the pending text segment
    for (size_t p = 0; p < len && !st;) {
        int32_t hit = -1;
        if (t->added_first[s[p]]) {
            for (int32_t k = 0; k < t->n_added; k++) {
                int32_t id = t->added[k];
                size_t rl = t->raw_len[id];
                if (t->type[id] == MXP_TOKT_CONTROL && !(flags & MXP_TOK_PARSE_SPECIAL)) continue;
                if (rl <= len - p && memcmp(s + p, t->raw_blob + t->raw_off[id], rl) == 0) {
                    hit = id;
                    break;
                }
            }
        }
        if (hit < 0) {
            p++;
            continue;
        }
        size_t end = p;
        if (t->strip[hit] & 1)
            while (end > seg && is_ascii_ws(s[end - 1])) end--;
        st = encode_segment(t, &w, s + seg, end - seg, seg, err);
        if (!st && !push_id(&w, hit)) goto nomem;
        p += t->raw_len[hit];
        if (t->strip[hit] & 2)
            while (p < len && is_ascii_ws(s[p])) p++;
        seg = p;
    }
    if (!st) st = encode_segment(t, &w, s + seg, len - seg, seg, err);
    if (!st && (flags & MXP_TOK_ADD_EOS) && !push_id(&w, t->eos_id)) goto nomem;
    work_free(&w);
    if (st) {
        free(w.ids);
        return st;
    }
    *ids = w.ids;
    *n = w.n;
    if (!w.n) {
        free(w.ids);
        *ids = NULL;
    }
    return MXP_OK;
nomem:
    work_free(&w);
    free(w.ids);
    return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory");
}

mxp_status mxp_tokenizer_decode(const mxp_tokenizer *t, const int32_t *ids, size_t n,
                                unsigned flags, char **out, size_t *out_len, mxp_err *err) {
    *out = NULL;
    *out_len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n)
            return mxp_fail(err, MXP_ERR_ARG, "tokenizer: id %d at position %zu is out of range "
                            "[0, %d)", (int)ids[i], i, (int)t->n);
        total += t->raw_len[ids[i]];  // each <= 65536, n bounded by memory: no overflow
    }
    char *buf = malloc(total + 1);
    if (!buf) return mxp_fail(err, MXP_ERR_NOMEM, "tokenizer: out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if ((flags & MXP_TOK_SKIP_SPECIAL) && t->type[id] == MXP_TOKT_CONTROL) continue;
        memcpy(buf + o, t->raw_blob + t->raw_off[id], t->raw_len[id]);
        o += t->raw_len[id];
    }
    size_t start = 0;
    if (t->kind == MXP_TOK_LLAMA && t->add_space_prefix && !(flags & MXP_TOK_KEEP_PREFIX) && o &&
        buf[0] == ' ')
        start = 1;
    memmove(buf, buf + start, o - start);
    buf[o - start] = 0;
    *out = buf;
    *out_len = o - start;
    return MXP_OK;
}

// test_tokenizer.c: tokenizer checks.
//
//   test_tokenizer                          unit checks (ctest runs this)
//   test_tokenizer DIR EXPECTED.json ...    plus parity with reference ids (test_tokenizer_parity.sh)
//
// Unit checks: decode(encode(x)) == x on thousands of seeded random UTF-8 strings for a
// byte-level and a SentencePiece-style tokenizer built from arrays; hand-worked merges;
// invalid UTF-8 rejected with its byte offset; corrupt tokenizer.json cases that must give a
// clean error of the right kind naming the file.
// Parity: DIR holds a tokenizer.json built by tools/tok_ref.js from an npm tokenizer package,
// EXPECTED.json that package's ids for tests/data/tok_texts.txt. Every case must match
// exactly, except cases marked known_divergence, which must differ (and are printed). The
// round trip is checked on the real vocabularies too, and for the Llama 2 data the
// score-mode build (GGUF style: scores instead of merges) and for GPT-2 the "a b" merge
// strings build (GGUF style) must give the same ids as the tokenizer.json build.
#include <cJSON.h>
#include <string.h>

#include "check.h"
#include "io/tokenizer.h"

// ---------------------------------------------------------------- helpers

static uint64_t rng_next(uint64_t *s) {  // splitmix64
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Random valid UTF-8 (no U+0000; no U+2581 when no_meta): a mix of ASCII, whitespace,
// Latin, BMP and supplementary code points. Returns the length; buf holds >= 4 * 64 bytes.
static size_t random_utf8(uint64_t *s, char *buf, int no_meta) {
    int n = (int)(rng_next(s) % 64);
    size_t o = 0;
    static const uint32_t ws[] = {' ', '\t', '\n', '\r', 0x0B, 0x0C, 0x85, 0xA0, 0x2003, 0x3000, 0xFEFF};
    for (int i = 0; i < n; i++) {
        uint32_t cp;
        switch (rng_next(s) % 8) {
        case 0: case 1: cp = 0x20 + (uint32_t)(rng_next(s) % 95); break;
        case 2: cp = ws[rng_next(s) % (sizeof ws / sizeof ws[0])]; break;
        case 3: cp = 1 + (uint32_t)(rng_next(s) % 0x2FF); break;
        case 4: cp = 0x300 + (uint32_t)(rng_next(s) % (0xD800 - 0x300)); break;
        case 5: cp = 0xE000 + (uint32_t)(rng_next(s) % 0x2000); break;
        case 6: cp = 0x1F300 + (uint32_t)(rng_next(s) % 0x700); break;  // emoji blocks
        default: cp = 0x10000 + (uint32_t)(rng_next(s) % 0x100000); break;
        }
        if (no_meta && cp == 0x2581) cp = 'x';
        o += put_utf8(buf + o, cp);
    }
    return o;
}

// Encode then decode; 1 if the text comes back byte for byte.
static int round_trip(const mxp_tokenizer *t, const char *s, size_t n, unsigned eflags) {
    int32_t *ids = NULL;
    size_t nid = 0, olen = 0;
    char *out = NULL;
    mxp_err e = {0};
    if (mxp_tokenizer_encode(t, s, n, eflags, &ids, &nid, &e)) {
        fprintf(stderr, "encode failed: %s\n", e.msg);
        return 0;
    }
    int ok = mxp_tokenizer_decode(t, ids, nid, 0, &out, &olen, &e) == MXP_OK && olen == n &&
             memcmp(out, s, n) == 0;
    free(ids);
    free(out);
    return ok;
}

static int fuzz_round_trip(const mxp_tokenizer *t, uint64_t seed, int count, int no_meta,
                           const char *what) {
    char buf[4 * 64 + 4];
    int bad = 0;
    for (int i = 0; i < count; i++) {
        size_t n = random_utf8(&seed, buf, no_meta);
        if (!round_trip(t, buf, n, 0)) {
            if (bad++ < 3) {
                fprintf(stderr, "%s: round trip failed on case %d:", what, i);
                for (size_t k = 0; k < n; k++) fprintf(stderr, " %02X", (uint8_t)buf[k]);
                fprintf(stderr, "\n");
            }
        }
    }
    return bad;
}

// GPT-2's bytes_to_unicode, written out again here for the test.
static void byte_to_cp(uint32_t b2u[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        b2u[b] = printable ? (uint32_t)b : 256u + (uint32_t)n++;
    }
}

// ---------------------------------------------------------------- tiny tokenizers

// Byte-level: 256 byte tokens then merged tokens; merges given as "left right".
static const char *tiny_merges[] = {"Ġ t", "h e", "Ġt he", "i n", "Ġ a", "a a", "aa aa", "Ġ Ġ"};
static const char *tiny_merged[] = {"Ġt", "he", "Ġthe", "in", "Ġa", "aa", "aaaa", "ĠĠ"};
#define TINY_NM 8

static mxp_tokenizer *tiny_gpt2(mxp_tok_pre pre) {
    static char store[256][5];
    mxp_tok_str toks[256 + TINY_NM], merges[TINY_NM];
    uint32_t b2u[256];
    byte_to_cp(b2u);
    for (int b = 0; b < 256; b++) toks[b] = (mxp_tok_str){store[b], put_utf8(store[b], b2u[b])};
    for (int m = 0; m < TINY_NM; m++) {
        toks[256 + m] = (mxp_tok_str){tiny_merged[m], strlen(tiny_merged[m])};
        merges[m] = (mxp_tok_str){tiny_merges[m], strlen(tiny_merges[m])};
    }
    mxp_tokenizer_desc d = {0};
    d.kind = MXP_TOK_GPT2;
    d.pre = pre;
    d.n_tokens = 256 + TINY_NM;
    d.tokens = toks;
    d.n_merges = TINY_NM;
    d.merges = merges;
    d.label = "tiny-gpt2";
    mxp_tokenizer *t = NULL;
    mxp_err e = {0};
    if (mxp_tokenizer_from_arrays(&d, &t, &e)) fprintf(stderr, "tiny_gpt2: %s\n", e.msg);
    return t;
}

// SentencePiece style: <unk> <s> </s>, 256 byte tokens, then pieces; by rank or by score.
static const char *tiny_pieces[] = {"▁", "a", "b", "c", "▁a", "ab", "▁ab", "▁▁", "bc"};
#define TINY_NP 9
static const char *tiny_spm_merges[] = {"▁ a", "a b", "▁a b", "▁ ▁", "b c"};

static mxp_tokenizer *tiny_llama(int by_score) {
    static char store[256][7];
    mxp_tok_str toks[3 + 256 + TINY_NP], merges[5];
    int32_t types[3 + 256 + TINY_NP];
    float scores[3 + 256 + TINY_NP];
    const char *sp[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        toks[i] = (mxp_tok_str){sp[i], strlen(sp[i])};
        types[i] = i == 0 ? MXP_TOKT_UNKNOWN : MXP_TOKT_CONTROL;
        scores[i] = 0;
    }
    for (int b = 0; b < 256; b++) {
        snprintf(store[b], sizeof store[b], "<0x%02X>", b);
        toks[3 + b] = (mxp_tok_str){store[b], 6};
        types[3 + b] = MXP_TOKT_BYTE;
        scores[3 + b] = 0;
    }
    // Scores follow the merge order: "▁a" (first merge) scores highest.
    static const float piece_score[TINY_NP] = {-1, -1, -1, -1, -10, -11, -12, -13, -14};
    for (int p = 0; p < TINY_NP; p++) {
        toks[259 + p] = (mxp_tok_str){tiny_pieces[p], strlen(tiny_pieces[p])};
        types[259 + p] = MXP_TOKT_NORMAL;
        scores[259 + p] = piece_score[p];
    }
    for (int m = 0; m < 5; m++) merges[m] = (mxp_tok_str){tiny_spm_merges[m], strlen(tiny_spm_merges[m])};
    mxp_tokenizer_desc d = {0};
    d.kind = MXP_TOK_LLAMA;
    d.n_tokens = 3 + 256 + TINY_NP;
    d.tokens = toks;
    d.token_types = types;
    if (by_score) d.scores = scores;
    else { d.merges = merges; d.n_merges = 5; }
    d.has_bos = d.has_eos = d.has_unk = 1;
    d.bos_id = 1; d.eos_id = 2; d.unk_id = 0;
    d.add_bos = 1;
    d.add_space_prefix = 1;
    d.byte_fallback = 1;
    d.label = "tiny-llama";
    mxp_tokenizer *t = NULL;
    mxp_err e = {0};
    if (mxp_tokenizer_from_arrays(&d, &t, &e)) fprintf(stderr, "tiny_llama: %s\n", e.msg);
    return t;
}

static int ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void check_encode(const mxp_tokenizer *t, const char *text, unsigned flags,
                         const int32_t *want, size_t nwant) {
    int32_t *ids = NULL;
    size_t n = 0;
    mxp_err e = {0};
    mxp_status st = mxp_tokenizer_encode(t, text, strlen(text), flags, &ids, &n, &e);
    CHECK(st == MXP_OK, "encode '%s': %s", text, e.msg);
    int ok = ids_equal(ids, n, want, nwant);
    CHECK(ok, "encode '%s': got %zu ids, want %zu", text, n, nwant);
    if (!ok) {
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
}

static void unit_tiny(void) {
    mxp_tokenizer *g = tiny_gpt2(MXP_TOK_PRE_GPT2);
    CHECK(g != NULL, "tiny gpt2 builds");
    if (g) {
        // " the" -> Ġt he -> Ġthe; "in" -> in; "aaaaa" -> aaaa a; "  the" -> Ġ Ġthe.
        check_encode(g, "the in", 0, (int32_t[]){'t', 257, ' ', 259}, 4);
        check_encode(g, " the", 0, (int32_t[]){258}, 1);
        check_encode(g, "aaaaa", 0, (int32_t[]){262, 'a'}, 2);
        // "  the": GPT-2's \s+(?!\S) leaves the last space to " the".
        check_encode(g, "  the", 0, (int32_t[]){' ', 258}, 2);
        int32_t *ids = NULL;
        size_t n = 0;
        mxp_err e = {0};
        CHECK(mxp_tokenizer_encode(g, "x", 1, MXP_TOK_ADD_BOS, &ids, &n, &e) == MXP_ERR_ARG,
              "BOS requested without a BOS token must fail");
        CHECK(fuzz_round_trip(g, 1, 3000, 0, "tiny gpt2") == 0, "tiny gpt2 round trip");
        mxp_tokenizer_free(g);
    }
    for (int pre = MXP_TOK_PRE_LLAMA3; pre <= MXP_TOK_PRE_QWEN2; pre++) {
        mxp_tokenizer *t = tiny_gpt2((mxp_tok_pre)pre);
        CHECK(t && fuzz_round_trip(t, 2, 2000, 0, "tiny gpt2 llama3/qwen2 pre") == 0,
              "round trip with pre-tokenizer %d", pre);
        mxp_tokenizer_free(t);
    }
    for (int by_score = 0; by_score < 2; by_score++) {
        mxp_tokenizer *t = tiny_llama(by_score);
        CHECK(t != NULL, "tiny llama builds (by_score %d)", by_score);
        if (!t) continue;
        // " a ab" -> "▁a ▁ab"? text "a ab" -> normalized "▁a▁ab": ▁a (first), then ▁ab.
        check_encode(t, "a ab", MXP_TOK_ADD_BOS, (int32_t[]){1, 263, 265}, 3);
        // "\n" falls back to <0x0A>; "é" to two byte tokens; "bc" merges.
        check_encode(t, "\nbc", 0, (int32_t[]){259, 3 + 0x0A, 267}, 3);
        check_encode(t, "\xC3\xA9", 0, (int32_t[]){259, 3 + 0xC3, 3 + 0xA9}, 3);
        // "  a": "▁▁▁a": ▁a merges first (rank 0 / best score), then ▁▁.
        check_encode(t, "  a", 0, (int32_t[]){266, 263}, 2);
        CHECK(fuzz_round_trip(t, 3, 3000, 1, "tiny llama") == 0, "tiny llama round trip (%d)", by_score);
        char *out = NULL;
        size_t olen = 0;
        mxp_err e = {0};
        CHECK(mxp_tokenizer_decode(t, (int32_t[]){1, 263, 2}, 3, MXP_TOK_SKIP_SPECIAL, &out, &olen, &e) == MXP_OK &&
              olen == 1 && out[0] == 'a', "decode skips <s> </s> and the prefix space");
        free(out);
        CHECK(mxp_tokenizer_decode(t, (int32_t[]){263, 99999}, 2, 0, &out, &olen, &e) == MXP_ERR_ARG &&
              strstr(e.msg, "99999"), "decode rejects an id out of range: %s", e.msg);
        mxp_tokenizer_free(t);
    }
}

static void unit_invalid_utf8(void) {
    mxp_tokenizer *g = tiny_gpt2(MXP_TOK_PRE_GPT2);
    if (!g) return;
    static const struct { const char *s; size_t n; size_t off; } bad[] = {
        {"abc\xC3(", 5, 3},               // truncated 2-byte sequence
        {"\xC0\x80", 2, 0},               // overlong NUL
        {"ok \xE0\x80\xAF", 6, 3},        // overlong '/'
        {"x\xED\xA0\x80y", 5, 1},         // surrogate U+D800
        {"ab\xF4\x90\x80\x80", 6, 2},     // above U+10FFFF
        {"\xE2\x82", 2, 0},               // truncated at the end
        {"z\x80", 2, 1},                  // lone continuation byte
        {"\xFF", 1, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        mxp_err e = {0};
        mxp_status st = mxp_tokenizer_encode(g, bad[i].s, bad[i].n, 0, &ids, &n, &e);
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu", bad[i].off);
        CHECK(st == MXP_ERR_ARG && strstr(e.msg, want), "invalid UTF-8 case %zu: status %d msg '%s'",
              i, (int)st, e.msg);
        CHECK(ids == NULL && n == 0, "no ids on error");
    }
    mxp_tokenizer_free(g);
}

// ---------------------------------------------------------------- corrupt tokenizer.json

static const char *SPM_OK =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"\xE2\x96\x81\":1,\"a\":2,\"b\":3,"
    "\"\xE2\x96\x81" "a\":4,\"ab\":5},\"merges\":[\"\xE2\x96\x81 a\",\"a b\"],\"unk_token\":\"<unk>\"},"
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}]},"
    "\"pre_tokenizer\":null,\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true}]}";

// Replace the first occurrence of `from` in SPM_OK by `to`.
static char *spm_with(const char *from, const char *to) {
    const char *p = strstr(SPM_OK, from);
    MXP_ASSERT(p);
    size_t a = (size_t)(p - SPM_OK), fl = strlen(from), tl = strlen(to), n = strlen(SPM_OK);
    char *s = malloc(n - fl + tl + 1);
    memcpy(s, SPM_OK, a);
    memcpy(s + a, to, tl);
    memcpy(s + a + tl, p + fl, n - a - fl + 1);
    return s;
}

// A byte-level tokenizer.json with the 256 byte tokens (minus `drop` if >= 0) and a Split
// pre-tokenizer with `pattern` (JSON-escaped), or a plain ByteLevel when pattern is NULL.
static char *gpt2_json(const char *pattern, int drop) {
    size_t cap = 64 * 1024, o = 0;
    char *s = malloc(cap);
    uint32_t b2u[256];
    byte_to_cp(b2u);
    o += (size_t)snprintf(s + o, cap - o, "{\"model\":{\"type\":\"BPE\",\"vocab\":{");
    int id = 0;
    for (int b = 0; b < 256; b++) {
        if (b == drop) continue;
        char u[8] = {0};
        put_utf8(u, b2u[b]);
        const char *esc = b2u[b] == '"' ? "\\\"" : b2u[b] == '\\' ? "\\\\" : u;
        o += (size_t)snprintf(s + o, cap - o, "%s\"%s\":%d", id ? "," : "", esc, id);
        id++;
    }
    o += (size_t)snprintf(s + o, cap - o, "},\"merges\":[]},");
    if (pattern)
        o += (size_t)snprintf(s + o, cap - o, "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
                              "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"%s\"},\"behavior\":\"Isolated\","
                              "\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false}]}}", pattern);
    else
        o += (size_t)snprintf(s + o, cap - o, "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}");
    return s;
}

static void expect_json(const char *json, mxp_status want, const char *needle, const char *what) {
    mxp_tokenizer *t = NULL;
    mxp_err e = {0};
    mxp_status st = mxp_tokenizer_parse_json(json, strlen(json), NULL, 0, NULL, 0, "bad.json", &t, &e);
    CHECK(st == want, "%s: status %d want %d (%s)", what, (int)st, (int)want, e.msg);
    if (want != MXP_OK) {
        CHECK(t == NULL, "%s: no tokenizer on error", what);
        CHECK(strstr(e.msg, "bad.json") != NULL, "%s: message names the file: %s", what, e.msg);
        if (needle) CHECK(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, e.msg, needle);
    }
    mxp_tokenizer_free(t);
}

static void unit_corrupt_json(void) {
    expect_json(SPM_OK, MXP_OK, NULL, "valid SentencePiece json");
    {
        mxp_tokenizer *t = NULL;
        mxp_err e = {0};
        if (mxp_tokenizer_parse_json(SPM_OK, strlen(SPM_OK), NULL, 0, NULL, 0, "ok.json", &t, &e) == MXP_OK) {
            check_encode(t, "a ab", 0, (int32_t[]){4, 4, 3}, 3);
            check_encode(t, "xa", 0, (int32_t[]){1, 0, 2}, 3);  // x is unknown: <unk>
            mxp_tokenizer_free(t);
        }
    }
    char *s;
    struct { const char *from, *to; mxp_status st; const char *needle, *what; } cases[] = {
        {"\"a b\"]", "\"a q\"]", MXP_ERR_FORMAT, "unknown token 'q'", "merge names an unknown token"},
        {"\"a b\"]", "\"b b\"]", MXP_ERR_FORMAT, "not in the vocabulary", "merge result missing"},
        {"\"a b\"]", "\"ab\"]", MXP_ERR_FORMAT, "one space", "merge without a space"},
        {"\"a b\"]", "\"a b\",\"a b\"]", MXP_ERR_FORMAT, "repeats", "duplicate merge"},
        {"\"a b\"]", "7]", MXP_ERR_FORMAT, "merge 1", "merge not a string"},
        {"\"ab\":5", "\"ab\":9", MXP_ERR_FORMAT, "out of range", "id out of range"},
        {"\"ab\":5", "\"ab\":-1", MXP_ERR_FORMAT, "out of range", "negative id"},
        {"\"ab\":5", "\"ab\":4", MXP_ERR_FORMAT, "id 4", "two tokens share an id"},
        {"\"ab\":5", "\"ab\":2.5", MXP_ERR_FORMAT, "not an integer", "fractional id"},
        {"\"ab\":5", "\"ab\":\"5\"", MXP_ERR_FORMAT, "not an integer", "id as string"},
        {"\"ab\":5", "\"a\":5", MXP_ERR_FORMAT, "duplicates token", "duplicate token string"},
        {"\"b\":3,", "", MXP_ERR_FORMAT, "no token has id 3", "hole in the ids"},
        {"\"type\":\"BPE\"", "\"type\":\"Unigram\"", MXP_ERR_UNSUPPORTED, "Unigram", "unsupported model"},
        {"{\"type\":\"Prepend\"", "{\"type\":\"NFKC\"", MXP_ERR_UNSUPPORTED, "NFKC", "unsupported normalizer"},
        {"\"pre_tokenizer\":null", "\"pre_tokenizer\":{\"type\":\"Whitespace\"}", MXP_ERR_UNSUPPORTED,
         "Whitespace", "unsupported pre-tokenizer"},
        {"\"id\":0,\"content\":\"<unk>\"", "\"id\":0,\"content\":\"<pad>\"", MXP_ERR_FORMAT, "<pad>",
         "added token disagrees with vocab"},
        {"\"id\":0,", "\"id\":77,", MXP_ERR_FORMAT, "added_tokens", "added token id out of range"},
        {"\"unk_token\":\"<unk>\"", "\"unk_token\":\"<none>\"", MXP_ERR_FORMAT, "<none>", "unk not a token"},
        {"\"vocab\":{", "\"vocab\":[{", MXP_ERR_FORMAT, "invalid JSON", "bad JSON"},
        {"\"merges\":[", "\"merges\":{", MXP_ERR_FORMAT, "invalid JSON", "bad JSON 2"},
        {"{\"model\"", "[{\"model\"", MXP_ERR_FORMAT, NULL, "bad JSON 3"},
        {"\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
         "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}]}",
         "\"normalizer\":null", MXP_ERR_UNSUPPORTED, "kind", "no space handling: kind unknown"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s = spm_with(cases[i].from, cases[i].to);
        expect_json(s, cases[i].st, cases[i].needle, cases[i].what);
        free(s);
    }
    // Truncations of a valid file: every prefix must fail cleanly.
    size_t n = strlen(SPM_OK);
    int crashfree = 1;
    for (size_t k = 0; k < n; k++) {
        mxp_tokenizer *t = NULL;
        mxp_err e = {0};
        if (mxp_tokenizer_parse_json(SPM_OK, k, NULL, 0, NULL, 0, "cut.json", &t, &e) == MXP_OK) crashfree = 0;
        mxp_tokenizer_free(t);
    }
    CHECK(crashfree, "every truncation of the file is an error");
    expect_json("", MXP_ERR_FORMAT, "invalid JSON", "empty file");
    expect_json("null", MXP_ERR_FORMAT, "not an object", "null document");
    // Byte-level: the known regexes load, an unknown one is quoted, a missing byte token fails.
    s = gpt2_json(NULL, -1);
    expect_json(s, MXP_OK, NULL, "byte-level with ByteLevel regex");
    free(s);
    s = gpt2_json("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+", -1);
    expect_json(s, MXP_OK, NULL, "byte-level with the Llama 3 regex");
    free(s);
    s = gpt2_json("\\\\w+|[^\\\\w\\\\s]+", -1);
    expect_json(s, MXP_ERR_UNSUPPORTED, "\"\\w+|[^\\w\\s]+\"", "unknown Split regex quoted");
    free(s);
    s = gpt2_json(NULL, 'A');
    expect_json(s, MXP_ERR_FORMAT, "byte 0x41", "missing byte token");
    free(s);
    // Loading a path that does not exist names it.
    mxp_tokenizer *t = NULL;
    mxp_err e = {0};
    CHECK(mxp_tokenizer_load_json("/nonexistent/tok", &t, &e) == MXP_ERR_IO && strstr(e.msg, "/nonexistent/tok"),
          "missing path: %s", e.msg);
    // from_arrays argument checks.
    mxp_tokenizer_desc d = {0};
    d.kind = MXP_TOK_LLAMA;
    CHECK(mxp_tokenizer_from_arrays(&d, &t, &e) == MXP_ERR_FORMAT, "empty vocabulary rejected");
    d.kind = (mxp_tok_kind)7;
    CHECK(mxp_tokenizer_from_arrays(&d, &t, &e) == MXP_ERR_ARG, "bad kind rejected");
    mxp_tok_pre pre;
    CHECK(mxp_tokenizer_pre_from_name("llama-bpe", &pre, &e) == MXP_OK && pre == MXP_TOK_PRE_LLAMA3, "llama-bpe");
    CHECK(mxp_tokenizer_pre_from_name("falcon", &pre, &e) == MXP_ERR_UNSUPPORTED && strstr(e.msg, "falcon"),
          "unknown GGUF pre name");
}

// ---------------------------------------------------------------- parity

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[sz] = 0; *n = (size_t)sz; }
    return b;
}

// Build the same vocabulary through mxp_tokenizer_from_arrays, GGUF style: "a b" merge
// strings (gpt2), or scores = -id instead of merges (llama: SentencePiece orders pieces by
// score, and tokenizer.json merges follow that order).
static mxp_tokenizer *arrays_twin(const char *dir, const mxp_tokenizer *ref) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    size_t n = 0;
    char *buf = slurp(path, &n);
    cJSON *root = buf ? cJSON_ParseWithLength(buf, n) : NULL;
    free(buf);
    if (!root) return NULL;
    int32_t nt = mxp_tokenizer_vocab_size(ref);
    mxp_tok_str *toks = calloc((size_t)nt, sizeof *toks);
    int32_t *types = calloc((size_t)nt, sizeof *types);
    float *scores = calloc((size_t)nt, sizeof *scores);
    for (int32_t i = 0; i < nt; i++) {
        toks[i].s = mxp_tokenizer_token(ref, i, &toks[i].len);
        types[i] = MXP_TOKT_NORMAL;
    }
    const cJSON *x, *added = cJSON_GetObjectItem(root, "added_tokens");
    cJSON_ArrayForEach(x, added) types[cJSON_GetObjectItem(x, "id")->valueint] = MXP_TOKT_CONTROL;
    mxp_tokenizer_desc d = {0};
    d.kind = mxp_tokenizer_kind(ref);
    d.n_tokens = nt;
    d.tokens = toks;
    d.token_types = types;
    d.label = "arrays twin";
    d.has_bos = mxp_tokenizer_bos(ref, &d.bos_id);
    d.has_eos = mxp_tokenizer_eos(ref, &d.eos_id);
    const cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "merges");
    mxp_tok_str *ms = NULL;
    if (d.kind == MXP_TOK_LLAMA) {
        for (int32_t i = 0; i < nt; i++) {
            uint8_t b;
            if (toks[i].len == 6 && sscanf(toks[i].s, "<0x%2hhX>", &b) == 1 && types[i] == MXP_TOKT_NORMAL)
                types[i] = MXP_TOKT_BYTE;
        }
        // Scores: minus the rank of the first merge that makes the token (what SentencePiece's
        // scores are, up to order); tokens no merge makes score below all of them.
        for (int32_t i = 0; i < nt; i++) scores[i] = -1e9f;
        int rank = 0;
        cJSON_ArrayForEach(x, merges) {
            const char *m = x->valuestring, *sp = strchr(m, ' ');
            char cat[512];
            int32_t id;
            if (sp && strlen(m) < sizeof cat) {
                snprintf(cat, sizeof cat, "%.*s%s", (int)(sp - m), m, sp + 1);
                if (mxp_tokenizer_find(ref, cat, strlen(cat), &id) && scores[id] == -1e9f)
                    scores[id] = -(float)rank;
            }
            rank++;
        }
        d.scores = scores;
        d.add_space_prefix = 1;
        d.byte_fallback = 1;
        d.has_unk = 1;
        d.unk_id = 0;
    } else {
        int nm = cJSON_GetArraySize(merges), k = 0;
        ms = calloc((size_t)nm, sizeof *ms);
        cJSON_ArrayForEach(x, merges) ms[k++] = (mxp_tok_str){x->valuestring, strlen(x->valuestring)};
        d.merges = ms;
        d.n_merges = nm;
        d.pre = MXP_TOK_PRE_GPT2;
        const cJSON *pt = cJSON_GetObjectItem(root, "pre_tokenizer");
        if (strcmp(cJSON_GetObjectItem(pt, "type")->valuestring, "Sequence") == 0) {
            d.pre = MXP_TOK_PRE_LLAMA3;  // tok_ref.js writes a Split only for Llama 3
            d.ignore_merges = 1;
        }
    }
    mxp_tokenizer *t = NULL;
    mxp_err e = {0};
    if (mxp_tokenizer_from_arrays(&d, &t, &e)) fprintf(stderr, "arrays twin: %s\n", e.msg);
    cJSON_Delete(root);
    free(toks); free(types); free(scores); free(ms);
    return t;
}

static void print_ids(const char *tag, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", tag);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

static void parity(const char *dir, const char *expected_path) {
    mxp_tokenizer *t = NULL;
    mxp_err e = {0};
    double t0 = mxp_now();
    mxp_status st = mxp_tokenizer_load_json(dir, &t, &e);
    double t_load = mxp_now() - t0;
    CHECK(st == MXP_OK, "load %s: %s", dir, e.msg);
    size_t n = 0;
    char *buf = slurp(expected_path, &n);
    CHECK(buf != NULL, "read %s", expected_path);
    cJSON *root = buf ? cJSON_ParseWithLength(buf, n) : NULL;
    free(buf);
    CHECK(root != NULL, "parse %s", expected_path);
    if (!t || !root) {
        mxp_tokenizer_free(t);
        cJSON_Delete(root);
        return;
    }
    const char *name = cJSON_GetObjectItem(root, "name")->valuestring;
    unsigned flags = cJSON_IsTrue(cJSON_GetObjectItem(root, "parse_special")) ? MXP_TOK_PARSE_SPECIAL : 0;
    mxp_tokenizer *twin = arrays_twin(dir, t);
    CHECK(twin != NULL, "%s: arrays build", name);
    const cJSON *c, *cases = cJSON_GetObjectItem(root, "cases");
    int ncase = 0, nmatch = 0, ndiv = 0, nshipped = 0, ntwin = 0, nrt = 0;
    size_t bytes = 0, ntok = 0;
    double t_enc = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        size_t len = strlen(text);
        const cJSON *want = cJSON_GetObjectItem(c, "ids"), *div = cJSON_GetObjectItem(c, "known_divergence");
        size_t nw = (size_t)cJSON_GetArraySize(want);
        int32_t *w = calloc(nw + 1, sizeof *w), *ids = NULL;
        size_t k = 0, nid = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, want) w[k++] = x->valueint;
        double a = mxp_now();
        st = mxp_tokenizer_encode(t, text, len, flags, &ids, &nid, &e);
        t_enc += mxp_now() - a;
        bytes += len;
        ntok += nid;
        CHECK(st == MXP_OK, "%s case %d: encode: %s", name, ncase, e.msg);
        int same = ids_equal(ids, nid, w, nw);
        if (div) {
            ndiv++;
            CHECK(!same, "%s case %d is marked known_divergence but matches", name, ncase);
            fprintf(stderr, "%s case %d: known divergence (%s)\n", name, ncase, div->valuestring);
            print_ids("reference", w, nw);
            print_ids("mixprec  ", ids, nid);
        } else {
            CHECK(same, "%s case %d differs from %s: %.60s", name, ncase,
                  cJSON_GetObjectItem(root, "reference")->valuestring, text);
            if (!same) {
                print_ids("reference", w, nw);
                print_ids("mixprec  ", ids, nid);
            }
            nmatch += same;
        }
        if (cJSON_GetObjectItem(c, "ids_as_shipped")) nshipped++;
        if (twin) {
            int32_t *ids2 = NULL;
            size_t n2 = 0;
            if (mxp_tokenizer_encode(twin, text, len, flags, &ids2, &n2, &e) == MXP_OK && ids_equal(ids, nid, ids2, n2))
                ntwin++;
            else {
                CHECK(0, "%s case %d: arrays build gives other ids", name, ncase);
                print_ids("tokenizer.json", ids, nid);
                print_ids("arrays        ", ids2, n2);
            }
            free(ids2);
        }
        // Round trip (special-token text would come back only without parsing).
        if (round_trip(t, text, len, 0)) nrt++;
        else CHECK(0, "%s case %d: decode(encode(x)) != x", name, ncase);
        free(w);
        free(ids);
        ncase++;
    }
    int nfuzz = 2000;
    int badrt = fuzz_round_trip(t, 12345, nfuzz, mxp_tokenizer_kind(t) == MXP_TOK_LLAMA, name);
    CHECK(badrt == 0, "%s: %d of %d random strings fail the round trip", name, badrt, nfuzz);
    // Throughput on a longer text: the case texts concatenated 20 times.
    size_t big = 0;
    cJSON_ArrayForEach(c, cases) big += strlen(cJSON_GetObjectItem(c, "text")->valuestring);
    char *blob = malloc(big * 20 + 1), *p = blob;
    for (int r = 0; r < 20; r++)
        cJSON_ArrayForEach(c, cases) {
            const char *s = cJSON_GetObjectItem(c, "text")->valuestring;
            memcpy(p, s, strlen(s));
            p += strlen(s);
        }
    int32_t *ids = NULL;
    size_t nid = 0;
    double a = mxp_now();
    st = mxp_tokenizer_encode(t, blob, big * 20, flags, &ids, &nid, &e);
    double t_big = mxp_now() - a;
    CHECK(st == MXP_OK, "%s: encode of %zu bytes: %s", name, big * 20, e.msg);
    free(ids);
    free(blob);
    fprintf(stderr, "%s: %d cases: %d match %s, %d known divergences, %d where the reference's "
            "shipped output differs (priority quirk), %d arrays-build matches, %d round trips, "
            "%d random round trips ok; load %.2f s; encode %.1f MB/s (%zu bytes -> %zu ids in cases; "
            "%zu bytes in %.3f s concatenated)\n",
            name, ncase, nmatch, cJSON_GetObjectItem(root, "reference")->valuestring, ndiv, nshipped,
            ntwin, nrt, nfuzz - badrt, t_load, t_enc > 0 ? bytes / t_enc / 1e6 : 0.0, bytes, ntok,
            big * 20, t_big);
    mxp_tokenizer_free(twin);
    mxp_tokenizer_free(t);
    cJSON_Delete(root);
}

// ---------------------------------------------------------------- NFC (Qwen2)

static mxp_tokenizer *qwen2_like(const char *normalizer_json) {
    size_t n = 0;
    char *buf = slurp("models/tiny/tokenizer.json", &n);
    cJSON *root = buf ? cJSON_ParseWithLength(buf, n) : NULL;
    free(buf);
    CHECK(root != NULL, "read models/tiny/tokenizer.json");
    if (!root) return NULL;
    // Qwen2's normalizer and pre-tokenizer pattern on the fixture's byte-level vocabulary
    cJSON_ReplaceItemInObjectCaseSensitive(root, "normalizer", cJSON_Parse(normalizer_json));
    cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    cJSON *split = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers"), 0);
    cJSON *pat = cJSON_GetObjectItemCaseSensitive(split, "pattern");
    cJSON_ReplaceItemInObjectCaseSensitive(
        pat, "Regex",
        cJSON_CreateString("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
                           "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    mxp_tokenizer *t = NULL;
    mxp_err e = {0};
    CHECK(json && mxp_tokenizer_parse_json(json, strlen(json), NULL, 0, NULL, 0, "qwen2.json", &t, &e) == MXP_OK,
          "Qwen2-like tokenizer: %s", e.msg);
    free(json);
    return t;
}

static int same_ids(const mxp_tokenizer *t, const char *a, const char *b, unsigned flags) {
    int32_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    mxp_err e = {0};
    int ok = mxp_tokenizer_encode(t, a, strlen(a), flags, &x, &nx, &e) == MXP_OK &&
             mxp_tokenizer_encode(t, b, strlen(b), flags, &y, &ny, &e) == MXP_OK && nx == ny &&
             (nx == 0 || !memcmp(x, y, nx * sizeof *x));
    CHECK(!e.msg[0], "encode: %s", e.msg);
    free(x);
    free(y);
    return ok;
}

// Texts that are not NFC give the ids of their NFC forms (written out by hand from the
// Unicode data: canonical composition, reordering of marks, singletons, Hangul).
static void unit_nfc_qwen2(void) {
    static const char *const pairs[][2] = {
        {"Caf" "e\xCC\x81 au lait", "Caf\xC3\xA9 au lait"},                    // e + U+0301 -> U+00E9
        {"\xE2\x84\xAB ngstr\xC3\xB6m", "\xC3\x85 ngstr\xC3\xB6m"},          // U+212B -> U+00C5
        {"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"},           // L V T -> U+AC01
        {"a\xCC\x82\xCC\xA3", "\xE1\xBA\xAD"},                                // a U+0302 U+0323 -> U+1EAD
        {"\xE1\xB8\x8B\xCC\xA3", "\xE1\xB8\x8D\xCC\x87"},                    // U+1E0B U+0323 -> U+1E0D U+0307
        {"x >\xCC\xB8 y", "x \xE2\x89\xAF y"},                                  // > U+0338 -> U+226F
        {"\xCC\x81" "e", "\xCC\x81" "e"},                                      // a leading mark stays
    };
    mxp_tokenizer *t = qwen2_like("{\"type\": \"NFC\"}");
    mxp_tokenizer *raw = qwen2_like("null");
    if (!t || !raw) {
        mxp_tokenizer_free(t);
        mxp_tokenizer_free(raw);
        return;
    }
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        CHECK(same_ids(t, pairs[i][0], pairs[i][1], 0), "NFC pair %zu: ids differ", i);
        // without the normalizer the byte-level ids differ (so the check above means something)
        if (strcmp(pairs[i][0], pairs[i][1]))
            CHECK(!same_ids(raw, pairs[i][0], pairs[i][1], 0), "pair %zu: same ids without NFC", i);
    }
    // segments between added tokens are normalized on their own (as Hugging Face does for
    // added tokens with "normalized": false): the mark after "<|endoftext|>" does not join ">"
    CHECK(same_ids(t, "e<|endoftext|>\xCC\xB8", "e<|endoftext|>\xCC\xB8", MXP_TOK_PARSE_SPECIAL), "special");
    int32_t *ids = NULL, *mark = NULL;
    size_t n = 0, nm = 0;
    mxp_err e = {0};
    CHECK(mxp_tokenizer_encode(t, "<|endoftext|>\xCC\xB8", 15, MXP_TOK_PARSE_SPECIAL, &ids, &n, &e) == MXP_OK &&
              mxp_tokenizer_encode(t, "\xCC\xB8", 2, 0, &mark, &nm, &e) == MXP_OK,
          "%s", e.msg);
    CHECK(ids && mark && n == nm + 1 && ids[0] == 2047 && !memcmp(ids + 1, mark, nm * sizeof *mark),
          "added token then U+0338: %zu ids", n);
    free(ids);
    free(mark);
    // invalid UTF-8 is still refused with its offset
    CHECK(mxp_tokenizer_encode(t, "ab\xCC", 3, 0, &ids, &n, &e) == MXP_ERR_ARG && strstr(e.msg, "offset 2"),
          "invalid UTF-8: %s", e.msg);
    mxp_tokenizer_free(t);
    mxp_tokenizer_free(raw);
}

int main(int argc, char **argv) {
    unit_tiny();
    unit_nfc_qwen2();
    unit_invalid_utf8();
    unit_corrupt_json();
    if ((argc - 1) % 2 != 0) {
        fprintf(stderr, "usage: %s [TOKENIZER_DIR EXPECTED_JSON]...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i + 1 < argc; i += 2) parity(argv[i], argv[i + 1]);
    CHECK_DONE();
}

// fuzz_tokenizer.c: libFuzzer target for the tokenizer.
//
// Input layout: one selector byte, then
//   selector even: a tokenizer.json image, optionally followed by "\0" and a text. The JSON
//     must parse or fail cleanly; when it parses, the text (if valid UTF-8) is encoded with
//     and without special-token parsing and the ids decoded; every id must be in range.
//   selector odd: a text for two fixed tokenizers built from arrays (byte-level and
//     SentencePiece-style with byte fallback). Valid UTF-8 must survive decode(encode(x))
//     byte for byte (U+2581 excepted for the SentencePiece one, where it is a space);
//     invalid UTF-8 must be rejected with a byte offset. The text's NFC form must be valid
//     UTF-8 and a fixed point of NFC.
// Any crash, sanitizer report or failed round trip is a finding.
#include <string.h>

#include "io/tokenizer.h"

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

static mxp_tokenizer *make_gpt2(void) {
    char store[256][4];
    const char *merged[] = {"Ġt", "he", "Ġthe", "in", "ĠĠ", "ĠĠĠĠ"};
    const char *merges[] = {"Ġ t", "h e", "Ġt he", "i n", "Ġ Ġ", "ĠĠ ĠĠ"};
    mxp_tok_str toks[262], ms[6];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        uint32_t cp = printable ? (uint32_t)b : 256u + (uint32_t)n++;
        toks[b] = (mxp_tok_str){store[b], put_utf8(store[b], cp)};
    }
    for (int i = 0; i < 6; i++) {
        toks[256 + i] = (mxp_tok_str){merged[i], strlen(merged[i])};
        ms[i] = (mxp_tok_str){merges[i], strlen(merges[i])};
    }
    mxp_tokenizer_desc d = {0};
    d.kind = MXP_TOK_GPT2;
    d.pre = MXP_TOK_PRE_LLAMA3;
    d.n_tokens = 262;
    d.tokens = toks;
    d.n_merges = 6;
    d.merges = ms;
    mxp_tokenizer *t = NULL;
    mxp_err e;
    if (mxp_tokenizer_from_arrays(&d, &t, &e)) abort();
    return t;
}

static mxp_tokenizer *make_llama(void) {
    char store[256][7];
    const char *pieces[] = {"▁", "a", "b", "▁a", "ab", "▁▁", "é"};
    mxp_tok_str toks[2 + 256 + 7];
    int32_t types[2 + 256 + 7];
    float scores[2 + 256 + 7];
    toks[0] = (mxp_tok_str){"<unk>", 5};
    toks[1] = (mxp_tok_str){"<s>", 3};
    types[0] = MXP_TOKT_UNKNOWN;
    types[1] = MXP_TOKT_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(store[b], sizeof store[b], "<0x%02X>", b);
        toks[2 + b] = (mxp_tok_str){store[b], 6};
        types[2 + b] = MXP_TOKT_BYTE;
    }
    for (int i = 0; i < 7; i++) {
        toks[258 + i] = (mxp_tok_str){pieces[i], strlen(pieces[i])};
        types[258 + i] = MXP_TOKT_NORMAL;
    }
    for (int i = 0; i < 265; i++) scores[i] = -(float)i;
    mxp_tokenizer_desc d = {0};
    d.kind = MXP_TOK_LLAMA;
    d.n_tokens = 265;
    d.tokens = toks;
    d.token_types = types;
    d.scores = scores;
    d.has_bos = 1;
    d.bos_id = 1;
    d.add_space_prefix = 1;
    d.split_on_space = 1;
    d.byte_fallback = 1;
    mxp_tokenizer *t = NULL;
    mxp_err e;
    if (mxp_tokenizer_from_arrays(&d, &t, &e)) abort();
    return t;
}

static int valid_utf8(const uint8_t *s, size_t n, int *has_meta) {
    *has_meta = 0;
    for (size_t p = 0; p < n;) {
        uint32_t cp;
        int k = mxp_utf8_decode(s + p, n - p, &cp);
        if (!k) return 0;
        if (cp == 0x2581) *has_meta = 1;
        p += (size_t)k;
    }
    return 1;
}

static void exercise(const mxp_tokenizer *t, const uint8_t *s, size_t n, unsigned flags,
                     int check_round_trip) {
    int32_t *ids = NULL;
    size_t nid = 0;
    mxp_err e;
    int meta;
    int valid = valid_utf8(s, n, &meta);
    mxp_status st = mxp_tokenizer_encode(t, (const char *)s, n, flags, &ids, &nid, &e);
    if (!valid) {
        if (st != MXP_ERR_ARG || !strstr(e.msg, "byte offset")) abort();
        return;
    }
    if (st != MXP_OK) {
        if (st != MXP_ERR_ARG && st != MXP_ERR_UNSUPPORTED) abort();
        return;
    }
    int32_t nv = mxp_tokenizer_vocab_size(t);
    for (size_t i = 0; i < nid; i++)
        if (ids[i] < 0 || ids[i] >= nv) abort();
    char *out = NULL;
    size_t olen = 0;
    if (mxp_tokenizer_decode(t, ids, nid, 0, &out, &olen, &e) != MXP_OK) abort();
    if (check_round_trip && !(mxp_tokenizer_kind(t) == MXP_TOK_LLAMA && meta))
        if (olen != n || memcmp(out, s, n) != 0) abort();
    free(out);
    free(ids);
}

// NFC of valid UTF-8 is valid UTF-8 and a fixed point; text the quick check passes is
// left unchanged; invalid UTF-8 is refused with its offset.
static void check_nfc(const uint8_t *s, size_t n) {
    int meta;
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    mxp_err e;
    if (!valid_utf8(s, n, &meta)) {
        if (mxp_utf8_nfc(s, n, &a, &na, &e) != MXP_ERR_ARG || !strstr(e.msg, "byte offset")) abort();
        return;
    }
    if (mxp_utf8_nfc(s, n, &a, &na, &e)) abort();
    if (!valid_utf8(a, na, &meta) || mxp_utf8_nfc(a, na, &b, &nb, &e)) abort();
    if (nb != na || memcmp(a, b, na)) abort();
    if (mxp_utf8_nfc_quick(s, n) && (na != n || memcmp(a, s, n))) abort();
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        check_nfc(p, n);
        mxp_tokenizer *g = make_gpt2(), *l = make_llama();
        exercise(g, p, n, 0, 1);
        exercise(l, p, n, 0, 1);
        mxp_tokenizer_free(g);
        mxp_tokenizer_free(l);
        return 0;
    }
    const uint8_t *nul = memchr(p, 0, n);
    size_t jn = nul ? (size_t)(nul - p) : n;
    mxp_tokenizer *t = NULL;
    mxp_err e;
    mxp_status st = mxp_tokenizer_parse_json((const char *)p, jn, NULL, 0, NULL, 0, "fuzz.json", &t, &e);
    if (st != MXP_OK) {
        if (t || !strstr(e.msg, "fuzz.json")) abort();
        return 0;
    }
    const uint8_t *text = nul ? nul + 1 : (const uint8_t *)"Hello world 123 \xE2\x96\x81 ok";
    size_t tn = nul ? n - jn - 1 : strlen((const char *)text);
    exercise(t, text, tn, 0, 0);
    exercise(t, text, tn, MXP_TOK_PARSE_SPECIAL, 0);
    mxp_tokenizer_free(t);
    return 0;
}

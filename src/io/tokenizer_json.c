// tokenizer_json.c: read a Hugging Face tokenizer.json (+ tokenizer_config.json and
// config.json) into an mxp_tokenizer_desc and build it with mxp_tokenizer_from_arrays.
//
// What is understood (anything else is MXP_ERR_UNSUPPORTED quoting what was found):
//   model: {"type": "BPE", "vocab": {token: id}, "merges": ["a b", ...] or [["a","b"], ...],
//           "byte_fallback", "ignore_merges", "unk_token", "fuse_unk"; no subword prefix/suffix}
//   added_tokens: [{"id", "content", "special", "lstrip", "rstrip", ...}]
//   normalizer: null | NFC | Prepend("▁") | Replace(" " -> "▁") | Sequence of those
//   pre_tokenizer: null | ByteLevel | Split(one of the known regexes, Isolated) |
//                  Metaspace("▁") | Sequence of those
//   post_processor: TemplateProcessing gives the default BOS/EOS; others are ignored
//   decoder: not read (decoding follows the model kind)
// Kind: a ByteLevel pre-tokenizer makes it MXP_TOK_GPT2; "▁" handling (Replace normalizer or
// Metaspace) makes it MXP_TOK_LLAMA.
// The file is hostile: every type is checked, ids must cover 0..n-1 exactly once (vocab and
// added tokens agreeing where they overlap), and errors name the file.
#include "io/tokenizer.h"

#include <cJSON.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define LLAMA3_PATTERN \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_PATTERN \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define SPM_SPACE "\xE2\x96\x81"  // U+2581

typedef struct jctx {
    const char *lab;      // tokenizer.json label
    mxp_err *err;
    mxp_tokenizer_desc d;
    int saw_bytelevel, saw_spm, saw_split;
    int bytelevel_regex;  // a ByteLevel with use_regex true
    int32_t n;
    mxp_tok_str *tokens;  // (n)
    int32_t *types;       // (n)
    uint8_t *strip;       // (n)
    uint8_t *have;        // (n)
    mxp_tok_str *pairs;   // (2 * n_merges)
} jctx;

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// Booleans: absent -> def, true/false -> value, anything else -> -1.
static int jbool(const cJSON *o, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return def;
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return -1;
}

// A JSON number that is an integer in [lo, hi].
static int jint(const cJSON *v, long lo, long hi, long *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double x = v->valuedouble;
    if (!(x >= (double)lo && x <= (double)hi) || x != (double)(long)x) return 0;
    *out = (long)x;
    return 1;
}

static mxp_status bad(jctx *c, const char *what) {
    return mxp_fail(c->err, MXP_ERR_FORMAT, "%s: %s", c->lab, what);
}

// ---------------------------------------------------------------- normalizer / pre-tokenizer

static mxp_status read_normalizer(jctx *c, const cJSON *nm) {
    if (!nm || cJSON_IsNull(nm)) return MXP_OK;
    const char *type = jstr(nm, "type");
    if (!type) return bad(c, "normalizer has no type");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(nm, "normalizers");
        if (!cJSON_IsArray(list)) return bad(c, "normalizer Sequence without a normalizers array");
        const cJSON *x;
        mxp_status st;
        cJSON_ArrayForEach(x, list) if ((st = read_normalizer(c, x))) return st;
        return MXP_OK;
    }
    if (strcmp(type, "NFC") == 0) {
        c->d.nfc = 1;
        return MXP_OK;
    }
    if (strcmp(type, "Prepend") == 0) {
        const char *p = jstr(nm, "prepend");
        if (!p || strcmp(p, SPM_SPACE) != 0)
            return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: normalizer Prepend of '%.40s' (only "
                            "\"" SPM_SPACE "\" is supported)", c->lab, p ? p : "(none)");
        c->d.add_space_prefix = 1;
        c->saw_spm = 1;
        return MXP_OK;
    }
    if (strcmp(type, "Replace") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(nm, "pattern");
        const char *from = pat ? jstr(pat, "String") : NULL, *to = jstr(nm, "content");
        if (!from || !to || strcmp(from, " ") != 0 || strcmp(to, SPM_SPACE) != 0)
            return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: normalizer Replace '%.40s' -> '%.40s' "
                            "(only \" \" -> \"" SPM_SPACE "\" is supported)", c->lab,
                            from ? from : "(not a string)", to ? to : "(none)");
        c->saw_spm = 1;
        return MXP_OK;
    }
    return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: normalizer type '%.60s' is not supported",
                    c->lab, type);
}

static mxp_status read_pretok(jctx *c, const cJSON *pt) {
    if (!pt || cJSON_IsNull(pt)) return MXP_OK;
    const char *type = jstr(pt, "type");
    if (!type) return bad(c, "pre_tokenizer has no type");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers");
        if (!cJSON_IsArray(list)) return bad(c, "pre_tokenizer Sequence without a pretokenizers array");
        const cJSON *x;
        mxp_status st;
        cJSON_ArrayForEach(x, list) if ((st = read_pretok(c, x))) return st;
        return MXP_OK;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        int aps = jbool(pt, "add_prefix_space", 0), re = jbool(pt, "use_regex", 1);
        if (aps < 0 || re < 0) return bad(c, "ByteLevel pre_tokenizer: add_prefix_space/use_regex not booleans");
        c->saw_bytelevel = 1;
        c->d.add_prefix_space = aps;
        if (re) c->bytelevel_regex = 1;
        return MXP_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        const char *re = pat ? jstr(pat, "Regex") : NULL;
        const char *beh = jstr(pt, "behavior");
        int inv = jbool(pt, "invert", 0);
        if (!re)
            return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: Split pre_tokenizer without a Regex "
                            "pattern is not supported", c->lab);
        if (strcmp(re, GPT2_PATTERN) == 0) c->d.pre = MXP_TOK_PRE_GPT2;
        else if (strcmp(re, LLAMA3_PATTERN) == 0) c->d.pre = MXP_TOK_PRE_LLAMA3;
        else if (strcmp(re, QWEN2_PATTERN) == 0) c->d.pre = MXP_TOK_PRE_QWEN2;
        else
            return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: Split pre_tokenizer pattern \"%.400s\" "
                            "is not one of the known ones (GPT-2, Llama 3, Qwen2)", c->lab, re);
        if (!beh || strcmp(beh, "Isolated") != 0 || inv != 0)
            return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: Split pre_tokenizer behavior '%.40s' "
                            "invert %d (only Isolated, not inverted)", c->lab, beh ? beh : "(none)", inv);
        if (c->saw_split) return bad(c, "more than one Split pre_tokenizer");
        c->saw_split = 1;
        return MXP_OK;
    }
    if (strcmp(type, "Metaspace") == 0) {
        const char *rep = jstr(pt, "replacement");
        if (!rep || strcmp(rep, SPM_SPACE) != 0)
            return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: Metaspace replacement '%.40s' (only "
                            "\"" SPM_SPACE "\")", c->lab, rep ? rep : "(none)");
        const char *scheme = jstr(pt, "prepend_scheme");
        int aps = jbool(pt, "add_prefix_space", 1), split = jbool(pt, "split", 1);
        if (aps < 0 || split < 0) return bad(c, "Metaspace: add_prefix_space/split not booleans");
        if (scheme) {
            if (strcmp(scheme, "always") == 0) aps = 1;
            else if (strcmp(scheme, "first") == 0) { aps = 1; c->d.prefix_first_only = 1; }
            else if (strcmp(scheme, "never") == 0) aps = 0;
            else
                return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: Metaspace prepend_scheme '%.40s'",
                                c->lab, scheme);
        }
        c->d.add_space_prefix = aps;
        c->d.split_on_space = split;
        c->saw_spm = 1;
        return MXP_OK;
    }
    return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: pre_tokenizer type '%.60s' is not supported",
                    c->lab, type);
}

// ---------------------------------------------------------------- vocabulary

static mxp_status put_token(jctx *c, long id, const char *s, int32_t type, const char *where) {
    if (id < 0 || id >= c->n)
        return mxp_fail(c->err, MXP_ERR_FORMAT, "%s: %s: id %ld out of range [0, %d)", c->lab,
                        where, id, (int)c->n);
    if (c->have[id]) {
        if (strcmp(c->tokens[id].s, s) != 0)
            return mxp_fail(c->err, MXP_ERR_FORMAT, "%s: %s: id %ld is given to both '%.40s' and "
                            "'%.40s'", c->lab, where, id, c->tokens[id].s, s);
    }
    c->have[id] = 1;
    c->tokens[id].s = s;
    c->tokens[id].len = strlen(s);
    c->types[id] = type;
    return MXP_OK;
}

static mxp_status read_vocab(jctx *c, const cJSON *model, const cJSON *added) {
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) return bad(c, "model.vocab is not an object");
    int nv = cJSON_GetArraySize(vocab), na = added ? cJSON_GetArraySize(added) : 0;
    if (nv <= 0) return bad(c, "model.vocab is empty");
    if (nv > (1 << 26) || na > (1 << 26)) return bad(c, "vocabulary too large");
    // n = one past the largest id; checked below to have no holes.
    long maxid = -1, id = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vocab) {
        if (!jint(v, LONG_MIN / 2, LONG_MAX / 2, &id))
            return mxp_fail(c->err, MXP_ERR_FORMAT, "%s: model.vocab: the id of token '%.40s' is not "
                            "an integer", c->lab, v->string ? v->string : "");
        if (id < 0 || id >= (long)nv + na)
            return mxp_fail(c->err, MXP_ERR_FORMAT, "%s: model.vocab: token '%.40s' has id %ld, out "
                            "of range [0, %d)", c->lab, v->string ? v->string : "", id, nv + na);
        if (id > maxid) maxid = id;
    }
    cJSON_ArrayForEach(v, added) {
        if (!cJSON_IsObject(v) || !jint(cJSON_GetObjectItemCaseSensitive(v, "id"), 0,
                                        (long)nv + na - 1, &id) || !jstr(v, "content"))
            return bad(c, "added_tokens: an entry lacks an integer id in range or a string content");
        if (id > maxid) maxid = id;
    }
    c->n = (int32_t)(maxid + 1);
    c->tokens = mxp_calloc((size_t)c->n, sizeof *c->tokens);
    c->types = mxp_calloc((size_t)c->n, sizeof *c->types);
    c->strip = mxp_calloc((size_t)c->n, 1);
    c->have = mxp_calloc((size_t)c->n, 1);
    if (!c->tokens || !c->types || !c->strip || !c->have)
        return mxp_fail(c->err, MXP_ERR_NOMEM, "%s: out of memory", c->lab);
    mxp_status st;
    cJSON_ArrayForEach(v, vocab) {
        jint(v, 0, maxid, &id);
        if (c->have[id])
            return mxp_fail(c->err, MXP_ERR_FORMAT, "%s: model.vocab: id %ld is given to both "
                            "'%.40s' and '%.40s'", c->lab, id, c->tokens[id].s, v->string);
        if ((st = put_token(c, id, v->string, MXP_TOKT_NORMAL, "model.vocab"))) return st;
    }
    cJSON_ArrayForEach(v, added) {
        jint(cJSON_GetObjectItemCaseSensitive(v, "id"), 0, maxid, &id);
        int special = jbool(v, "special", 0), l = jbool(v, "lstrip", 0), r = jbool(v, "rstrip", 0);
        int single = jbool(v, "single_word", 0);
        if (special < 0 || l < 0 || r < 0 || single < 0)
            return bad(c, "added_tokens: special/lstrip/rstrip/single_word must be booleans");
        if (single)
            return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: added token %ld has single_word=true "
                            "(not supported)", c->lab, id);
        if ((st = put_token(c, id, jstr(v, "content"),
                            special ? MXP_TOKT_CONTROL : MXP_TOKT_USER_DEFINED, "added_tokens")))
            return st;
        c->strip[id] = (uint8_t)(l | (r << 1));
    }
    for (int32_t i = 0; i < c->n; i++)
        if (!c->have[i])
            return mxp_fail(c->err, MXP_ERR_FORMAT, "%s: no token has id %d (ids must cover 0..%d)",
                            c->lab, (int)i, (int)c->n - 1);
    return MXP_OK;
}

static mxp_status read_merges(jctx *c, const cJSON *model) {
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!merges || cJSON_IsNull(merges)) return MXP_OK;
    if (!cJSON_IsArray(merges)) return bad(c, "model.merges is not an array");
    int nm = cJSON_GetArraySize(merges);
    if (nm == 0) return MXP_OK;
    c->pairs = mxp_calloc((size_t)nm * 2, sizeof *c->pairs);
    if (!c->pairs) return mxp_fail(c->err, MXP_ERR_NOMEM, "%s: out of memory", c->lab);
    int m = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, merges) {
        const char *l = NULL, *r = NULL;
        size_t ln = 0, rn = 0;
        if (cJSON_IsString(v)) {
            const char *s = v->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return mxp_fail(c->err, MXP_ERR_FORMAT, "%s: merge %d ('%.60s') is not two tokens "
                                "separated by one space", c->lab, m, s);
            l = s; ln = (size_t)(sp - s);
            r = sp + 1; rn = strlen(r);
        } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(v, 0)) && cJSON_IsString(cJSON_GetArrayItem(v, 1))) {
            l = cJSON_GetArrayItem(v, 0)->valuestring; ln = strlen(l);
            r = cJSON_GetArrayItem(v, 1)->valuestring; rn = strlen(r);
        } else {
            return mxp_fail(c->err, MXP_ERR_FORMAT, "%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]",
                            c->lab, m);
        }
        c->pairs[2 * m] = (mxp_tok_str){l, ln};
        c->pairs[2 * m + 1] = (mxp_tok_str){r, rn};
        m++;
    }
    c->d.n_merges = m;
    c->d.merge_pairs = c->pairs;
    return MXP_OK;
}

// A token named in tokenizer_config.json: a string or {"content": string}.
static const char *config_token(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) return jstr(v, "content");
    return NULL;
}

static mxp_status find_named(jctx *c, const char *file, const char *key, const char *s,
                             int *has, int32_t *id) {
    for (int32_t i = 0; i < c->n; i++)
        if (strcmp(c->tokens[i].s, s) == 0) {
            *has = 1;
            *id = i;
            return MXP_OK;
        }
    return mxp_fail(c->err, MXP_ERR_FORMAT, "%s: %s '%.60s' is not a token of %s", file, key, s, c->lab);
}

// config.json bos_token_id / eos_token_id: an integer or a list (the first one is used).
static mxp_status model_config_id(jctx *c, const cJSON *mc, const char *key, int *has, int32_t *id) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(mc, key);
    if (!v || cJSON_IsNull(v)) return MXP_OK;
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
    long x;
    if (!v || !jint(v, 0, (long)c->n - 1, &x))
        return mxp_fail(c->err, MXP_ERR_FORMAT, "config.json: %s is not a token id in [0, %d)", key,
                        (int)c->n);
    *has = 1;
    *id = (int32_t)x;
    return MXP_OK;
}

static cJSON *parse_or_fail(const char *buf, size_t len, const char *label, mxp_err *err) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!j) {
        size_t at = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        mxp_fail(err, MXP_ERR_FORMAT, "%s: invalid JSON near byte %zu", label, at);
    }
    return j;
}

static mxp_status parse_all(jctx *c, const cJSON *root, const cJSON *cfg, const cJSON *mc,
                            mxp_tokenizer **out) {
    mxp_status st;
    if (!cJSON_IsObject(root)) return bad(c, "top level is not an object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return bad(c, "no model object");
    const char *mtype = jstr(model, "type");
    if (mtype && strcmp(mtype, "BPE") != 0)
        return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: model type '%.40s' is not supported (BPE "
                        "only)", c->lab, mtype);
    if (!mtype && !cJSON_GetObjectItemCaseSensitive(model, "merges"))
        return bad(c, "model has no type and no merges");
    const char *pre = jstr(model, "continuing_subword_prefix"), *suf = jstr(model, "end_of_word_suffix");
    if ((pre && *pre) || (suf && *suf))
        return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: BPE continuing_subword_prefix / "
                        "end_of_word_suffix are not supported", c->lab);
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (drop && !cJSON_IsNull(drop) && !(cJSON_IsNumber(drop) && drop->valuedouble == 0))
        return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", c->lab);
    int bf = jbool(model, "byte_fallback", 0), im = jbool(model, "ignore_merges", 0);
    if (bf < 0 || im < 0) return bad(c, "model.byte_fallback / ignore_merges are not booleans");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) return bad(c, "added_tokens is not an array");
    if (added && !cJSON_IsArray(added)) added = NULL;
    if ((st = read_vocab(c, model, added))) return st;
    if ((st = read_merges(c, model))) return st;
    if ((st = read_normalizer(c, cJSON_GetObjectItemCaseSensitive(root, "normalizer")))) return st;
    if ((st = read_pretok(c, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer")))) return st;
    if (c->saw_bytelevel && c->saw_spm)
        return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: both byte-level and SentencePiece-style "
                        "space handling", c->lab);
    if (c->saw_bytelevel) {
        c->d.kind = MXP_TOK_GPT2;
        if (c->saw_split && c->bytelevel_regex)
            return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: a Split regex followed by a ByteLevel "
                            "with use_regex=true (two regex passes) is not supported", c->lab);
        if (!c->saw_split && !c->bytelevel_regex)
            return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: ByteLevel without any regex split is "
                            "not supported", c->lab);
        if (!c->saw_split) c->d.pre = MXP_TOK_PRE_GPT2;
        if (bf) return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: byte_fallback with a byte-level "
                                "pre-tokenizer", c->lab);
    } else if (c->saw_spm) {
        c->d.kind = MXP_TOK_LLAMA;
        if (c->saw_split)
            return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: Split regex with SentencePiece-style "
                            "BPE", c->lab);
        if (c->d.nfc) return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: NFC with SentencePiece-style BPE", c->lab);
        if (im) return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: ignore_merges with SentencePiece-style BPE", c->lab);
    } else {
        return mxp_fail(c->err, MXP_ERR_UNSUPPORTED, "%s: neither a ByteLevel pre_tokenizer nor "
                        "\"" SPM_SPACE "\" space handling: cannot tell the tokenizer kind", c->lab);
    }
    c->d.byte_fallback = bf;
    c->d.ignore_merges = im;
    // Byte tokens of a SentencePiece vocabulary, and the unknown token.
    if (c->d.kind == MXP_TOK_LLAMA && bf)
        for (int32_t i = 0; i < c->n; i++) {
            const char *s = c->tokens[i].s;
            if (c->types[i] == MXP_TOKT_NORMAL && strlen(s) == 6 && strncmp(s, "<0x", 3) == 0 && s[5] == '>')
                c->types[i] = MXP_TOKT_BYTE;
        }
    const char *unk = jstr(model, "unk_token");
    if (unk) {
        if ((st = find_named(c, c->lab, "model.unk_token", unk, &c->d.has_unk, &c->d.unk_id))) return st;
        if (c->types[c->d.unk_id] == MXP_TOKT_NORMAL) c->types[c->d.unk_id] = MXP_TOKT_UNKNOWN;
    }
    // BOS/EOS: the post-processor template, then tokenizer_config.json, then config.json.
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    const char *pptype = pp ? jstr(pp, "type") : NULL;
    if (pptype && strcmp(pptype, "Sequence") == 0) {
        const cJSON *x, *list = cJSON_GetObjectItemCaseSensitive(pp, "processors");
        pp = NULL;
        cJSON_ArrayForEach(x, list) {
            const char *ty = jstr(x, "type");
            if (ty && strcmp(ty, "TemplateProcessing") == 0) pp = x;
        }
        pptype = pp ? "TemplateProcessing" : NULL;
    }
    if (pptype && strcmp(pptype, "TemplateProcessing") == 0) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
        int ns = cJSON_IsArray(single) ? cJSON_GetArraySize(single) : 0;
        for (int k = 0; k < ns; k += ns - 1 > 0 ? ns - 1 : 1) {
            const cJSON *spt = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(single, k), "SpecialToken");
            const char *name = spt ? jstr(spt, "id") : NULL;
            if (!name) continue;
            if (k == 0) {
                if ((st = find_named(c, c->lab, "post_processor", name, &c->d.has_bos, &c->d.bos_id))) return st;
                c->d.add_bos = 1;
            } else {
                if ((st = find_named(c, c->lab, "post_processor", name, &c->d.has_eos, &c->d.eos_id))) return st;
                c->d.add_eos = 1;
            }
        }
    }
    if (cfg) {
        if (!cJSON_IsObject(cfg)) return mxp_fail(c->err, MXP_ERR_FORMAT, "tokenizer_config.json: not an object");
        const char *b = config_token(cfg, "bos_token"), *e = config_token(cfg, "eos_token");
        if (b && (st = find_named(c, "tokenizer_config.json", "bos_token", b, &c->d.has_bos, &c->d.bos_id))) return st;
        if (e && (st = find_named(c, "tokenizer_config.json", "eos_token", e, &c->d.has_eos, &c->d.eos_id))) return st;
        int ab = jbool(cfg, "add_bos_token", c->d.add_bos), ae = jbool(cfg, "add_eos_token", c->d.add_eos);
        if (ab < 0 || ae < 0)
            return mxp_fail(c->err, MXP_ERR_FORMAT, "tokenizer_config.json: add_bos_token/add_eos_token not booleans");
        c->d.add_bos = ab;
        c->d.add_eos = ae;
    }
    if (mc) {
        if (!cJSON_IsObject(mc)) return mxp_fail(c->err, MXP_ERR_FORMAT, "config.json: not an object");
        if (!c->d.has_bos && (st = model_config_id(c, mc, "bos_token_id", &c->d.has_bos, &c->d.bos_id))) return st;
        if (!c->d.has_eos && (st = model_config_id(c, mc, "eos_token_id", &c->d.has_eos, &c->d.eos_id))) return st;
    }
    c->d.n_tokens = c->n;
    c->d.tokens = c->tokens;
    c->d.token_types = c->types;
    c->d.token_strip = c->strip;
    c->d.label = c->lab;
    return mxp_tokenizer_from_arrays(&c->d, out, c->err);
}

mxp_status mxp_tokenizer_parse_json(const char *json, size_t len, const char *config_json,
                                    size_t config_len, const char *model_config_json,
                                    size_t model_config_len, const char *label,
                                    mxp_tokenizer **out, mxp_err *err) {
    *out = NULL;
    jctx c = {0};
    c.lab = label ? label : "tokenizer.json";
    c.err = err;
    cJSON *root = parse_or_fail(json, len, c.lab, err), *cfg = NULL, *mc = NULL;
    mxp_status st = root ? MXP_OK : MXP_ERR_FORMAT;
    if (!st && config_json && !(cfg = parse_or_fail(config_json, config_len, "tokenizer_config.json", err)))
        st = MXP_ERR_FORMAT;
    if (!st && model_config_json && !(mc = parse_or_fail(model_config_json, model_config_len, "config.json", err)))
        st = MXP_ERR_FORMAT;
    if (!st) st = parse_all(&c, root, cfg, mc, out);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    cJSON_Delete(mc);
    free(c.tokens); free(c.types); free(c.strip); free(c.have); free(c.pairs);
    return st;
}

// Read a whole file; *buf is malloc'd (NUL-terminated). Missing file: MXP_ERR_IO.
static mxp_status read_file(const char *path, char **buf, size_t *len, mxp_err *err) {
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mxp_fail(err, MXP_ERR_IO, "%s: cannot open", path);
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            char *nb = cap < ((size_t)1 << 31) ? realloc(b, cap * 2) : NULL;
            if (!nb) { free(b); b = NULL; break; }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int bad_read = ferror(f);
    fclose(f);
    if (!b) return mxp_fail(err, MXP_ERR_NOMEM, "%s: out of memory (or larger than 2 GiB)", path);
    if (bad_read) {
        free(b);
        return mxp_fail(err, MXP_ERR_IO, "%s: read error", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return MXP_OK;
}

mxp_status mxp_tokenizer_load_json(const char *path, mxp_tokenizer **out, mxp_err *err) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return mxp_fail(err, MXP_ERR_IO, "%s: not found", path);
    size_t pl = strlen(path);
    char *dir = malloc(pl + 2), *p1 = malloc(pl + 32), *p2 = malloc(pl + 32), *p3 = malloc(pl + 32);
    char *tj = NULL, *tc = NULL, *mc = NULL;
    size_t tjn = 0, tcn = 0, mcn = 0;
    mxp_status st = MXP_OK;
    if (!dir || !p1 || !p2 || !p3) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(dir, pl + 2, "%s/", path);
        snprintf(p1, pl + 32, "%stokenizer.json", dir);
    } else {
        const char *slash = strrchr(path, '/');
        size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
        memcpy(dir, path, dl);
        dir[dl] = 0;
        snprintf(p1, pl + 32, "%s", path);
    }
    snprintf(p2, pl + 32, "%stokenizer_config.json", dir);
    snprintf(p3, pl + 32, "%sconfig.json", dir);
    if ((st = read_file(p1, &tj, &tjn, err))) goto done;
    if (stat(p2, &sb) == 0 && (st = read_file(p2, &tc, &tcn, err))) goto done;
    if (stat(p3, &sb) == 0 && (st = read_file(p3, &mc, &mcn, err))) goto done;
    st = mxp_tokenizer_parse_json(tj, tjn, tc, tcn, mc, mcn, p1, out, err);
done:
    free(dir); free(p1); free(p2); free(p3); free(tj); free(tc); free(mc);
    return st;
}

// tokenizer.h: BPE tokenizers of the two kinds LLMs ship, built from a Hugging Face
// tokenizer.json or from in-memory arrays (what a GGUF reader finds under tokenizer.ggml.*).
//
// Kinds:
//  - MXP_TOK_GPT2 ("gpt2" in GGUF): byte-level BPE. The text is split by a pre-tokenizer
//    regex (GPT-2's, Llama 3's or Qwen2's, implemented as hand-written matchers), every piece
//    is taken as UTF-8 bytes, each byte starts as its own token and merges apply by rank.
//    Vocabulary strings use GPT-2's bytes-to-unicode mapping ("Ġ" for a space) and are
//    converted to raw bytes at build time.
//  - MXP_TOK_LLAMA ("llama" in GGUF): SentencePiece-style BPE (Llama 2, Mistral). Spaces
//    become U+2581 "▁", one "▁" is prepended, characters start as tokens, merges apply by
//    rank (tokenizer.json "merges") or by the score of the merged token (GGUF scores);
//    characters missing from the vocabulary fall back to <0xNN> byte tokens.
// Added tokens (special or not) are matched in the text before any of that.
//
// The core is mxp_tokenizer_from_arrays; mxp_tokenizer_load_json / _parse_json read a
// tokenizer.json (+ tokenizer_config.json, config.json) into the same arrays and call it.
// Every input file is hostile: bad JSON, unknown tokens in merges, ids out of range or
// duplicated give an mxp_status naming the file, never a crash. Invalid UTF-8 given to
// encode is an error naming the byte offset.
//
// Semantics worth knowing: \s in the pre-tokenizer regexes is Unicode White_Space (as in
// Oniguruma, Rust regex, Python regex), \p{L}/\p{N} come from Unicode 14.0 tables
// (unicode_tables.c); (?i) folds U+017F to s. SentencePiece style: a literal U+2581 in the
// text is a space (as in Hugging Face), so it decodes to " "; consecutive unknown characters
// (no byte fallback) fuse into one unk token; byte-fallback and unk symbols never merge
// unless a merge names a <0xNN> token. The NFC normalizer (Qwen2) is applied (nfc.c).
//
// A built tokenizer is immutable: encode/decode may run on it from several threads.
#ifndef MXP_TOKENIZER_H
#define MXP_TOKENIZER_H

#include "core/base.h"

typedef struct mxp_tokenizer mxp_tokenizer;

typedef enum mxp_tok_kind {
    MXP_TOK_GPT2 = 1,   // byte-level BPE
    MXP_TOK_LLAMA = 2,  // SentencePiece-style BPE with byte fallback
} mxp_tok_kind;

// Pre-tokenizer of a byte-level tokenizer (ignored for MXP_TOK_LLAMA).
typedef enum mxp_tok_pre {
    MXP_TOK_PRE_GPT2 = 1,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    MXP_TOK_PRE_LLAMA3 = 2,  // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|...
    MXP_TOK_PRE_QWEN2 = 3,   // as LLAMA3 with \p{N} (one digit) instead of \p{N}{1,3}
} mxp_tok_pre;

// Token types, numbered as GGUF's tokenizer.ggml.token_type.
typedef enum mxp_tok_type {
    MXP_TOKT_NORMAL = 1,
    MXP_TOKT_UNKNOWN = 2,
    MXP_TOKT_CONTROL = 3,       // special added token (<s>, <|eot_id|>): matched in text only
                                // with MXP_TOK_PARSE_SPECIAL, skipped by MXP_TOK_SKIP_SPECIAL
    MXP_TOKT_USER_DEFINED = 4,  // non-special added token: always matched in text, literal
    MXP_TOKT_UNUSED = 5,
    MXP_TOKT_BYTE = 6,          // <0xNN> byte fallback token (MXP_TOK_LLAMA)
} mxp_tok_type;

// A string with an explicit length (GGUF strings are not NUL-terminated).
typedef struct mxp_tok_str {
    const char *s;
    size_t len;
} mxp_tok_str;

// What mxp_tokenizer_from_arrays reads. Zero-initialise, then fill. Borrowed: nothing here
// is kept after the call returns (the tokenizer copies what it needs).
typedef struct mxp_tokenizer_desc {
    mxp_tok_kind kind;
    mxp_tok_pre pre;             // MXP_TOK_GPT2 only; 0 means MXP_TOK_PRE_GPT2
    int32_t n_tokens;            // > 0
    const mxp_tok_str *tokens;   // (n_tokens) token strings as stored: "Ġthe", "▁the", "<0x0A>"
    const int32_t *token_types;  // (n_tokens) mxp_tok_type values, or NULL (all NORMAL)
    const float *scores;         // (n_tokens) or NULL; MXP_TOK_LLAMA without merges merges by
                                 // highest score of the merged token (llama.cpp's rule)
    int32_t n_merges;
    const mxp_tok_str *merges;   // (n_merges) "left right", highest priority first
    const mxp_tok_str *merge_pairs;  // or (2 * n_merges) left, right (tokens with spaces)
    const uint8_t *token_strip;  // (n_tokens) or NULL: added tokens' bit0 lstrip, bit1 rstrip
    const char *label;           // names the source in error messages (e.g. the file path)
    int has_bos, has_eos, has_unk;
    int32_t bos_id, eos_id, unk_id;  // valid where has_* is set
    int add_bos, add_eos;        // the model's defaults (reported by mxp_tokenizer_add_bos)
    // MXP_TOK_LLAMA options (GGUF: tokenizer.ggml.add_space_prefix, default true):
    int add_space_prefix;        // prepend "▁" to the text (each segment between added tokens)
    int prefix_first_only;       // with add_space_prefix: only before the first segment
    int split_on_space;          // Metaspace split=true: pieces start at each "▁"
    int byte_fallback;           // unknown characters -> <0xNN> tokens (else unk_id)
    // MXP_TOK_GPT2 options:
    int ignore_merges;           // a piece found whole in the vocabulary is one token (Llama 3)
    int add_prefix_space;        // ByteLevel add_prefix_space: a space before the text
    int nfc;                     // normalizer NFC (Qwen2): text is NFC-normalized before encoding
} mxp_tokenizer_desc;

// Build a tokenizer from arrays. On success *out owns a new tokenizer (free with
// mxp_tokenizer_free). Errors: MXP_ERR_FORMAT (merges naming unknown tokens, duplicate
// tokens, ids out of range, missing byte tokens), MXP_ERR_ARG, MXP_ERR_NOMEM.
mxp_status mxp_tokenizer_from_arrays(const mxp_tokenizer_desc *d, mxp_tokenizer **out,
                                     mxp_err *err);

// Load a Hugging Face tokenizer. `path` is a model folder (reads tokenizer.json and, when
// present, tokenizer_config.json and config.json) or a tokenizer.json file (the two others
// are looked for beside it).
mxp_status mxp_tokenizer_load_json(const char *path, mxp_tokenizer **out, mxp_err *err);

// The same from memory. config_json / model_config_json may be NULL. `label` names the
// tokenizer.json source in messages.
mxp_status mxp_tokenizer_parse_json(const char *json, size_t len, const char *config_json,
                                    size_t config_len, const char *model_config_json,
                                    size_t model_config_len, const char *label,
                                    mxp_tokenizer **out, mxp_err *err);

// Map a GGUF tokenizer.ggml.pre name ("gpt2", "llama-bpe", "qwen2", "default", ...) to a
// pre-tokenizer. MXP_ERR_UNSUPPORTED naming it when unknown.
mxp_status mxp_tokenizer_pre_from_name(const char *name, mxp_tok_pre *pre, mxp_err *err);

void mxp_tokenizer_free(mxp_tokenizer *t);  // NULL is fine

// Encode flags.
#define MXP_TOK_ADD_BOS 1u        // put the BOS id first (error if the model has none)
#define MXP_TOK_ADD_EOS 2u        // put the EOS id last (error if the model has none)
#define MXP_TOK_PARSE_SPECIAL 4u  // match CONTROL tokens written in the text ("<|eot_id|>")
// Encode `len` bytes of UTF-8. On success *ids is a malloc'd array of *n ids (caller frees;
// NULL when *n == 0). Errors: MXP_ERR_ARG for invalid UTF-8 (the message gives the byte
// offset) or a flag the model cannot honour; MXP_ERR_NOMEM. A tokenizer with an NFC
// normalizer (Qwen2) encodes the NFC form of each text segment between added tokens, so
// canonically equivalent texts give the same ids.
mxp_status mxp_tokenizer_encode(const mxp_tokenizer *t, const char *utf8, size_t len,
                                unsigned flags, int32_t **ids, size_t *n, mxp_err *err);

// Decode flags.
#define MXP_TOK_SKIP_SPECIAL 1u   // leave out CONTROL tokens
#define MXP_TOK_KEEP_PREFIX 2u    // MXP_TOK_LLAMA: keep the leading space the encoder added
// Decode ids to bytes (not necessarily valid UTF-8 when the ids cut a character). On success
// *out is malloc'd, NUL-terminated, *out_len bytes long (caller frees). MXP_ERR_ARG names the
// first id out of range.
mxp_status mxp_tokenizer_decode(const mxp_tokenizer *t, const int32_t *ids, size_t n,
                                unsigned flags, char **out, size_t *out_len, mxp_err *err);

int32_t mxp_tokenizer_vocab_size(const mxp_tokenizer *t);
mxp_tok_kind mxp_tokenizer_kind(const mxp_tokenizer *t);
// Return 1 and set *id when the model has a BOS (EOS) token, else 0.
int mxp_tokenizer_bos(const mxp_tokenizer *t, int32_t *id);
int mxp_tokenizer_eos(const mxp_tokenizer *t, int32_t *id);
// The model's own default for adding BOS / EOS (tokenizer_config.json add_bos_token, the
// post-processor template, or GGUF tokenizer.ggml.add_bos_token).
int mxp_tokenizer_add_bos(const mxp_tokenizer *t);
int mxp_tokenizer_add_eos(const mxp_tokenizer *t);
// What a built tokenizer does, for writers that describe it in another format (GGUF).
typedef struct mxp_tok_info {
    mxp_tok_kind kind;
    mxp_tok_pre pre;             // MXP_TOK_GPT2
    int32_t n_merges;            // merges held (rank mode)
    int use_scores;              // MXP_TOK_LLAMA merging by score (no merges)
    int ignore_merges, add_prefix_space, nfc;                   // MXP_TOK_GPT2 options
    int add_space_prefix, prefix_first_only, split_on_space;    // MXP_TOK_LLAMA options
    int space_split_safe;        // no token has a space right after a non-space byte
    int byte_fallback;
    int has_unk;
    int32_t unk_id;
} mxp_tok_info;
void mxp_tokenizer_info(const mxp_tokenizer *t, mxp_tok_info *out);
// Type of token id (an mxp_tok_type value), 0 if out of range.
int mxp_tokenizer_token_type(const mxp_tokenizer *t, int32_t id);
// Added-token strip flags of token id: bit0 lstrip, bit1 rstrip (0 if out of range).
int mxp_tokenizer_token_strip(const mxp_tokenizer *t, int32_t id);
// The merges in rank order: *pairs (malloc'd, caller frees; NULL when none) holds 2 * *n ids,
// left then right token of each merge. MXP_ERR_NOMEM only.
mxp_status mxp_tokenizer_merges(const mxp_tokenizer *t, int32_t **pairs, int32_t *n, mxp_err *err);
// The token a merge of (left, right) makes, or -1 when no merge has that pair.
int32_t mxp_tokenizer_merge_result(const mxp_tokenizer *t, int32_t left, int32_t right);
// llama.cpp's tokenizer.ggml.pre name for a pre-tokenizer ("gpt-2", "llama-bpe", "qwen2"), or
// NULL for a value outside the enum. These are names llama.cpp's loader knows
// (src/llama-vocab.cpp); "gpt2" is not one of them.
const char *mxp_tokenizer_pre_llama_name(mxp_tok_pre pre);

// The stored string of a token (as in the vocabulary, e.g. "Ġthe"); NULL if out of range.
// Borrowed from the tokenizer. *len gets its length.
const char *mxp_tokenizer_token(const mxp_tokenizer *t, int32_t id, size_t *len);
// Look a token string up (as stored). Return 1 and set *id if present.
int mxp_tokenizer_find(const mxp_tokenizer *t, const char *s, size_t len, int32_t *id);

// ---- internal to src/io/tokenizer*.c and unicode_tables.c (generated) ----
extern const char mxp_unicode_version[];
int mxp_unicode_is_letter(uint32_t cp);  // general category L*
int mxp_unicode_is_number(uint32_t cp);  // general category N*
int mxp_unicode_nfc_qc(uint32_t cp);     // NFC_Quick_Check: 0 yes, 1 maybe, 2 no
int mxp_unicode_ccc(uint32_t cp);        // canonical combining class
// Full canonical decomposition of cp (not Hangul): its length, *seq pointing into a static
// table; 0 (seq untouched) when cp has none.
int mxp_unicode_decomp(uint32_t cp, const uint32_t **seq);
// Primary composite of the pair (a, b) (not Hangul), or 0 when they do not compose.
uint32_t mxp_unicode_compose(uint32_t a, uint32_t b);
// NFC (nfc.c). mxp_utf8_nfc_quick: 1 when valid UTF-8 s is certainly already NFC (quick
// check: no NFC_QC No/Maybe code point, combining classes in order), 0 when it may not be.
int mxp_utf8_nfc_quick(const uint8_t *s, size_t len);
// The NFC form of UTF-8 s in a new NUL-terminated buffer *out (caller frees), *out_len
// bytes. Errors: MXP_ERR_ARG (invalid UTF-8, naming the byte offset), MXP_ERR_NOMEM.
mxp_status mxp_utf8_nfc(const uint8_t *s, size_t len, uint8_t **out, size_t *out_len, mxp_err *err);
// Decode one UTF-8 scalar at s[0..len). Return its byte length (1..4) and set *cp, or 0 if
// the bytes there are not valid UTF-8 (overlong, surrogate, > U+10FFFF, truncated).
int mxp_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp);

#endif

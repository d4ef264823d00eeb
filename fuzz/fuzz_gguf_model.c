// fuzz_gguf_model.c: libFuzzer target for what a model reads from GGUF metadata: the
// configuration (mxp_config_from_gguf, the llama.* keys) and the tokenizer
// (mxp_tokenizer_from_gguf, the tokenizer.ggml.* keys). The input is a GGUF image; the
// parser itself is fuzz_gguf's concern, this target starts where it succeeds.
//
// Every input must give MXP_OK or a clean error naming the label. An accepted configuration
// must be valid (and describe a buildable graph when it is small); an accepted tokenizer must
// encode a fixed text and some text cut from the input into ids inside its vocabulary, and
// decode them again.
//
// Seeds (fuzz_seed.h): two tiny Llama GGUFs, one with a "gpt2" byte-level tokenizer and one
// with a "llama" SentencePiece-style one with byte fallback, written by LLVMFuzzerInitialize.
#include <string.h>

#include "arch/config.h"
#include "arch/model.h"
#include "fuzz_seed.h"
#include "io/gguf_write.h"
#include "io/tokenizer.h"

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

// A small Llama whose tokenizer is "gpt2" (llama = 0) or "llama" (llama = 1); checked, and
// written into dir unless dir is NULL.
static void write_seed(const char *dir, int llama) {
    enum { DIM = 8, EXTRA = 4 };
    static const char *const gpt2_extra[EXTRA] = {"Ġt", "he", "Ġthe", "<|end|>"};
    static const char *const gpt2_merges[3] = {"Ġ t", "h e", "Ġt he"};
    static const char *const sp_extra[EXTRA] = {"▁", "▁a", "ab", "▁the"};
    char store[256][8];
    const char *strs[3 + 256 + EXTRA];
    size_t lens[3 + 256 + EXTRA];
    int32_t types[3 + 256 + EXTRA];
    float scores[3 + 256 + EXTRA];
    int n = 0;
    if (llama) {
        const char *ctl[3] = {"<unk>", "<s>", "</s>"};
        for (int i = 0; i < 3; i++, n++) {
            strs[n] = ctl[i];
            types[n] = i ? MXP_TOKT_CONTROL : MXP_TOKT_UNKNOWN;
        }
    }
    for (int b = 0, shifted = 0; b < 256; b++, n++) {
        if (llama) {
            snprintf(store[b], sizeof store[b], "<0x%02X>", b);
            types[n] = MXP_TOKT_BYTE;
        } else {  // GPT-2's byte-to-character map
            int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
            size_t k = put_utf8(store[b], printable ? (uint32_t)b : 256u + (uint32_t)shifted++);
            store[b][k] = 0;
            types[n] = MXP_TOKT_NORMAL;
        }
        strs[n] = store[b];
    }
    for (int i = 0; i < EXTRA; i++, n++) {
        strs[n] = llama ? sp_extra[i] : gpt2_extra[i];
        types[n] = !llama && i == EXTRA - 1 ? MXP_TOKT_CONTROL : MXP_TOKT_NORMAL;
    }
    for (int i = 0; i < n; i++) {
        lens[i] = strlen(strs[i]);
        scores[i] = -(float)i;
    }
    mxp_gguf_writer w;
    mxp_err err = {0};
    mxp_gguf_writer_init(&w);
    mxp_gguf_writer_kv_str(&w, "general.architecture", "llama", 5);
    mxp_gguf_writer_kv_u32(&w, "llama.embedding_length", DIM);
    mxp_gguf_writer_kv_u32(&w, "llama.feed_forward_length", 16);
    mxp_gguf_writer_kv_u32(&w, "llama.block_count", 1);
    mxp_gguf_writer_kv_u32(&w, "llama.attention.head_count", 2);
    mxp_gguf_writer_kv_u32(&w, "llama.attention.head_count_kv", 1);
    mxp_gguf_writer_kv_u32(&w, "llama.context_length", 64);
    mxp_gguf_writer_kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    mxp_gguf_writer_kv_f32(&w, "llama.rope.freq_base", 10000.0f);
    mxp_gguf_writer_kv_str(&w, "tokenizer.ggml.model", llama ? "llama" : "gpt2", llama ? 5 : 4);
    mxp_gguf_writer_kv_str_arr(&w, "tokenizer.ggml.tokens", strs, lens, (uint64_t)n);
    mxp_gguf_writer_kv_arr(&w, "tokenizer.ggml.token_type", MXP_GGUF_I32, types, (uint64_t)n);
    if (llama) {
        mxp_gguf_writer_kv_arr(&w, "tokenizer.ggml.scores", MXP_GGUF_F32, scores, (uint64_t)n);
        mxp_gguf_writer_kv_u32(&w, "tokenizer.ggml.bos_token_id", 1);
        mxp_gguf_writer_kv_u32(&w, "tokenizer.ggml.eos_token_id", 2);
        mxp_gguf_writer_kv_u32(&w, "tokenizer.ggml.unknown_token_id", 0);
        mxp_gguf_writer_kv_bool(&w, "tokenizer.ggml.add_bos_token", 1);
    } else {
        size_t ml[3];
        for (int i = 0; i < 3; i++) ml[i] = strlen(gpt2_merges[i]);
        mxp_gguf_writer_kv_str_arr(&w, "tokenizer.ggml.merges", gpt2_merges, ml, 3);
        mxp_gguf_writer_kv_str(&w, "tokenizer.ggml.pre", "llama-bpe", 9);
        mxp_gguf_writer_kv_u32(&w, "tokenizer.ggml.eos_token_id", (uint32_t)n - 1);
    }
    int64_t shape[2] = {n, DIM};
    int idx;
    mxp_gguf_writer_tensor(&w, "token_embd.weight", 0 /* F32 */, 2, shape, (size_t)n * DIM * sizeof(float), &idx);
    if (mxp_gguf_writer_finish(&w, &err)) {
        fprintf(stderr, "fuzz setup: %s\n", err.msg);
        abort();
    }
    // the seed must pass every reader this target fuzzes
    mxp_gguf g;
    mxp_model_config c;
    mxp_tokenizer *t = NULL;
    if (mxp_gguf_parse(&g, w.image, w.size, "seed", &err) || mxp_config_from_gguf(&c, &g, "seed", &err) ||
        mxp_tokenizer_from_gguf(&g, "seed", &t, &err)) {
        fprintf(stderr, "fuzz setup: seed refused: %s\n", err.msg);
        abort();
    }
    mxp_tokenizer_free(t);
    mxp_gguf_free(&g);
    if (dir) fuzz_write_seed(dir, llama ? "llama_tok.gguf" : "gpt2_tok.gguf", w.image, w.size);
    mxp_gguf_writer_free(&w);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("MXP_FUZZ_WRITE_SEEDS");
    write_seed(dir, 0);
    write_seed(dir, 1);
    return 0;
}

static void exercise(const mxp_tokenizer *t, const char *text, size_t n) {
    int32_t *ids = NULL;
    size_t nid = 0;
    mxp_err e = {0};
    for (int special = 0; special < 2; special++) {
        mxp_status st = mxp_tokenizer_encode(t, text, n, special ? MXP_TOK_PARSE_SPECIAL | MXP_TOK_ADD_BOS : 0, &ids,
                                             &nid, &e);
        if (st) {
            MXP_ASSERT(st == MXP_ERR_ARG || st == MXP_ERR_UNSUPPORTED);
            continue;
        }
        int32_t nv = mxp_tokenizer_vocab_size(t);
        for (size_t i = 0; i < nid; i++) MXP_ASSERT(ids[i] >= 0 && ids[i] < nv);
        char *out = NULL;
        size_t olen = 0;
        MXP_ASSERT(mxp_tokenizer_decode(t, ids, nid, 0, &out, &olen, &e) == MXP_OK);
        free(out);
        free(ids);
        ids = NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mxp_gguf g;
    mxp_err err = {0};
    if (mxp_gguf_parse(&g, data, size, "fuzz.gguf", &err)) return 0;
    mxp_model_config c;
    if (mxp_config_from_gguf(&c, &g, "fuzz.gguf", &err)) {
        MXP_ASSERT(strstr(err.msg, "fuzz.gguf"));
    } else {
        MXP_ASSERT(c.vocab > 0 && c.dim > 0 && c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0);
        MXP_ASSERT(c.n_heads % c.n_kv_heads == 0 && c.head_dim > 0 && c.head_dim % 2 == 0);
        MXP_ASSERT(c.norm_eps >= 0 && c.rope_theta >= 1);
        double params = (double)c.vocab * c.dim * 2 + (double)c.n_layers * c.dim * (4.0 * c.dim + 3.0 * c.ffn);
        if (params < 2e5 && c.n_heads * c.head_dim < 1024) {
            mxp_model *m;
            if (mxp_model_synthetic(&c, 1, &m, &err) == MXP_OK) mxp_model_free(m);
        }
    }
    mxp_tokenizer *t = NULL;
    memset(&err, 0, sizeof err);
    if (mxp_tokenizer_from_gguf(&g, "fuzz.gguf", &t, &err)) {
        MXP_ASSERT(t == NULL && strstr(err.msg, "fuzz.gguf"));
    } else {
        static const char fixed[] = "Hello the world <|end|> ab a\xC3\xA9 123\n\t  x";
        exercise(t, fixed, sizeof fixed - 1);
        // text from the input's last bytes, so the fuzzer can steer it
        size_t k = size < 48 ? size : 48;
        exercise(t, (const char *)data + size - k, k);
        mxp_tokenizer_free(t);
    }
    mxp_gguf_free(&g);
    return 0;
}

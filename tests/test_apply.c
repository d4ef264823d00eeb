// test_apply.c: the GGUF writer and `mixprec apply`.
//  - writer: every KV type (scalars, strings, arrays of numbers and of strings) and tensors of
//    every GGML type read back by the GGUF reader (gguf.c) with the same values and layout;
//    duplicate keys / bad sizes refused.
//  - Q8_0 / Q4_0 tensors dequantize on load to values decoded here by hand from the bytes.
//  - round trip: a random Llama (GQA, so q and k are permuted with different head counts)
//    written as a Hugging Face folder with a real tokenizer.json, a mixed plan (every GGML
//    format), apply -> GGUF; loaded back: names, types, shapes, tokenizer metadata, the slots
//    the loader sets; its logits equal the fake-quant logits of the plan on the source model;
//    eval runs on it. A tied head is one op with the embedding: token_embd in its format, no output.weight.
//    f8_e4m3 is refused.
//  - tokenizer.ggml.pre is llama.cpp's name for each known split regex; an unknown regex, or
//    ignore_merges / add_prefix_space llama.cpp would not honour, is refused (nothing written).
//  - every architecture: llama with llama3 rope scaling (rope_freqs.weight, values derived by
//    hand) and biases (q/k permuted like their rows), qwen2 and gpt2 (keys, names, layouts).
//  - a SentencePiece-style tokenizer.json: tokenizer.ggml.model llama, padding, types, scores
//    from merge ranks (hand-derived), and the ids llama.cpp's score rule gives equal the
//    tokenizer.json's; carried over whole when the GGUF is the input; no byte fallback and no
//    tokenizer refused.
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "arch/model.h"
#include "check.h"
#include "io/gguf_write.h"
#include "io/jsonout.h"
#include "method/plan.h"
#include "quant/format.h"
#include "runtime/exec.h"

static void test_writer(void) {
    mxp_gguf_writer w;
    mxp_gguf_writer_init(&w);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int32_t i32 = -2000000000;
    uint64_t u64 = 0xfedcba9876543210ULL;
    int64_t i64 = -1234567890123LL;
    double f64 = 3.141592653589793;
    mxp_gguf_writer_kv(&w, "t.u8", MXP_GGUF_U8, &u8);
    mxp_gguf_writer_kv(&w, "t.i8", MXP_GGUF_I8, &i8);
    mxp_gguf_writer_kv(&w, "t.u16", MXP_GGUF_U16, &u16);
    mxp_gguf_writer_kv(&w, "t.i16", MXP_GGUF_I16, &i16);
    mxp_gguf_writer_kv_u32(&w, "t.u32", 4000000000u);
    mxp_gguf_writer_kv(&w, "t.i32", MXP_GGUF_I32, &i32);
    mxp_gguf_writer_kv_f32(&w, "t.f32", 0.25f);
    mxp_gguf_writer_kv_bool(&w, "t.bool", 1);
    mxp_gguf_writer_kv_str(&w, "t.str", "h\xc3\xa9llo", 6);
    mxp_gguf_writer_kv(&w, "t.u64", MXP_GGUF_U64, &u64);
    mxp_gguf_writer_kv(&w, "t.i64", MXP_GGUF_I64, &i64);
    mxp_gguf_writer_kv(&w, "t.f64", MXP_GGUF_F64, &f64);
    int32_t arr[3] = {1, -2, 3};
    float farr[2] = {1.5f, -0.5f};
    mxp_gguf_writer_kv_arr(&w, "t.arr_i32", MXP_GGUF_I32, arr, 3);
    mxp_gguf_writer_kv_arr(&w, "t.arr_f32", MXP_GGUF_F32, farr, 2);
    const char *strs[3] = {"a", "", "b c"};
    size_t lens[3] = {1, 0, 3};
    mxp_gguf_writer_kv_str_arr(&w, "t.arr_str", strs, lens, 3);
    // tensors: f32 (2,3), f16 (5), q8_0 (2,64), q4_0 (1,32), bf16 (3)
    int s0, s1, s2, s3, s4;
    int64_t sh0[2] = {2, 3}, sh1[1] = {5}, sh2[2] = {2, 64}, sh3[2] = {1, 32}, sh4[1] = {3};
    mxp_gguf_writer_tensor(&w, "a", 0, 2, sh0, 24, &s0);
    mxp_gguf_writer_tensor(&w, "b", 1, 1, sh1, 10, &s1);
    mxp_gguf_writer_tensor(&w, "c", 8, 2, sh2, 2 * 2 * 34, &s2);
    mxp_gguf_writer_tensor(&w, "d", 2, 2, sh3, 18, &s3);
    mxp_gguf_writer_tensor(&w, "e", 30, 1, sh4, 6, &s4);
    mxp_err err = {0};
    CHECK(mxp_gguf_writer_finish(&w, &err) == MXP_OK, "%s", err.msg);
    if (w.image) {
        float a[6] = {1, 2, 3, 4, 5, 6};
        memcpy(mxp_gguf_writer_data(&w, s0), a, 24);
        // q8_0 block 0 of row 0: d = 0.5 (f16 0x3800), q = j - 16; row 1 blocks all-zero
        uint8_t *c = mxp_gguf_writer_data(&w, s2);
        c[0] = 0x00, c[1] = 0x38;
        for (int j = 0; j < 32; j++) c[2 + j] = (uint8_t)(int8_t)(j - 16);
        // q4_0: d = -2 (f16 0xC000), byte j = nibble j (low), 15 - j (high)
        uint8_t *d = mxp_gguf_writer_data(&w, s3);
        d[0] = 0x00, d[1] = 0xC0;
        for (int j = 0; j < 16; j++) d[2 + j] = (uint8_t)(j | ((15 - j) << 4));
        mxp_gguf g;
        CHECK(mxp_gguf_parse(&g, w.image, w.size, "written", &err) == MXP_OK, "%s", err.msg);
        if (g.version == 3) {
            const mxp_gguf_kv *kv;
            CHECK((kv = mxp_gguf_find(&g, "t.u8")) && kv->type == MXP_GGUF_U8 && kv->u == 200, "u8");
            CHECK((kv = mxp_gguf_find(&g, "t.i8")) && kv->type == MXP_GGUF_I8 && kv->i == -100, "i8");
            CHECK((kv = mxp_gguf_find(&g, "t.u16")) && kv->u == 60000, "u16");
            CHECK((kv = mxp_gguf_find(&g, "t.i16")) && kv->i == -30000, "i16");
            CHECK((kv = mxp_gguf_find(&g, "t.u32")) && kv->type == MXP_GGUF_U32 && kv->u == 4000000000u, "u32");
            CHECK((kv = mxp_gguf_find(&g, "t.i32")) && kv->i == -2000000000, "i32");
            CHECK((kv = mxp_gguf_find(&g, "t.f32")) && kv->type == MXP_GGUF_F32 && kv->f == 0.25, "f32");
            CHECK((kv = mxp_gguf_find(&g, "t.bool")) && kv->type == MXP_GGUF_BOOL && kv->u == 1, "bool");
            CHECK((kv = mxp_gguf_find(&g, "t.str")) && kv->type == MXP_GGUF_STRING && kv->s.len == 6 &&
                      !memcmp(kv->s.ptr, "h\xc3\xa9llo", 6),
                  "string");
            CHECK((kv = mxp_gguf_find(&g, "t.u64")) && kv->u == u64, "u64");
            CHECK((kv = mxp_gguf_find(&g, "t.i64")) && kv->i == i64, "i64");
            CHECK((kv = mxp_gguf_find(&g, "t.f64")) && kv->f == f64, "f64");
            CHECK((kv = mxp_gguf_find(&g, "t.arr_i32")) && kv->type == MXP_GGUF_ARRAY && kv->arr_type == MXP_GGUF_I32 &&
                      kv->arr_n == 3 && !memcmp(kv->arr_data, "\x01\0\0\0\xfe\xff\xff\xff\x03\0\0\0", 12),
                  "i32 array");
            CHECK((kv = mxp_gguf_find(&g, "t.arr_f32")) && kv->arr_n == 2 && !memcmp(kv->arr_data, farr, 8), "f32 array");
            CHECK((kv = mxp_gguf_find(&g, "t.arr_str")) && kv->arr_type == MXP_GGUF_STRING && kv->arr_n == 3 &&
                      kv->arr_strs[0].len == 1 && kv->arr_strs[1].len == 0 && kv->arr_strs[2].len == 3 &&
                      !memcmp(kv->arr_strs[2].ptr, "b c", 3),
                  "string array");
            CHECK(g.n_kv == 15 && g.tensors.n == 5, "counts %d %d", g.n_kv, g.tensors.n);
            const mxp_tensor_info *t = mxp_tensor_find(&g.tensors, "a");
            CHECK(t && t->dtype == MXP_DT_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
                      !memcmp(t->data, a, 24) && (t->data - w.image) % 32 == 0,
                  "f32 tensor");
            t = mxp_tensor_find(&g.tensors, "c");
            float out[128];
            CHECK(t && t->dtype == MXP_DT_Q8_0 && t->shape[0] == 2 && t->shape[1] == 64, "q8_0 tensor info");
            if (t) {
                CHECK(mxp_tensor_to_f32(t, out, &err) == MXP_OK, "%s", err.msg);
                float want[128] = {0};
                for (int j = 0; j < 32; j++) want[j] = 0.5f * (float)(j - 16);
                CHECK_CLOSE("q8_0 dequantized", out, want, 128, 0, 0);
            }
            t = mxp_tensor_find(&g.tensors, "d");
            CHECK(t && t->dtype == MXP_DT_Q4_0, "q4_0 info");
            if (t) {
                CHECK(mxp_tensor_to_f32(t, out, &err) == MXP_OK, "%s", err.msg);
                float want[32];
                for (int j = 0; j < 16; j++) want[j] = -2.0f * (float)(j - 8), want[j + 16] = -2.0f * (float)(15 - j - 8);
                CHECK_CLOSE("q4_0 dequantized", out, want, 32, 0, 0);
            }
            t = mxp_tensor_find(&g.tensors, "e");
            CHECK(t && t->dtype == MXP_DT_BF16 && t->nbytes == 6, "bf16 info");
            mxp_gguf_free(&g);
        }
    }
    mxp_gguf_writer_free(&w);
    // refusals
    mxp_gguf_writer_init(&w);
    mxp_gguf_writer_kv_u32(&w, "k", 1);
    mxp_gguf_writer_kv_u32(&w, "k", 2);
    CHECK(mxp_gguf_writer_finish(&w, &err) == MXP_ERR_ARG && strstr(err.msg, "duplicate key k"), "%s", err.msg);
    mxp_gguf_writer_free(&w);
    mxp_gguf_writer_init(&w);
    int s;
    int64_t sh[2] = {2, 33};
    mxp_gguf_writer_tensor(&w, "q", 8, 2, sh, 2 * 34, &s);
    CHECK(mxp_gguf_writer_finish(&w, &err) == MXP_ERR_ARG && strstr(err.msg, "tensor q"), "%s", err.msg);
    mxp_gguf_writer_free(&w);
}

// ---- round trip ----

static int write_hf(const char *dir, const mxp_model *m, mxp_err *err) {
    const mxp_model_config *c = &m->config;
    cJSON *j = cJSON_CreateObject();
    const char *arch = "LlamaForCausalLM";
    cJSON_AddItemToObject(j, "architectures", cJSON_CreateStringArray(&arch, 1));
    cJSON_AddStringToObject(j, "model_type", "llama");
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab);
    cJSON_AddNumberToObject(j, "hidden_size", c->dim);
    cJSON_AddNumberToObject(j, "intermediate_size", c->ffn);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_pos);
    cJSON_AddNumberToObject(j, "rms_norm_eps", 1e-5);
    cJSON_AddNumberToObject(j, "rope_theta", 10000);
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tied);
    cJSON_AddNumberToObject(j, "bos_token_id", 2047);
    cJSON_AddNumberToObject(j, "eos_token_id", 2047);
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    mxp_status st = mxp_write_json_atomic(path, j, err);
    cJSON_Delete(j);
    if (st) return 0;
    mxp_tensor_info *t = calloc((size_t)m->graph.n_params, sizeof *t);
    for (int i = 0; i < m->graph.n_params; i++) {
        const mxp_param *p = &m->graph.params[i];
        t[i].name = p->name;
        t[i].dtype = MXP_DT_F32;
        t[i].ndim = p->ndim;
        t[i].shape[0] = p->shape[0];
        t[i].shape[1] = p->shape[1];
        t[i].nelem = p->nelem;
        t[i].data = (const uint8_t *)p->data;
        t[i].nbytes = p->nelem * 4;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st = mxp_safetensors_write(path, t, m->graph.n_params, NULL, 0, err);
    free(t);
    if (st) return 0;
    // the repository's trained tokenizer (byte-level BPE, 2048 tokens)
    static const char *const files[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int k = 0; k < 2; k++) {
        char src[256];
        snprintf(src, sizeof src, "models/tiny/%s", files[k]);
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        mxp_mapping map;
        if (mxp_map_file(&map, src, err)) return 0;
        st = mxp_write_file_atomic(path, map.base, map.size, err);
        mxp_unmap(&map);
        if (st) return 0;
    }
    return 1;
}

// Logits of the whole model on `seq` (B=1, T tokens + 1) in fake-quant mode with the slots as set.
static float *logits(mxp_model *m, const int32_t *seq, int T, mxp_err *err) {
    mxp_exec ex = {0};
    mxp_qcache qc = {0};
    float *out = NULL;
    if (!mxp_qcache_init(&qc, &m->graph, err) && !mxp_exec_init(&ex, &m->graph, 1, T, 0, err) &&
        !mxp_exec_use_formats(&ex, &qc, MXP_QMODE_FAKE, err) && !mxp_exec_set_batch(&ex, seq, err)) {
        mxp_exec_forward(&ex, 0, m->graph.n_nodes);
        size_t n = (size_t)T * m->graph.vocab;
        out = malloc(n * sizeof *out);
        memcpy(out, ex.val[m->graph.n_nodes - 1], n * sizeof *out);
    }
    mxp_exec_free(&ex);
    mxp_qcache_free(&qc);
    return out;
}

static const char *const PLAN =
    "{\"format\": \"mixprec-plan\", \"version\": 1, \"ops\": {"
    "\"model.layers.0.self_attn.q_proj\": \"q8_0\", \"model.layers.0.self_attn.k_proj\": \"q4_0\","
    "\"model.layers.0.self_attn.v_proj\": \"f16\", \"model.layers.0.self_attn.o_proj\": \"bf16\","
    "\"model.layers.0.mlp.gate_proj\": \"q4_0\", \"model.layers.0.mlp.up_proj\": \"q8_0\","
    "\"model.layers.0.mlp.down_proj\": \"q4_0\","
    "\"model.layers.1.self_attn.q_proj\": \"q4_0\", \"model.layers.1.self_attn.k_proj\": \"q8_0\","
    "\"model.layers.1.mlp.down_proj\": \"q8_0\", \"lm_head\": \"q8_0\"}}\n";

static void round_trip(int tied) {
    char dir[200];
    if (!check_tmpdir(dir, sizeof dir, "mxp_test_apply")) return;
    mxp_model_config c = {.arch = MXP_ARCH_LLAMA, .vocab = 2048, .dim = 64, .n_layers = 2, .n_heads = 4,
                          .n_kv_heads = 2, .head_dim = 16, .ffn = 160, .max_pos = 64, .norm_eps = 1e-5f,
                          .rope_theta = 10000, .tied = tied};
    snprintf(c.arch_name, sizeof c.arch_name, "LlamaForCausalLM");
    mxp_err err = {0};
    mxp_model *syn = NULL, *src = NULL, *out = NULL;
    CHECK(mxp_model_synthetic(&c, 99 + tied, &syn, &err) == MXP_OK, "%s", err.msg);
    // larger weights than the 0.02 init so quantization visibly changes the logits
    for (int i = 0; syn && i < syn->graph.n_params; i++)
        if (syn->graph.params[i].ndim == 2)
            for (size_t k = 0; k < syn->graph.params[i].nelem; k++) ((float *)syn->graph.params[i].data)[k] *= 5;
    CHECK(syn && write_hf(dir, syn, &err), "writing the HF folder: %s", err.msg);
    mxp_model_free(syn);
    char plan[600], gguf[600];
    snprintf(plan, sizeof plan, "%s/plan.json", dir);
    snprintf(gguf, sizeof gguf, "%s/model.gguf", dir);
    CHECK(mxp_write_file_atomic(plan, PLAN, strlen(PLAN), &err) == MXP_OK, "%s", err.msg);
    mxp_apply_report rep;
    CHECK(mxp_apply(dir, plan, gguf, &rep, &err) == MXP_OK, "apply: %s", err.msg);
    fprintf(stderr, "apply (%s): %d tensors, %.0f bytes, tokenizer %d\n", tied ? "tied" : "untied", rep.n_tensors,
            rep.file_bytes, rep.tokenizer);
    CHECK(rep.tokenizer == 1 && rep.n_by_format[MXP_FMT_Q8_0] == 5 && rep.n_by_format[MXP_FMT_Q4_0] == 4 &&
              rep.n_by_format[MXP_FMT_F16] == 1 && rep.n_by_format[MXP_FMT_BF16] == 1 && rep.n_by_format[MXP_FMT_F32] == 4 + !tied,
          "formats written: f32 %d q8 %d q4 %d", rep.n_by_format[0], rep.n_by_format[3], rep.n_by_format[4]);
    CHECK(mxp_model_load(dir, &src, &err) == MXP_OK, "%s", err.msg);
    CHECK(mxp_model_load(gguf, &out, &err) == MXP_OK, "loading the GGUF: %s", err.msg);
    if (src && out) {
        const mxp_tensor_set *ts = &out->gguf.tensors;
        struct { const char *name; mxp_dtype dt; int64_t d0, d1; } want[] = {
            {"token_embd.weight", tied ? MXP_DT_Q8_0 : MXP_DT_F32, 2048, 64}, {"blk.0.attn_norm.weight", MXP_DT_F32, 64, 0},
            {"blk.0.attn_q.weight", MXP_DT_Q8_0, 64, 64},     {"blk.0.attn_k.weight", MXP_DT_Q4_0, 32, 64},
            {"blk.0.attn_v.weight", MXP_DT_F16, 32, 64},      {"blk.0.attn_output.weight", MXP_DT_BF16, 64, 64},
            {"blk.0.ffn_norm.weight", MXP_DT_F32, 64, 0},     {"blk.0.ffn_gate.weight", MXP_DT_Q4_0, 160, 64},
            {"blk.0.ffn_up.weight", MXP_DT_Q8_0, 160, 64},    {"blk.0.ffn_down.weight", MXP_DT_Q4_0, 64, 160},
            {"blk.1.attn_q.weight", MXP_DT_Q4_0, 64, 64},     {"blk.1.attn_k.weight", MXP_DT_Q8_0, 32, 64},
            {"blk.1.attn_v.weight", MXP_DT_F32, 32, 64},      {"blk.1.ffn_down.weight", MXP_DT_Q8_0, 64, 160},
            {"output_norm.weight", MXP_DT_F32, 64, 0},        {"output.weight", MXP_DT_Q8_0, 2048, 64},
        };
        // tied: the head is one op with the embedding, token_embd in its format, no output.weight
        for (size_t i = 0; i < sizeof want / sizeof *want - tied; i++) {
            const mxp_tensor_info *t = mxp_tensor_find(ts, want[i].name);
            CHECK(t && t->dtype == want[i].dt && t->shape[0] == want[i].d0 && t->ndim == (want[i].d1 ? 2 : 1) &&
                      (!want[i].d1 || t->shape[1] == want[i].d1),
                  "tensor %s: %s %lld x %lld", want[i].name, t ? mxp_dtype_name(t->dtype) : "missing",
                  t ? (long long)t->shape[0] : 0LL, t && t->ndim > 1 ? (long long)t->shape[1] : 0LL);
        }
        CHECK(ts->n == 2 * 9 + 3 - tied, "tensor count %d", ts->n);
        CHECK(!tied || !mxp_tensor_find(ts, "output.weight"), "tied: no output.weight");
        mxp_gguf_str s;
        uint64_t u;
        CHECK(!mxp_gguf_get_str(&out->gguf, "tokenizer.ggml.model", &s, NULL, &err) && s.len == 4 && !memcmp(s.ptr, "gpt2", 4),
              "tokenizer model");
        CHECK(!mxp_gguf_get_str(&out->gguf, "tokenizer.ggml.pre", &s, NULL, &err) && s.len == 5 && !memcmp(s.ptr, "gpt-2", 5),
              "tokenizer pre: llama.cpp's name for GPT-2's regex");
        CHECK(!mxp_gguf_get_u64(&out->gguf, "tokenizer.ggml.eos_token_id", &u, NULL, &err) && u == 2047, "eos id");
        const mxp_gguf_kv *kv = mxp_gguf_find(&out->gguf, "tokenizer.ggml.tokens");
        CHECK(kv && kv->arr_type == MXP_GGUF_STRING && kv->arr_n == 2048 && kv->arr_strs[2047].len == 13 &&
                  !memcmp(kv->arr_strs[2047].ptr, "<|endoftext|>", 13),
              "tokens");
        kv = mxp_gguf_find(&out->gguf, "tokenizer.ggml.token_type");
        CHECK(kv && kv->arr_n == 2048 && kv->arr_data[2047 * 4] == 3 && kv->arr_data[5 * 4] == 1, "token types");
        kv = mxp_gguf_find(&out->gguf, "tokenizer.ggml.merges");
        cJSON *tj = NULL;
        int n_merges = -1;
        if (mxp_read_json("models/tiny/tokenizer.json", &tj, &err) == MXP_OK)
            n_merges = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tj, "model"), "merges"));
        cJSON_Delete(tj);
        CHECK(kv && n_merges > 100 && kv->arr_n == (uint64_t)n_merges, "merges %llu, tokenizer.json has %d",
              kv ? (unsigned long long)kv->arr_n : 0ULL, n_merges);
        CHECK(out->config.tied == tied && out->config.n_kv_heads == 2 && out->config.head_dim == 16, "config read back");
        // the GGUF's tokenizer metadata builds the same tokenizer as the folder's tokenizer.json
        const mxp_tokenizer *tg = NULL, *th = NULL;
        CHECK(mxp_model_tokenizer(out, &tg, &err) == MXP_OK, "GGUF tokenizer: %s", err.msg);
        CHECK(mxp_model_tokenizer(src, &th, &err) == MXP_OK, "folder tokenizer: %s", err.msg);
        if (tg && th) {
            static const char *const texts[] = {"In the beginning God created the heaven and the earth.",
                                                "  And it was so:\n\tverse 12, 1611; caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80!"};
            for (size_t k = 0; k < 2; k++) {
                int32_t *a = NULL, *b = NULL;
                size_t na = 0, nb = 0;
                CHECK(mxp_tokenizer_encode(tg, texts[k], strlen(texts[k]), 0, &a, &na, &err) == MXP_OK, "%s", err.msg);
                CHECK(mxp_tokenizer_encode(th, texts[k], strlen(texts[k]), 0, &b, &nb, &err) == MXP_OK, "%s", err.msg);
                CHECK(na == nb && na > 0 && (!na || !memcmp(a, b, na * sizeof *a)), "GGUF vs tokenizer.json ids (%zu vs %zu)",
                      na, nb);
                free(a);
                free(b);
            }
        }
        // slots the loader set from the quantized tensors
        int nd;
        CHECK(mxp_graph_find_op(&out->graph, "model.layers.0.self_attn.k_proj", &nd) &&
                  out->graph.nodes[nd].fmt == MXP_FMT_Q4_0,
              "k slot q4_0");
        CHECK(mxp_graph_find_op(&out->graph, "model.layers.0.self_attn.v_proj", &nd) &&
                  out->graph.nodes[nd].fmt == MXP_FMT_F16,
              "f16 weights take the f16 slot (llama.cpp rounds their activations to f16)");
        CHECK(mxp_graph_find_op(&out->graph, "lm_head", &nd) && out->graph.nodes[nd].fmt == MXP_FMT_Q8_0, "head slot");
        // logits: plan fake-quant on the source == GGUF with the stored slots == GGUF with the plan
        enum { T = 24 };
        int32_t seq[T + 1];
        for (int i = 0; i <= T; i++) seq[i] = (i * 373 + 11) % 2048;
        CHECK(mxp_formats_apply_plan_json(&src->graph, PLAN, strlen(PLAN), "plan", &err) == MXP_OK, "%s", err.msg);
        float *want_l = logits(src, seq, T, &err);
        mxp_formats_reset(&src->graph);
        float *ref_l = logits(src, seq, T, &err);
        float *got_stored = logits(out, seq, T, &err);
        CHECK(mxp_formats_apply_plan_json(&out->graph, PLAN, strlen(PLAN), "plan", &err) == MXP_OK, "%s", err.msg);
        float *got_plan = logits(out, seq, T, &err);
        CHECK(want_l && ref_l && got_stored && got_plan, "logits: %s", err.msg);
        if (want_l && ref_l && got_stored && got_plan) {
            double diff = 0, scale = 0;
            for (int i = 0; i < T * 2048; i++) {
                diff = fmax(diff, fabs(want_l[i] - ref_l[i]));
                scale = fmax(scale, fabs(ref_l[i]));
            }
            fprintf(stderr, "  plan vs f32 logits: max |diff| %.3g (max |logit| %.3g): the check below can fail\n", diff, scale);
            CHECK(diff > 1e-3 * scale, "the plan should change the logits visibly");
            CHECK_CLOSE("GGUF (stored slots) vs plan fake-quant", got_stored, want_l, T * 2048, 1e-5 * scale, 1e-5);
            CHECK_CLOSE("GGUF (plan) vs plan fake-quant", got_plan, want_l, T * 2048, 1e-5 * scale, 1e-5);
        }
        free(want_l), free(ref_l), free(got_stored), free(got_plan);
        // eval runs on the GGUF at its stored formats (token-id data: a GGUF has no tokenizer.json)
        char data[600];
        snprintf(data, sizeof data, "%s/ids.txt", dir);
        char *txt = malloc(20000);
        size_t len = (size_t)snprintf(txt, 20000, "mixprec-tokens 1\n");
        for (int i = 0; i < 1500; i++) len += (size_t)snprintf(txt + len, 20000 - len, "%d ", (i * 97 + 5) % 2048);
        CHECK(mxp_write_file_atomic(data, txt, len, &err) == MXP_OK, "%s", err.msg);
        free(txt);
        mxp_eval_opts eo = {.data_path = data, .seq_len = 32, .max_samples = 4, .formats = "stored", .decode_tokens = 8};
        mxp_eval_result er;
        CHECK(mxp_eval(out, &eo, &er, &err) == MXP_OK, "eval on the GGUF: %s", err.msg);
        CHECK(er.quantized && isfinite(er.quant.loss) && er.quant.weight_bytes < er.ref.weight_bytes, "eval figures: loss %g",
              er.quant.loss);
        fprintf(stderr, "  eval on the GGUF (stored formats): loss %.4f vs %.4f dequantized-f32, loss MSE %.3g, weight bytes %.0f vs %.0f\n",
                er.quant.loss, er.ref.loss, er.loss_mse, er.quant.weight_bytes, er.ref.weight_bytes);
        unlink(data);
    }
    // uniform k-quants: this model's widths (64, 160) are not multiples of 256, so every op takes
    // llama.cpp's fallback (tensor_type_fallback: q4_K -> q5_0, q6_K -> q8_0); the GGUF holds
    // those types and loads back with them in the slots.
    static const struct { const char *spec; mxp_format_id want; } kq[] = {{"uniform:q4_K", MXP_FMT_Q5_0},
                                                                         {"uniform:q6_K", MXP_FMT_Q8_0}};
    for (int k = 0; k < 2; k++) {
        char kg[600];
        snprintf(kg, sizeof kg, "%s/kquant.gguf", dir);
        mxp_model *km = NULL;
        CHECK(mxp_apply(dir, kq[k].spec, kg, &rep, &err) == MXP_OK, "%s: %s", kq[k].spec, err.msg);
        CHECK(rep.n_by_format[kq[k].want] == 15 + !tied, "%s: %d op weights in %s, want %d", kq[k].spec,
              rep.n_by_format[kq[k].want], mxp_format_get(kq[k].want)->name, 15 + !tied);
        CHECK(mxp_model_load(kg, &km, &err) == MXP_OK, "%s", err.msg);
        int nd;
        CHECK(km && mxp_graph_find_op(&km->graph, "model.layers.1.mlp.down_proj", &nd) &&
                  km->graph.nodes[nd].fmt == (int)kq[k].want,
              "%s: down_proj slot", kq[k].spec);
        mxp_model_free(km);
        unlink(kg);
    }
    // f8_e4m3 has no GGML type
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
    CHECK(mxp_apply(dir, "uniform:f8_e4m3", bad, &rep, &err) == MXP_ERR_UNSUPPORTED && strstr(err.msg, "f8_e4m3") &&
              access(bad, F_OK) != 0,
          "f8 refused: %s", err.msg);
    mxp_model_free(src);
    mxp_model_free(out);
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                        "plan.json", "model.gguf"};
    for (int k = 0; k < 6; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, files[k]);
        unlink(p);
    }
    rmdir(dir);
}


// ---- every architecture: names, layouts and keys llama.cpp reads ----

static void remove_folder(const char *dir) {
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                        "model.gguf", "again.gguf", "bad.gguf"};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, files[k]);
        unlink(p);
    }
    rmdir(dir);
}

static int is_conv1d(const char *name) {
    return strstr(name, "c_attn.weight") || strstr(name, "c_proj.weight") || strstr(name, "c_fc.weight");
}

// A Hugging Face folder: config.json as given, random weights for it (GPT-2 Conv1D weights
// stored (in, out) as the Hub does), and the tokenizer files given (NULL: models/tiny's).
// Returns the model loaded from the folder, or NULL.
static mxp_model *make_folder(const char *dir, const char *config, const char *tok_json, const char *tok_config) {
    mxp_err err = {0};
    mxp_model_config c;
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(mxp_config_from_hf_json(&c, config, strlen(config), "config", &err) == MXP_OK, "%s", err.msg);
    CHECK(mxp_write_file_atomic(path, config, strlen(config), &err) == MXP_OK, "%s", err.msg);
    mxp_model *syn = NULL;
    CHECK(mxp_model_synthetic(&c, 5, &syn, &err) == MXP_OK, "%s", err.msg);
    if (!syn) return NULL;
    int n = syn->graph.n_params;
    mxp_tensor_info *t = calloc((size_t)n, sizeof *t);
    float **tr = calloc((size_t)n, sizeof *tr);
    for (int i = 0; i < n; i++) {
        mxp_param *p = &syn->graph.params[i];
        // biases and norms get visible values (synthetic ones are 0 and 1)
        if (p->ndim == 1)
            for (size_t k = 0; k < p->nelem; k++) ((float *)p->data)[k] = 0.5f + 0.01f * (float)((k * 37 + (size_t)i) % 61);
        t[i].name = p->name;
        t[i].dtype = MXP_DT_F32;
        t[i].ndim = p->ndim;
        t[i].shape[0] = p->shape[0];
        t[i].shape[1] = p->shape[1];
        t[i].nelem = p->nelem;
        t[i].data = (const uint8_t *)p->data;
        t[i].nbytes = p->nelem * 4;
        if (p->ndim == 2 && is_conv1d(p->name)) {
            int64_t O = p->shape[0], I = p->shape[1];
            tr[i] = malloc(p->nelem * sizeof(float));
            for (int64_t o = 0; o < O; o++)
                for (int64_t k = 0; k < I; k++) tr[i][k * O + o] = p->data[o * I + k];
            t[i].shape[0] = I;
            t[i].shape[1] = O;
            t[i].data = (const uint8_t *)tr[i];
        }
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(mxp_safetensors_write(path, t, n, NULL, 0, &err) == MXP_OK, "%s", err.msg);
    for (int i = 0; i < n; i++) free(tr[i]);
    free(tr);
    free(t);
    mxp_model_free(syn);
    const char *names[2] = {"tokenizer.json", "tokenizer_config.json"}, *texts[2] = {tok_json, tok_config};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        if (texts[k]) {
            CHECK(mxp_write_file_atomic(path, texts[k], strlen(texts[k]), &err) == MXP_OK, "%s", err.msg);
            continue;
        }
        char src[256];
        snprintf(src, sizeof src, "models/tiny/%s", names[k]);
        mxp_mapping map;
        CHECK(mxp_map_file(&map, src, &err) == MXP_OK, "%s", err.msg);
        CHECK(mxp_write_file_atomic(path, map.base, map.size, &err) == MXP_OK, "%s", err.msg);
        mxp_unmap(&map);
    }
    mxp_model *m = NULL;
    CHECK(mxp_model_load(dir, &m, &err) == MXP_OK, "loading %s: %s", dir, err.msg);
    return m;
}

static const float *param(const mxp_model *m, const char *name) {
    for (int i = 0; i < m->graph.n_params; i++)
        if (!strcmp(m->graph.params[i].name, name)) return m->graph.params[i].data;
    CHECK(0, "no parameter %s", name);
    return NULL;
}

// The f32 values of GGUF tensor `name`, checked to have type t and shape (d0[, d1]).
static const float *gguf_f32(const mxp_gguf *g, const char *name, int64_t d0, int64_t d1) {
    const mxp_tensor_info *t = mxp_tensor_find(&g->tensors, name);
    int ok = t && t->dtype == MXP_DT_F32 && t->shape[0] == d0 && t->ndim == (d1 ? 2 : 1) && (!d1 || t->shape[1] == d1);
    CHECK(ok, "tensor %s: %s, %lld x %lld", name, t ? mxp_dtype_name(t->dtype) : "missing", t ? (long long)t->shape[0] : 0LL,
          t && t->ndim > 1 ? (long long)t->shape[1] : 0LL);
    return ok ? (const float *)t->data : NULL;
}

static int64_t kv_u(const mxp_gguf *g, const char *key) {
    uint64_t v = 0;
    mxp_err err = {0};
    CHECK(mxp_gguf_get_u64(g, key, &v, NULL, &err) == MXP_OK, "key %s: %s", key, err.msg);
    return (int64_t)v;
}

static int kv_is(const mxp_gguf *g, const char *key, const char *want) {
    mxp_gguf_str s = {0};
    mxp_err err = {0};
    return !mxp_gguf_get_str(g, key, &s, NULL, &err) && s.len == strlen(want) && !memcmp(s.ptr, want, s.len);
}

// Apply `plan` to dir into dir/model.gguf and open it.
static int apply_open(const char *dir, const char *plan, mxp_gguf *g) {
    char out[600];
    snprintf(out, sizeof out, "%s/model.gguf", dir);
    mxp_err err = {0};
    mxp_apply_report rep;
    memset(g, 0, sizeof *g);
    CHECK(mxp_apply(dir, plan, out, &rep, &err) == MXP_OK, "apply %s %s: %s", dir, plan, err.msg);
    return !err.code && mxp_gguf_open(g, out, &err) == MXP_OK;
}

static void family_llama3_bias(void) {
    char dir[] = "/tmp/mxp_test_apply_l3_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    static const char *const cfg =
        "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 2048, \"hidden_size\": 64, \"intermediate_size\": 96,"
        " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"max_position_embeddings\": 256,"
        " \"rms_norm_eps\": 1e-5, \"rope_theta\": 500000, \"attention_bias\": true, \"tie_word_embeddings\": false,"
        " \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
        " \"original_max_position_embeddings\": 64}}";
    mxp_model *m = make_folder(dir, cfg, NULL, NULL);
    mxp_gguf g;
    if (m && apply_open(dir, "uniform:f32", &g)) {
        CHECK(kv_is(&g, "general.architecture", "llama"), "architecture llama");
        CHECK(kv_u(&g, "llama.attention.head_count_kv") == 2 && kv_u(&g, "llama.rope.dimension_count") == 16 &&
                  kv_u(&g, "llama.context_length") == 256,
              "llama keys");
        CHECK(!mxp_gguf_find(&g, "llama.rope.scaling.type"), "llama3 scaling is the rope_freqs tensor, not keys");
        // by hand (theta 5e5, head_dim 16, original context 64: wavelengths 2*pi*5e5^(i/8)):
        // i=0: 6.28 < 64/4 -> 1; i=1: 32.400 -> s = (64/32.400 - 1)/3 = 0.32510, 1/((1-s)/8 + s) = 2.44226;
        // i>=2: > 64/1 -> 8
        const float *rf = gguf_f32(&g, "rope_freqs.weight", 8, 0);
        if (rf) {
            CHECK(rf[0] == 1.0f && fabsf(rf[1] - 2.44226f) < 2e-5f, "rope_freqs[0..1] = %g %g", rf[0], rf[1]);
            for (int i = 2; i < 8; i++) CHECK(rf[i] == 8.0f, "rope_freqs[%d] = %g", i, rf[i]);
        }
        // biases: q and k permuted like their rows (converter: reshape(heads, 2, hd/2).swapaxes(1, 2)), v and o not
        const float *qb = param(m, "model.layers.0.self_attn.q_proj.bias"), *kb = param(m, "model.layers.0.self_attn.k_proj.bias");
        const float *vb = param(m, "model.layers.0.self_attn.v_proj.bias"), *ob = param(m, "model.layers.0.self_attn.o_proj.bias");
        const float *q = gguf_f32(&g, "blk.0.attn_q.bias", 64, 0), *k = gguf_f32(&g, "blk.0.attn_k.bias", 32, 0);
        const float *v = gguf_f32(&g, "blk.0.attn_v.bias", 32, 0), *o = gguf_f32(&g, "blk.0.attn_output.bias", 64, 0);
        const float *qw = param(m, "model.layers.0.self_attn.q_proj.weight"), *qg = gguf_f32(&g, "blk.0.attn_q.weight", 64, 64);
        int bad = 0;
        for (int h = 0; h < 4 && q && k && v && o && qg; h++)
            for (int i = 0; i < 8; i++)
                for (int j = 0; j < 2; j++) {
                    bad += q[h * 16 + 2 * i + j] != qb[h * 16 + j * 8 + i];
                    bad += qg[(h * 16 + 2 * i + j) * 64 + 5] != qw[(h * 16 + j * 8 + i) * 64 + 5];
                    if (h < 2) bad += k[h * 16 + 2 * i + j] != kb[h * 16 + j * 8 + i];
                    if (h < 2) bad += v[h * 16 + 2 * i + j] != vb[h * 16 + 2 * i + j];
                    bad += o[h * 16 + 2 * i + j] != ob[h * 16 + 2 * i + j];
                }
        CHECK(q && k && v && o && qg && bad == 0 && q[1] != qb[1], "bias layouts: %d values misplaced", bad);
        CHECK(mxp_tensor_find(&g.tensors, "output.weight") && g.tensors.n == 1 + 1 + 9 + 4 + 2, "tensor count %d", g.tensors.n);
        mxp_gguf_free(&g);
    }
    mxp_model_free(m);
    remove_folder(dir);
}

static void family_qwen2(void) {
    char dir[] = "/tmp/mxp_test_apply_qw_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    static const char *const cfg =
        "{\"architectures\": [\"Qwen2ForCausalLM\"], \"vocab_size\": 2048, \"hidden_size\": 64, \"intermediate_size\": 96,"
        " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"max_position_embeddings\": 128,"
        " \"rms_norm_eps\": 1e-6, \"rope_theta\": 1000000, \"tie_word_embeddings\": true, \"use_sliding_window\": false}";
    mxp_model *m = make_folder(dir, cfg, NULL, NULL);
    mxp_gguf g;
    if (m && apply_open(dir, "uniform:f32", &g)) {
        CHECK(kv_is(&g, "general.architecture", "qwen2") && kv_u(&g, "qwen2.attention.head_count_kv") == 2 &&
                  kv_u(&g, "qwen2.block_count") == 1 && mxp_gguf_find(&g, "qwen2.attention.layer_norm_rms_epsilon"),
              "qwen2 keys");
        CHECK(!mxp_gguf_find(&g, "llama.block_count"), "no llama keys in a qwen2 file");
        // llama.cpp's qwen2 rotates halves as Hugging Face does: rows and biases as they are
        const float *qb = param(m, "model.layers.0.self_attn.q_proj.bias"), *q = gguf_f32(&g, "blk.0.attn_q.bias", 64, 0);
        const float *kw = param(m, "model.layers.0.self_attn.k_proj.weight"), *k = gguf_f32(&g, "blk.0.attn_k.weight", 32, 64);
        CHECK(q && k && !memcmp(q, qb, 64 * sizeof(float)) && !memcmp(k, kw, 32 * 64 * sizeof(float)), "qwen2 q/k as is");
        CHECK(gguf_f32(&g, "blk.0.attn_v.bias", 32, 0) && !mxp_tensor_find(&g.tensors, "blk.0.attn_output.bias"), "v bias, no o bias");
        CHECK(!mxp_tensor_find(&g.tensors, "output.weight") && g.tensors.n == 1 + 1 + 12, "tied f32 head: no output.weight (%d)",
              g.tensors.n);
        mxp_gguf_free(&g);
    }
    if (m && apply_open(dir, "uniform:q8_0", &g)) {
        const mxp_tensor_info *t = mxp_tensor_find(&g.tensors, "token_embd.weight");
        CHECK(t && t->dtype == MXP_DT_Q8_0 && !mxp_tensor_find(&g.tensors, "output.weight"),
              "tied q8_0 head: one op with the embedding, token_embd in q8_0, no output.weight");
        mxp_gguf_free(&g);
    }
    mxp_model_free(m);
    remove_folder(dir);
}

static void family_gpt2(void) {
    char dir[] = "/tmp/mxp_test_apply_g2_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    static const char *const cfg =
        "{\"architectures\": [\"GPT2LMHeadModel\"], \"vocab_size\": 2048, \"n_embd\": 64, \"n_layer\": 1, \"n_head\": 4,"
        " \"n_positions\": 64, \"n_ctx\": 64, \"layer_norm_epsilon\": 1e-5, \"activation_function\": \"gelu_new\"}";
    mxp_model *m = make_folder(dir, cfg, NULL, NULL);
    mxp_gguf g;
    if (m && apply_open(dir, "uniform:f32", &g)) {
        CHECK(kv_is(&g, "general.architecture", "gpt2") && kv_u(&g, "gpt2.context_length") == 64 &&
                  kv_u(&g, "gpt2.feed_forward_length") == 256 && kv_u(&g, "gpt2.attention.head_count") == 4 &&
                  mxp_gguf_find(&g, "gpt2.attention.layer_norm_epsilon"),
              "gpt2 keys");
        static const struct { const char *name; int64_t d0, d1; } want[] = {
            {"token_embd.weight", 2048, 64}, {"position_embd.weight", 64, 64}, {"blk.0.attn_norm.weight", 64, 0},
            {"blk.0.attn_norm.bias", 64, 0}, {"blk.0.attn_qkv.weight", 192, 64}, {"blk.0.attn_qkv.bias", 192, 0},
            {"blk.0.attn_output.weight", 64, 64}, {"blk.0.attn_output.bias", 64, 0}, {"blk.0.ffn_norm.weight", 64, 0},
            {"blk.0.ffn_norm.bias", 64, 0}, {"blk.0.ffn_up.weight", 256, 64}, {"blk.0.ffn_up.bias", 256, 0},
            {"blk.0.ffn_down.weight", 64, 256}, {"blk.0.ffn_down.bias", 64, 0}, {"output_norm.weight", 64, 0},
            {"output_norm.bias", 64, 0}};
        for (size_t i = 0; i < sizeof want / sizeof *want; i++) gguf_f32(&g, want[i].name, want[i].d0, want[i].d1);
        CHECK(g.tensors.n == 16, "tensor count %d (tied f32 head: no output.weight)", g.tensors.n);
        // the converter transposes Conv1D (in, out) to (out, in): row o of attn_qkv is column o of the file
        mxp_tensor_set ts = {0};
        char st[600];
        snprintf(st, sizeof st, "%s/model.safetensors", dir);
        mxp_err err = {0};
        CHECK(mxp_safetensors_open(&ts, st, &err) == MXP_OK, "%s", err.msg);
        const mxp_tensor_info *f = mxp_tensor_find(&ts, "h.0.attn.c_attn.weight");
        if (!f) f = mxp_tensor_find(&ts, "transformer.h.0.attn.c_attn.weight");
        const float *qkv = gguf_f32(&g, "blk.0.attn_qkv.weight", 192, 64);
        int bad = 0;
        for (int o = 0; f && qkv && o < 192; o++)
            for (int i = 0; i < 64; i++) {
                float x;
                memcpy(&x, f->data + ((size_t)i * 192 + (size_t)o) * 4, 4);
                bad += qkv[o * 64 + i] != x;
            }
        CHECK(f && f->shape[0] == 64 && qkv && bad == 0, "attn_qkv = the file's c_attn transposed (%d differ)", bad);
        mxp_tensor_set_free(&ts);
        mxp_gguf_free(&g);
    }
    mxp_model_free(m);
    remove_folder(dir);
}


// ---- SentencePiece-style tokenizer.json -> tokenizer.ggml.model "llama" ----

#define SP "\xE2\x96\x81"  // U+2581
// pieces after <unk> <s> </s> and the 256 byte tokens (ids 259..275)
static const char *const SPM_PIECES[] = {SP, "t", "h", "e", "a", "n", "d", "th", SP "t", "he", SP "th", SP "the",
                                         "an", SP "an", "nd", "and", SP "and"};
// every split of every piece into two pieces, by piece (as Hugging Face extracts them from a
// SentencePiece model); ranks 0..13
static const char *const SPM_MERGES[][2] = {
    {"t", "h"}, {SP, "t"}, {"h", "e"}, {SP, "th"}, {SP "t", "h"}, {SP "t", "he"}, {SP "th", "e"}, {"a", "n"},
    {SP, "an"}, {"n", "d"}, {"a", "nd"}, {"an", "d"}, {SP, "and"}, {SP "an", "d"}};

static char *spm_tokenizer_json(int byte_fallback) {
    cJSON *j = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(j, "model"), *vocab;
    cJSON *added = cJSON_AddArrayToObject(j, "added_tokens");
    static const char *const specials[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", i);
        cJSON_AddStringToObject(a, "content", specials[i]);
        cJSON_AddBoolToObject(a, "special", 1);
        cJSON_AddItemToArray(added, a);
    }
    cJSON *norm = cJSON_AddObjectToObject(j, "normalizer"), *list;
    cJSON_AddStringToObject(norm, "type", "Sequence");
    list = cJSON_AddArrayToObject(norm, "normalizers");
    cJSON *pre = cJSON_CreateObject(), *rep = cJSON_CreateObject();
    cJSON_AddStringToObject(pre, "type", "Prepend");
    cJSON_AddStringToObject(pre, "prepend", SP);
    cJSON_AddStringToObject(rep, "type", "Replace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(rep, "pattern"), "String", " ");
    cJSON_AddStringToObject(rep, "content", SP);
    cJSON_AddItemToArray(list, pre);
    cJSON_AddItemToArray(list, rep);
    cJSON_AddNullToObject(j, "pre_tokenizer");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddBoolToObject(model, "byte_fallback", byte_fallback);
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int i = 0; i < 3; i++) cJSON_AddNumberToObject(vocab, specials[i], i);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        cJSON_AddNumberToObject(vocab, name, 3 + b);
    }
    for (int i = 0; i < 17; i++) cJSON_AddNumberToObject(vocab, SPM_PIECES[i], 259 + i);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < 14; i++) cJSON_AddItemToArray(merges, cJSON_CreateStringArray(SPM_MERGES[i], 2));
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

static const char *const SPM_CONFIG =
    "{\"add_bos_token\": true, \"add_eos_token\": false, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\"}";

static int32_t i32_at(const mxp_gguf_kv *kv, uint64_t i) {
    int32_t v;
    memcpy(&v, kv->arr_data + 4 * i, 4);
    return v;
}

static float f32_at(const mxp_gguf_kv *kv, uint64_t i) {
    float v;
    memcpy(&v, kv->arr_data + 4 * i, 4);
    return v;
}

static void spm_tokenizer(void) {
    char dir[] = "/tmp/mxp_test_apply_spm_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    // vocabulary 280: the tokenizer's 276 tokens and 4 the converter pads as [PADn]
    static const char *const cfg =
        "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 280, \"hidden_size\": 32, \"intermediate_size\": 64,"
        " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"max_position_embeddings\": 64}";
    char *tj = spm_tokenizer_json(1);
    mxp_model *m = make_folder(dir, cfg, tj, SPM_CONFIG);
    free(tj);
    mxp_gguf g;
    mxp_err err = {0};
    char gguf[600], again[600], bad[600];
    snprintf(gguf, sizeof gguf, "%s/model.gguf", dir);
    snprintf(again, sizeof again, "%s/again.gguf", dir);
    snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
    if (m && apply_open(dir, "uniform:f32", &g)) {
        CHECK(kv_is(&g, "tokenizer.ggml.model", "llama") && !mxp_gguf_find(&g, "tokenizer.ggml.merges") &&
                  !mxp_gguf_find(&g, "tokenizer.ggml.pre"),
              "llama tokenizer: scores, no merges, no pre");
        const mxp_gguf_kv *tok = mxp_gguf_find(&g, "tokenizer.ggml.tokens"), *sc = mxp_gguf_find(&g, "tokenizer.ggml.scores");
        const mxp_gguf_kv *ty = mxp_gguf_find(&g, "tokenizer.ggml.token_type");
        CHECK(tok && sc && ty && tok->arr_n == 280 && sc->arr_n == 280 && sc->arr_type == MXP_GGUF_F32 && ty->arr_n == 280,
              "tokens, scores, types for 280 ids");
        if (tok && sc && ty && tok->arr_n == 280 && sc->arr_n == 280 && ty->arr_n == 280) {
            CHECK(tok->arr_strs[279].len == 8 && !memcmp(tok->arr_strs[279].ptr, "[PAD279]", 8) && i32_at(ty, 279) == 5,
                  "padding token");
            CHECK(i32_at(ty, 1) == 3 && i32_at(ty, 3 + 0x41) == 6 && i32_at(ty, 259) == 1 && i32_at(ty, 275) == 1,
                  "types: control, byte, normal");
            // by hand from SPM_MERGES: minus the rank (from 1) of the first merge making the piece;
            // characters below every merge (-(14 + 1)); special and byte tokens 0
            struct { int id; float score; } want[] = {{266, -1}, {267, -2}, {268, -3}, {269, -4}, {270, -6}, {271, -8},
                                                      {272, -9}, {273, -10}, {274, -11}, {275, -13}, {259, -15}, {260, -15},
                                                      {0, 0}, {1, 0}, {3 + 0x41, 0}};
            for (size_t i = 0; i < sizeof want / sizeof *want; i++)
                CHECK(f32_at(sc, (uint64_t)want[i].id) == want[i].score, "score of %d: %g, want %g", want[i].id,
                      f32_at(sc, (uint64_t)want[i].id), want[i].score);
        }
        CHECK(kv_u(&g, "tokenizer.ggml.bos_token_id") == 1 && kv_u(&g, "tokenizer.ggml.eos_token_id") == 2 &&
                  kv_u(&g, "tokenizer.ggml.unknown_token_id") == 0,
              "special ids");
        const mxp_gguf_kv *ab = mxp_gguf_find(&g, "tokenizer.ggml.add_bos_token"), *sp = mxp_gguf_find(&g, "tokenizer.ggml.add_space_prefix");
        CHECK(ab && ab->type == MXP_GGUF_BOOL && ab->u == 1 && sp && sp->u == 1, "add_bos_token, add_space_prefix");
        // merging by these scores (llama.cpp's rule, which mixprec follows for a GGUF without
        // merges) gives the ids the tokenizer.json's merges give
        mxp_model *back = NULL;
        const mxp_tokenizer *tg = NULL, *th = NULL;
        CHECK(mxp_model_load(gguf, &back, &err) == MXP_OK, "%s", err.msg);
        CHECK(back && !mxp_model_tokenizer(back, &tg, &err) && !mxp_model_tokenizer(m, &th, &err), "%s", err.msg);
        static const char *const texts[] = {"the then hand and than", "The handed thane\nand a\xc3\xa9 theand  and"};
        for (size_t k = 0; tg && th && k < 2; k++) {
            int32_t *a = NULL, *b = NULL;
            size_t na = 0, nb = 0;
            CHECK(!mxp_tokenizer_encode(tg, texts[k], strlen(texts[k]), 0, &a, &na, &err) &&
                      !mxp_tokenizer_encode(th, texts[k], strlen(texts[k]), 0, &b, &nb, &err),
                  "%s", err.msg);
            int merged = 0;
            for (size_t i = 0; i < nb; i++) merged += b[i] >= 266;
            CHECK(na == nb && na > 0 && !memcmp(a, b, na * sizeof *a) && merged >= 3, "text %zu: GGUF vs tokenizer.json ids (%zu vs %zu)",
                  k, na, nb);
            free(a);
            free(b);
        }
        mxp_model_free(back);
        // a GGUF input's tokenizer is carried over whole
        mxp_apply_report rep;
        CHECK(mxp_apply(gguf, "uniform:q8_0", again, &rep, &err) == MXP_OK, "apply of the GGUF: %s", err.msg);
        mxp_gguf g2;
        if (!err.code && mxp_gguf_open(&g2, again, &err) == MXP_OK) {
            int same = 0, keys = 0;
            for (int i = 0; i < g.n_kv; i++) {
                if (strncmp(g.kv[i].key, "tokenizer.", 10)) continue;
                keys++;
                const mxp_gguf_kv *a = &g.kv[i], *b = mxp_gguf_find(&g2, a->key);
                if (!b || a->type != b->type || a->u != b->u || a->s.len != b->s.len || a->arr_n != b->arr_n ||
                    a->arr_type != b->arr_type)
                    continue;
                int eq = !a->s.len || !memcmp(a->s.ptr, b->s.ptr, a->s.len);
                if (a->arr_type == MXP_GGUF_STRING)
                    for (uint64_t k = 0; k < a->arr_n && eq; k++)
                        eq = a->arr_strs[k].len == b->arr_strs[k].len && !memcmp(a->arr_strs[k].ptr, b->arr_strs[k].ptr, a->arr_strs[k].len);
                else if (a->arr_n)
                    eq = !memcmp(a->arr_data, b->arr_data, a->arr_n * mxp_gguf_type_size(a->arr_type));
                same += eq;
            }
            CHECK(keys >= 9 && same == keys, "carried over: %d of %d tokenizer keys equal", same, keys);
            mxp_gguf_free(&g2);
        }
        mxp_gguf_free(&g);
    }
    // no byte fallback: llama.cpp's tokenizer would fall back to the <0xNN> tokens anyway
    tj = spm_tokenizer_json(0);
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK(mxp_write_file_atomic(path, tj, strlen(tj), &err) == MXP_OK, "%s", err.msg);
    free(tj);
    mxp_apply_report rep;
    CHECK(mxp_apply(dir, "uniform:f32", bad, &rep, &err) == MXP_ERR_UNSUPPORTED && strstr(err.msg, "byte_fallback") &&
              access(bad, F_OK) != 0,
          "no byte fallback refused: %s", err.msg);
    // no tokenizer at all: refused, nothing written
    unlink(path);
    CHECK(mxp_apply(dir, "uniform:f32", bad, &rep, &err) != MXP_OK && strstr(err.msg, "tokenizer") && access(bad, F_OK) != 0,
          "no tokenizer refused: %s", err.msg);
    mxp_model_free(m);
    remove_folder(dir);
}

// ---- tokenizer refusals and the pre-tokenizer name ----

// Replace the Split regex of dir/tokenizer.json (a copy of models/tiny's) and its ignore_merges.
static int set_split(const char *dir, const char *regex, int ignore_merges, mxp_err *err) {
    cJSON *j = NULL;
    if (mxp_read_json("models/tiny/tokenizer.json", &j, err)) return 0;
    cJSON *seq = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer"), "pretokenizers");
    cJSON *split = cJSON_GetArrayItem(seq, 0);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(split, "pattern"), "Regex", cJSON_CreateString(regex));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItemCaseSensitive(j, "model"), "ignore_merges", cJSON_CreateBool(ignore_merges));
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    mxp_status st = mxp_write_json_atomic(path, j, err);
    cJSON_Delete(j);
    return st == MXP_OK;
}

// The tokenizer.ggml.pre an apply of `dir` writes, or "" when apply fails (message in err).
static void applied_pre(const char *dir, char *pre, size_t cap, mxp_err *err) {
    char gguf[600];
    snprintf(gguf, sizeof gguf, "%s/model.gguf", dir);
    unlink(gguf);
    pre[0] = 0;
    mxp_apply_report rep;
    if (mxp_apply(dir, "uniform:f32", gguf, &rep, err)) {
        CHECK(access(gguf, F_OK) != 0, "a refused apply left %s behind", gguf);
        return;
    }
    mxp_gguf g;
    mxp_gguf_str s;
    if (mxp_gguf_open(&g, gguf, err) == MXP_OK) {
        if (!mxp_gguf_get_str(&g, "tokenizer.ggml.pre", &s, NULL, err)) snprintf(pre, cap, "%.*s", (int)s.len, s.ptr);
        mxp_gguf_free(&g);
    }
    unlink(gguf);
}

static void tokenizer_names(void) {
    char dir[] = "/tmp/mxp_test_apply_tok_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    mxp_model_config c = {.arch = MXP_ARCH_LLAMA, .vocab = 2048, .dim = 32, .n_layers = 1, .n_heads = 2,
                          .n_kv_heads = 2, .head_dim = 16, .ffn = 64, .max_pos = 64, .norm_eps = 1e-5f,
                          .rope_theta = 10000};
    snprintf(c.arch_name, sizeof c.arch_name, "LlamaForCausalLM");
    mxp_err err = {0};
    mxp_model *syn = NULL;
    CHECK(mxp_model_synthetic(&c, 7, &syn, &err) == MXP_OK, "%s", err.msg);
    CHECK(syn && write_hf(dir, syn, &err), "writing the HF folder: %s", err.msg);
    mxp_model_free(syn);
    static const char *const gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    static const char *const llama3 =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static const char *const qwen2 =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    // a regex none of llama.cpp's names stands for (GPT-2's with digits split one by one)
    static const char *const odd = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    struct { const char *regex; int ignore_merges; const char *want; const char *msg; } cases[] = {
        {gpt2, 0, "gpt-2", NULL},
        {llama3, 1, "llama-bpe", NULL},
        {qwen2, 0, "qwen2", NULL},
        {odd, 0, "", "?\\p{N}| ?[^"},          // refused, the message quotes the regex
        {llama3, 0, "", "ignore_merges=false"},  // llama.cpp's llama-bpe ignores merges
        {gpt2, 1, "", "ignore_merges=true"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char pre[64];
        memset(&err, 0, sizeof err);
        CHECK(set_split(dir, cases[i].regex, cases[i].ignore_merges, &err), "%s", err.msg);
        applied_pre(dir, pre, sizeof pre, &err);
        CHECK(!strcmp(pre, cases[i].want), "case %zu: tokenizer.ggml.pre \"%s\", want \"%s\" (%s)", i, pre, cases[i].want,
              err.msg);
        if (cases[i].msg)
            CHECK(err.code == MXP_ERR_UNSUPPORTED && strstr(err.msg, cases[i].msg), "case %zu: message: %s", i, err.msg);
    }
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int k = 0; k < 4; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, files[k]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void) {
    test_writer();
    tokenizer_names();
    family_llama3_bias();
    family_qwen2();
    family_gpt2();
    spm_tokenizer();
    round_trip(0);
    round_trip(1);
    CHECK_DONE();
}

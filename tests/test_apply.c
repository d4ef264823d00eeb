// test_apply.c: the GGUF writer and `mixprec apply`.
//  - writer: every KV type (scalars, strings, arrays of numbers and of strings) and tensors of
//    every GGML type read back by the GGUF reader (gguf.c) with the same values and layout;
//    duplicate keys / bad sizes refused.
//  - Q8_0 / Q4_0 tensors dequantize on load to values decoded here by hand from the bytes.
//  - round trip: a random Llama (GQA, so q and k are permuted with different head counts)
//    written as a Hugging Face folder with a real tokenizer.json, a mixed plan (every GGML
//    format), apply -> GGUF; loaded back: names, types, shapes, tokenizer metadata, the slots
//    the loader sets; its logits equal the fake-quant logits of the plan on the source model;
//    eval runs on it. A tied model with a quantized head gets its own output.weight.
//    f8_e4m3 is refused.
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
              rep.n_by_format[MXP_FMT_F16] == 1 && rep.n_by_format[MXP_FMT_BF16] == 1 && rep.n_by_format[MXP_FMT_F32] == 4,
          "formats written: f32 %d q8 %d q4 %d", rep.n_by_format[0], rep.n_by_format[3], rep.n_by_format[4]);
    CHECK(mxp_model_load(dir, &src, &err) == MXP_OK, "%s", err.msg);
    CHECK(mxp_model_load(gguf, &out, &err) == MXP_OK, "loading the GGUF: %s", err.msg);
    if (src && out) {
        const mxp_tensor_set *ts = &out->gguf.tensors;
        struct { const char *name; mxp_dtype dt; int64_t d0, d1; } want[] = {
            {"token_embd.weight", MXP_DT_F32, 2048, 64},      {"blk.0.attn_norm.weight", MXP_DT_F32, 64, 0},
            {"blk.0.attn_q.weight", MXP_DT_Q8_0, 64, 64},     {"blk.0.attn_k.weight", MXP_DT_Q4_0, 32, 64},
            {"blk.0.attn_v.weight", MXP_DT_F16, 32, 64},      {"blk.0.attn_output.weight", MXP_DT_BF16, 64, 64},
            {"blk.0.ffn_norm.weight", MXP_DT_F32, 64, 0},     {"blk.0.ffn_gate.weight", MXP_DT_Q4_0, 160, 64},
            {"blk.0.ffn_up.weight", MXP_DT_Q8_0, 160, 64},    {"blk.0.ffn_down.weight", MXP_DT_Q4_0, 64, 160},
            {"blk.1.attn_q.weight", MXP_DT_Q4_0, 64, 64},     {"blk.1.attn_k.weight", MXP_DT_Q8_0, 32, 64},
            {"blk.1.attn_v.weight", MXP_DT_F32, 32, 64},      {"blk.1.ffn_down.weight", MXP_DT_Q8_0, 64, 160},
            {"output_norm.weight", MXP_DT_F32, 64, 0},        {"output.weight", MXP_DT_Q8_0, 2048, 64},
        };
        for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
            const mxp_tensor_info *t = mxp_tensor_find(ts, want[i].name);
            CHECK(t && t->dtype == want[i].dt && t->shape[0] == want[i].d0 && t->ndim == (want[i].d1 ? 2 : 1) &&
                      (!want[i].d1 || t->shape[1] == want[i].d1),
                  "tensor %s: %s %lld x %lld", want[i].name, t ? mxp_dtype_name(t->dtype) : "missing",
                  t ? (long long)t->shape[0] : 0LL, t && t->ndim > 1 ? (long long)t->shape[1] : 0LL);
        }
        CHECK(ts->n == 2 * 9 + 3, "tensor count %d", ts->n);  // tied: output.weight written because lm_head is q8_0
        mxp_gguf_str s;
        uint64_t u;
        CHECK(!mxp_gguf_get_str(&out->gguf, "tokenizer.ggml.model", &s, NULL, &err) && s.len == 4 && !memcmp(s.ptr, "gpt2", 4),
              "tokenizer model");
        CHECK(!mxp_gguf_get_str(&out->gguf, "tokenizer.ggml.pre", &s, NULL, &err) && s.len == 4 && !memcmp(s.ptr, "gpt2", 4),
              "tokenizer pre");
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
        CHECK(out->config.tied == 0 && out->config.n_kv_heads == 2 && out->config.head_dim == 16, "config read back");
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
        CHECK(mxp_graph_find_linear(&out->graph, "model.layers.0.self_attn.k_proj", &nd) &&
                  out->graph.nodes[nd].fmt == MXP_FMT_Q4_0,
              "k slot q4_0");
        CHECK(mxp_graph_find_linear(&out->graph, "model.layers.0.self_attn.v_proj", &nd) &&
                  out->graph.nodes[nd].fmt == MXP_FMT_F32,
              "f16 weights keep the f32 slot");
        CHECK(mxp_graph_find_linear(&out->graph, "lm_head", &nd) && out->graph.nodes[nd].fmt == MXP_FMT_Q8_0, "head slot");
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

int main(void) {
    test_writer();
    round_trip(0);
    round_trip(1);
    CHECK_DONE();
}

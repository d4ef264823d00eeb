// fuzz_st_index.c: libFuzzer target for the shard index of a sharded Hugging Face folder
// (model.safetensors.index.json, io/tensors.h mxp_st_index_*).
//
// Input: an index image, optionally followed by "\0" and a safetensors image that stands for
// every shard the index names. The target does what mxp_hf_open_weights does for a sharded
// folder, from memory: parse the index, read each shard (here: the same image, so the second
// shard repeats tensor names and must be refused), check that each shard holds only tensors
// the index assigns to it, then that every listed tensor was found.
//
// Every input must give MXP_OK or a clean error naming the index or the shard; an accepted
// index has sorted, distinct tensor names and plain shard file names; after a failure the
// tensor set is rolled back.
#include <string.h>

#include "fuzz_seed.h"
#include "fuzz_tensors.h"

#define LABEL "fuzz/model.safetensors.index.json"
#define SHARD "fuzz/shard.safetensors"  // every shard's label (names may be long)

// {"metadata": ..., "weight_map": {"a": S1, "b": S1}} "\0" a safetensors image with a and b.
static void write_seeds(const char *dir) {
    static const char index1[] =
        "{\"metadata\": {\"total_size\": 24}, \"weight_map\": {\"b\": \"model-00001-of-00001.safetensors\", "
        "\"a\": \"model-00001-of-00001.safetensors\"}}";
    static const char index2[] =
        "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00001-of-00002.safetensors\", "
        "\"c\": \"model-00002-of-00002.safetensors\"}}";
    static const char header[] =
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]},\"__metadata__\":{\"format\":\"pt\"}}";
    uint8_t buf[1024];
    for (int k = 0; k < 2; k++) {
        const char *ix = k ? index2 : index1;
        size_t n = strlen(ix), hl = strlen(header), pad = (8 - hl % 8) % 8;
        memcpy(buf, ix, n);
        buf[n++] = 0;
        uint64_t len = hl + pad;
        for (int i = 0; i < 8; i++) buf[n++] = (uint8_t)(len >> (8 * i));
        memcpy(buf + n, header, hl);
        n += hl;
        memset(buf + n, ' ', pad);
        n += pad;
        for (int i = 0; i < 16; i++) buf[n++] = (uint8_t)(0x3c + i);
        fuzz_write_seed(dir, k ? "two_shards" : "one_shard", buf, n);
    }
    fuzz_write_seed(dir, "index_only", index2, strlen(index2));
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("MXP_FUZZ_WRITE_SEEDS");
    if (dir) write_seeds(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t in = nul ? (size_t)(nul - data) : size;
    const uint8_t *shard = nul ? nul + 1 : NULL;
    size_t sn = nul ? size - in - 1 : 0;
    mxp_st_index ix;
    mxp_err err = {0};
    if (mxp_st_index_parse(&ix, data, in, LABEL, &err)) {
        MXP_ASSERT(strstr(err.msg, LABEL) && ix.root == NULL && ix.n == 0);
        return 0;
    }
    MXP_ASSERT(ix.n >= 1 && ix.n_shards >= 1 && ix.n_shards <= ix.n);
    for (int i = 0; i < ix.n; i++) {
        MXP_ASSERT(i == 0 || strcmp(ix.names[i - 1], ix.names[i]) < 0);
        const char *f = ix.shard_of[i];
        MXP_ASSERT(f[0] && !strchr(f, '/') && !strchr(f, '\\') && strcmp(f, "..") && strcmp(f, "."));
    }
    for (int s = 1; s < ix.n_shards; s++) MXP_ASSERT(strcmp(ix.shards[s - 1], ix.shards[s]) < 0);
    if (shard) {
        mxp_tensor_set ts;
        memset(&ts, 0, sizeof ts);
        mxp_status st = MXP_OK;
        for (int s = 0; s < ix.n_shards && s < 4 && !st; s++) {
            int n0 = ts.n;
            st = mxp_safetensors_parse(&ts, shard, sn, SHARD, &err);
            if (st) {
                MXP_ASSERT(ts.n == n0 && strstr(err.msg, SHARD));
            } else {
                fuzz_touch_tensors(&ts, shard, sn);
                st = mxp_st_index_check_shard(&ix, s, &ts, n0, LABEL, SHARD, &err);
                if (st) MXP_ASSERT(strstr(err.msg, LABEL) || strstr(err.msg, SHARD));
            }
        }
        if (!st && ix.n_shards <= 4) {
            st = mxp_st_index_check_complete(&ix, &ts, 0, LABEL, &err);
            if (st) MXP_ASSERT(strstr(err.msg, LABEL));
            else MXP_ASSERT(ts.n == ix.n);
        }
        mxp_tensor_set_free(&ts);
    }
    mxp_st_index_free(&ix);
    return 0;
}

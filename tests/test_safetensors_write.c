// test_safetensors_write.c: mxp_safetensors_write round trips through the (independently
// written) safetensors loader, follows the layout rules (header length a multiple of 8, names
// sorted, data offsets contiguous in that order), rejects bad arguments without touching an
// existing file, and escapes odd names.
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io/tensors.h"

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    b[*n] = 0;
    return b;
}

int main(void) {
    char dir[200];
    if (!check_tmpdir(dir, sizeof dir, "mxp_test_stw")) CHECK_DONE();
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    mxp_err err = {0};

    float w[6] = {1, -2, 3.5f, 0, 1e-30f, -7};
    int32_t ids[4] = {5, -1, 2147483647, 0};
    uint16_t bf[3] = {0x3f80, 0xc000, 0x0001};
    mxp_tensor_info t[4] = {
        {.name = "z.weight", .dtype = MXP_DT_F32, .ndim = 2, .shape = {2, 3}, .data = (const uint8_t *)w, .nbytes = 24},
        {.name = "a.ids", .dtype = MXP_DT_I32, .ndim = 1, .shape = {4}, .data = (const uint8_t *)ids, .nbytes = 16},
        {.name = "m\"odd\\name", .dtype = MXP_DT_BF16, .ndim = 1, .shape = {3}, .data = (const uint8_t *)bf, .nbytes = 6},
        {.name = "scalar", .dtype = MXP_DT_F32, .ndim = 0, .data = (const uint8_t *)w, .nbytes = 4},
    };
    const char *meta[2] = {"note", "made by \"test\""};
    CHECK(mxp_safetensors_write(path, t, 4, meta, 1, &err) == MXP_OK, "%s", err.msg);
    CHECK(count_entries(dir) == 1, "only the target in the folder (no temporary left)");

    // layout, checked on the raw bytes
    size_t n = 0;
    uint8_t *raw = read_all(path, &n);
    CHECK(raw && n > 8, "read back");
    if (raw && n > 8) {
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = (hl << 8) | raw[i];
        CHECK((8 + hl) % 8 == 0, "data starts 8-byte aligned (header %llu)", (unsigned long long)hl);
        CHECK(8 + hl + 24 + 16 + 6 + 4 == n, "file size %zu", n);
        char *h = (char *)raw + 8;
        const char *pa = strstr(h, "\"a.ids\""), *pm = strstr(h, "\"m\\\"odd\\\\name\""), *ps = strstr(h, "\"scalar\""),
                   *pz = strstr(h, "\"z.weight\"");
        CHECK(pa && pm && ps && pz && pa < pm && pm < ps && ps < pz, "names sorted and escaped in: %.*s", (int)hl, h);
        CHECK(strstr(h, "\"__metadata__\":{\"format\":\"pt\",\"note\":\"made by \\\"test\\\"\"}"), "metadata: %.*s",
              (int)hl, h);
        CHECK(strstr(h, "\"a.ids\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]}"), "a.ids entry");
        CHECK(strstr(h, "\"z.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[26,50]}"), "z entry");
        CHECK(!memcmp(raw + 8 + hl, ids, 16) && !memcmp(raw + 8 + hl + 26, w, 24), "data bytes in name order");
    }
    free(raw);

    // round trip through the loader
    mxp_tensor_set ts = {0};
    CHECK(mxp_safetensors_open(&ts, path, &err) == MXP_OK, "%s", err.msg);
    for (int i = 0; i < 4; i++) {
        const mxp_tensor_info *r = mxp_tensor_find(&ts, t[i].name);
        CHECK(r != NULL, "tensor %s read back", t[i].name);
        if (!r) continue;
        CHECK(r->dtype == t[i].dtype && r->ndim == t[i].ndim && r->nbytes == t[i].nbytes, "%s: dtype/shape", t[i].name);
        for (int d = 0; d < t[i].ndim; d++) CHECK(r->shape[d] == t[i].shape[d], "%s: dim %d", t[i].name, d);
        CHECK(!memcmp(r->data, t[i].data, t[i].nbytes), "%s: data", t[i].name);
    }
    mxp_tensor_set_free(&ts);

    // bad arguments: an error naming the problem, the existing file untouched
    size_t n0 = 0, n1 = 0;
    uint8_t *before = read_all(path, &n0);
    mxp_tensor_info bad = t[0];
    mxp_tensor_info dup[2] = {t[0], t[0]};
    CHECK(mxp_safetensors_write(path, dup, 2, NULL, 0, &err) == MXP_ERR_ARG, "duplicate");
    CHECK(strstr(err.msg, "duplicate") && strstr(err.msg, "z.weight"), "message: %s", err.msg);
    bad.nbytes = 20;
    CHECK(mxp_safetensors_write(path, &bad, 1, NULL, 0, &err) == MXP_ERR_ARG, "nbytes mismatch");
    CHECK(strstr(err.msg, "20 bytes") && strstr(err.msg, "24"), "message: %s", err.msg);
    bad = t[0];
    bad.dtype = MXP_DT_Q8_0;
    CHECK(mxp_safetensors_write(path, &bad, 1, NULL, 0, &err) == MXP_ERR_ARG, "q8_0 dtype");
    bad = t[0];
    bad.name = "";
    CHECK(mxp_safetensors_write(path, &bad, 1, NULL, 0, &err) == MXP_ERR_ARG, "empty name");
    bad.name = "__metadata__";
    CHECK(mxp_safetensors_write(path, &bad, 1, NULL, 0, &err) == MXP_ERR_ARG, "reserved name");
    bad = t[0];
    bad.shape[1] = -3;
    CHECK(mxp_safetensors_write(path, &bad, 1, NULL, 0, &err) == MXP_ERR_ARG, "negative dim");
    uint8_t *after = read_all(path, &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, n0), "target unchanged after failed writes");
    free(before);
    free(after);
    CHECK(count_entries(dir) == 1, "no temporaries left after failed writes");
    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.safetensors", dir);
    CHECK(mxp_safetensors_write(missing, t, 1, NULL, 0, &err) == MXP_ERR_IO, "missing folder");
    CHECK(strstr(err.msg, missing), "path in message: %s", err.msg);

    // no tensors at all: still a valid (empty) file
    CHECK(mxp_safetensors_write(path, NULL, 0, NULL, 0, &err) == MXP_OK, "%s", err.msg);
    CHECK(mxp_safetensors_open(&ts, path, &err) == MXP_OK && ts.n == 0, "empty file reads back: %s", err.msg);
    mxp_tensor_set_free(&ts);

    // small files
    char p2[256];
    snprintf(p2, sizeof p2, "%s/config.json", dir);
    CHECK(mxp_write_file_atomic(p2, "{}\n", 3, &err) == MXP_OK, "%s", err.msg);
    size_t n2 = 0;
    uint8_t *c = read_all(p2, &n2);
    CHECK(c && n2 == 3 && !memcmp(c, "{}\n", 3), "small file content");
    free(c);
    unlink(p2);
    unlink(path);
    rmdir(dir);
    CHECK_DONE();
}

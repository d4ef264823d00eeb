// jsonout.c: atomic file writes, JSON read/write helpers, hashes and provenance.
#include "io/jsonout.h"

#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/tensors.h"
#include "quant/format.h"

mxp_status mxp_write_json_atomic(const char *path, const cJSON *j, mxp_err *err) {
    char *text = cJSON_Print(j);
    if (!text) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory printing %s", path);
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    }
    withnl[n] = '\n';
    withnl[n + 1] = 0;
    mxp_status st = mxp_write_file_atomic(path, withnl, n + 1, err);
    free(withnl);
    return st;
}

mxp_status mxp_parse_json(const uint8_t *buf, size_t size, const char *label, cJSON **out, mxp_err *err) {
    *out = NULL;
    cJSON *j = size ? cJSON_ParseWithLength((const char *)buf, size) : NULL;
    if (!j) return mxp_fail(err, MXP_ERR_FORMAT, "%s: not valid JSON", label);
    *out = j;
    return MXP_OK;
}

mxp_status mxp_read_json(const char *path, cJSON **out, mxp_err *err) {
    *out = NULL;
    mxp_mapping map;
    mxp_status st = mxp_map_file(&map, path, err);
    if (st) return st;
    st = mxp_parse_json(map.base, map.size, path, out, err);
    mxp_unmap(&map);
    return st;
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static mxp_status hash_file(uint64_t *h, const char *path, mxp_err *err) {
    mxp_mapping map;
    mxp_status st = mxp_map_file(&map, path, err);
    if (st) return st;
    // in pieces, each dropped from the resident set once hashed: hashing a model file does not
    // hold the whole file in memory beside the model's weights
    const size_t piece = (size_t)64 << 20;
    for (size_t at = 0; at < map.size; at += piece) {
        size_t n = map.size - at < piece ? map.size - at : piece;
        *h = fnv1a(*h, map.base + at, n);
        mxp_map_release(&map, map.base + at, n);
    }
    mxp_unmap(&map);
    return MXP_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

mxp_status mxp_hash_path(const char *path, char out[32], mxp_err *err) {
    uint64_t h = 0xcbf29ce484222325ULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return mxp_fail(err, MXP_ERR_IO, "%s: cannot stat", path);
    mxp_status st = MXP_OK;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return mxp_fail(err, MXP_ERR_IO, "%s: cannot open folder", path);
        char *names[256];
        int n = 0;
        struct dirent *e;
        while (!st && (e = readdir(d))) {
            size_t len = strlen(e->d_name);
            int want = !strcmp(e->d_name, "config.json") ||
                       (len > 12 && !strcmp(e->d_name + len - 12, ".safetensors") && strncmp(e->d_name, "train-", 6)) ||
                       !strcmp(e->d_name, "model.safetensors.index.json");
            if (!want) continue;
            if (n == 256)
                st = mxp_fail(err, MXP_ERR_UNSUPPORTED, "%s: more than 256 model files to hash", path);
            else if (!(names[n++] = mxp_strdup(e->d_name)))
                st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        }
        closedir(d);
        if (st) {
            for (int i = 0; i < n; i++) free(names[i]);
            return st;
        }
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        for (int i = 0; i < n; i++) {
            char p[4200];
            snprintf(p, sizeof p, "%s/%s", path, names[i]);
            h = fnv1a(h, (const uint8_t *)names[i], strlen(names[i]));
            if (!st) st = hash_file(&h, p, err);
            free(names[i]);
        }
    } else {
        st = hash_file(&h, path, err);
    }
    if (st) return st;
    snprintf(out, 32, "fnv1a64:%016llx", (unsigned long long)h);
    return MXP_OK;
}

void mxp_machine_description(char *out, size_t cap) {
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ') c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(model, sizeof model, "%s", c);
            }
            break;
        }
    }
    if (f) fclose(f);
    snprintf(out, cap, "%s (%d threads)", model, omp_get_max_threads());
}

void mxp_run_stamp_now(mxp_run_stamp *s) {
    snprintf(s->tool, sizeof s->tool, "mixprec %s", mxp_version());
    snprintf(s->ggml, sizeof s->ggml, "%s (commit %s)", mxp_ggml_version(), mxp_ggml_commit());
    mxp_machine_description(s->machine, sizeof s->machine);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s->created, sizeof s->created, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

cJSON *mxp_provenance_json(const char *model_path, const char *data_path, mxp_err *err) {
    char mh[32], dh[32];
    if (mxp_hash_path(model_path, mh, err)) return NULL;
    if (data_path && mxp_hash_path(data_path, dh, err)) return NULL;
    mxp_run_stamp rs;
    mxp_run_stamp_now(&rs);
    cJSON *p = cJSON_CreateObject();
    int ok = p && cJSON_AddStringToObject(p, "tool", rs.tool) && cJSON_AddStringToObject(p, "ggml", rs.ggml) &&
             cJSON_AddStringToObject(p, "model", model_path) &&
             cJSON_AddStringToObject(p, "model_hash", mh) && cJSON_AddStringToObject(p, "machine", rs.machine) &&
             cJSON_AddStringToObject(p, "kernels", mxp_kernel_impl_name()) &&
             cJSON_AddStringToObject(p, "created", rs.created);
    if (ok && data_path) ok = cJSON_AddStringToObject(p, "data", data_path) && cJSON_AddStringToObject(p, "data_hash", dh);
    if (!ok) {
        cJSON_Delete(p);
        mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return p;
}

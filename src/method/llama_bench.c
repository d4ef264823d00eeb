// llama_bench.c: run llama.cpp's llama-bench on GGUF files and read its JSON output.
#include "method/llama_bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "io/jsonout.h"

extern char **environ;

static int executable(const char *p) {
    struct stat sb;
    return p && *p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && access(p, X_OK) == 0;
}

int mxp_llama_quantize_find(const char *bench, char *out, size_t cap) {
    const char *slash = strrchr(bench, '/');
    int dir = slash ? (int)(slash - bench) + 1 : 0;
    return snprintf(out, cap, "%.*sllama-quantize", dir, bench) < (int)cap && executable(out);
}

int mxp_llama_bench_find(const char *explicit_path, char *out, size_t cap) {
    if (explicit_path) return executable(explicit_path) && snprintf(out, cap, "%s", explicit_path) < (int)cap;
    const char *env = getenv("MIXPREC_LLAMA_BENCH");
    if (env && *env) return executable(env) && snprintf(out, cap, "%s", env) < (int)cap;
    char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        // build-deps/bin in a folder above the executable's (build/, build-ci/release/, ...)
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            if (up && snprintf(out, cap, "%s/build-deps/bin/llama-bench", exe) < (int)cap && executable(out)) return 1;
        }
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if (len && snprintf(out, cap, "%.*s/llama-bench", (int)len, path) < (int)cap && executable(out)) return 1;
        path = end ? end + 1 : NULL;
    }
    return 0;
}

// Last non-empty line of a file (for error messages), into out.
static void last_line(const char *path, char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = 0;
        if (n) snprintf(out, cap, "%s", line);
    }
    fclose(f);
}

// Run prog with argv, stdout to out_path and stderr to log_path (the same file when equal),
// and wait; a failure names the program and the last line it printed.
static mxp_status spawn_wait(const char *prog, const char *const *argv, const char *out_path, const char *log_path,
                             mxp_err *err) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (strcmp(out_path, log_path)) posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    else posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, prog, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) return mxp_fail(err, MXP_ERR_IO, "%s: cannot run: %s", prog, strerror(rc));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return mxp_fail(err, MXP_ERR_IO, "%s: waitpid: %s", prog, strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        char last[512];
        last_line(log_path, last, sizeof last);
        return mxp_fail(err, MXP_ERR_IO, "%s failed (%s %d): %s", prog, WIFEXITED(status) ? "exit status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), last);
    }
    return MXP_OK;
}

// One llama-bench run over every file, starting with file `first` (the order rotates per round:
// the first model of a run pays for the cold start); its JSON goes to json_path.
static mxp_status run_once(const char *bench, const char *const *gguf, int n, int first, const mxp_llama_bench_opts *o,
                           const char *json_path, const char *log_path, mxp_err *err) {
    char pp[16], tg[16], th[16], dp[16];
    snprintf(pp, sizeof pp, "%d", o->prefill);
    snprintf(tg, sizeof tg, "%d", o->decode);
    snprintf(th, sizeof th, "%d", o->threads);
    snprintf(dp, sizeof dp, "%d", o->depth);
    int argc = 0;
    const char **argv = malloc(((size_t)2 * n + 16) * sizeof *argv);
    if (!argv) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    argv[argc++] = bench;
    for (int i = 0; i < n; i++) {
        argv[argc++] = "-m";
        argv[argc++] = gguf[(first + i) % n];
    }
    const char *rest[] = {"-p", pp, "-n", tg, "-d", dp, "-t", th, "-r", "2", "-o", "json", NULL};
    for (int i = 0; rest[i]; i++) argv[argc++] = rest[i];
    argv[argc] = NULL;
    mxp_status st = spawn_wait(bench, argv, json_path, log_path, err);
    free(argv);
    return st;
}

mxp_status mxp_llama_quantize_run(const char *quantize, const char *in, const char *out, const char *type,
                                  const char *log_path, mxp_err *err) {
    const char *argv[] = {quantize, in, out, type, NULL};
    return spawn_wait(quantize, argv, log_path, log_path, err);
}

mxp_status mxp_llama_bench_run(const char *bench, const char *const *gguf, int n, const mxp_llama_bench_opts *o,
                               const char *work_dir, mxp_llama_speed *out, char *build, size_t build_cap, mxp_err *err) {
    int rounds = o->rounds;
    if (n < 1 || o->prefill < 0 || o->decode < 0 || o->prefill + o->decode < 1 || o->depth < 0 || o->threads < 1 ||
        rounds < 1)
        return mxp_fail(err, MXP_ERR_ARG, "llama-bench: bad arguments");
    if (build_cap) snprintf(build, build_cap, "unknown");
    char json_path[4200], log_path[4200];
    snprintf(json_path, sizeof json_path, "%s/llama-bench.json", work_dir);
    snprintf(log_path, sizeof log_path, "%s/llama-bench.log", work_dir);
    double *pp = calloc((size_t)n * rounds, sizeof *pp), *tg = calloc((size_t)n * rounds, sizeof *tg);
    int *npp = calloc((size_t)n, sizeof *npp), *ntg = calloc((size_t)n, sizeof *ntg);
    mxp_status st = pp && tg && npp && ntg ? MXP_OK : mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    for (int r = 0; r < rounds && !st; r++) {
        st = run_once(bench, gguf, n, r % n, o, json_path, log_path, err);
        cJSON *j = NULL;
        if (!st) st = mxp_read_json(json_path, &j, err);
        if (!st && !cJSON_IsArray(j)) st = mxp_fail(err, MXP_ERR_FORMAT, "%s: llama-bench's output is not a JSON array", json_path);
        for (const cJSON *e = st ? NULL : j->child; e; e = e->next) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(e, "model_filename");
            const cJSON *np = cJSON_GetObjectItemCaseSensitive(e, "n_prompt");
            const cJSON *ng = cJSON_GetObjectItemCaseSensitive(e, "n_gen");
            const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "avg_ts");
            const cJSON *bc = cJSON_GetObjectItemCaseSensitive(e, "build_commit");
            const cJSON *bn = cJSON_GetObjectItemCaseSensitive(e, "build_number");
            if (!cJSON_IsString(fn) || !cJSON_IsNumber(np) || !cJSON_IsNumber(ng) || !cJSON_IsNumber(ts)) continue;
            if (build_cap && cJSON_IsString(bc))
                snprintf(build, build_cap, "%s (%d)", bc->valuestring, cJSON_IsNumber(bn) ? bn->valueint : 0);
            for (int i = 0; i < n; i++) {
                if (strcmp(fn->valuestring, gguf[i])) continue;
                if (np->valueint > 0 && ng->valueint == 0 && npp[i] < rounds) pp[(size_t)i * rounds + npp[i]++] = ts->valuedouble;
                if (ng->valueint > 0 && np->valueint == 0 && ntg[i] < rounds) tg[(size_t)i * rounds + ntg[i]++] = ts->valuedouble;
                break;
            }
        }
        cJSON_Delete(j);
    }
    for (int i = 0; i < n && !st; i++) {
        if ((o->prefill && npp[i] != rounds) || (o->decode && ntg[i] != rounds)) {
            st = mxp_fail(err, MXP_ERR_FORMAT, "%s: llama-bench reported no prefill or decode speed for %s", json_path, gguf[i]);
            break;
        }
        out[i].prefill_tps = o->prefill ? mxp_median_inplace(pp + (size_t)i * rounds, (size_t)rounds) : 0;
        out[i].decode_tps = o->decode ? mxp_median_inplace(tg + (size_t)i * rounds, (size_t)rounds) : 0;
    }
    remove(json_path);
    if (!st) remove(log_path);
    free(pp);
    free(tg);
    free(npp);
    free(ntg);
    return st;
}

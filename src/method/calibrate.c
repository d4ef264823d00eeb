// calibrate.c: `mixprec calibrate`: draws calibration samples, runs the sensitivity pass
// (sensitivity.c) with checkpoints of the accumulators, writes the table, and optionally
// checks the predictions against measured loss MSE on held-out samples (check.c).
// In an MPI job (o->dist) every rank draws the same samples and runs its share; rank 0 alone
// reads the partial table, writes files and runs the check. Other ranks write nothing.
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "arch/model.h"
#include "io/data.h"
#include "io/jsonout.h"
#include "method/check.h"
#include "method/sens_io.h"
#include "method/sensitivity.h"
#include "runtime/dist.h"

static mxp_status parse_formats(const char *list, mxp_format_id *out, int *n, mxp_err *err) {
    char buf[256];
    if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf)
        return mxp_fail(err, MXP_ERR_ARG, "--formats: list too long");
    *n = 0;
    int has_f32 = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == MXP_FMT_COUNT) return mxp_fail(err, MXP_ERR_ARG, "--formats: too many formats");
        mxp_status st = mxp_format_parse(tok, &out[*n], err);
        if (st) return mxp_fail_prefix(err, "--formats: ");
        has_f32 |= out[*n] == MXP_FMT_F32;
        (*n)++;
    }
    if (!has_f32) {  // the reference is always a candidate
        if (*n == MXP_FMT_COUNT) return mxp_fail(err, MXP_ERR_ARG, "--formats: too many formats");
        memmove(out + 1, out, (size_t)*n * sizeof *out);
        out[0] = MXP_FMT_F32;
        (*n)++;
    }
    return MXP_OK;
}

// MemAvailable of /proc/meminfo in bytes; 0 when it cannot be read.
static uint64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return kb > UINT64_MAX / 1024 ? 0 : (uint64_t)kb * 1024;
}

// bytes as "123.4 MiB" or "12.34 GiB" into buf (the binary units --max-memory takes)
static const char *size_str(char *buf, size_t cap, uint64_t bytes) {
    if (bytes < (1ull << 30)) snprintf(buf, cap, "%.1f MiB", (double)bytes / (1 << 20));
    else snprintf(buf, cap, "%.2f GiB", (double)bytes / (1 << 30));
    return buf;
}

// Whether to stream (mxp_stream_mode): AUTO compares the whole-graph pass's activations and
// buffers for batches of B with o->max_memory, or with half of MemAvailable (the other half
// left for the model's mapped pages, the --cache-mb cache and the rest of the machine). One
// line on stderr says which and why (when `say`). The choice changes memory and time only.
static mxp_status choose_stream(const mxp_calib_opts *o, const mxp_sens *s, const mxp_graph *g, int B, int want_fisher,
                                int say, int *stream, mxp_err *err) {
    size_t whole, streaming;
    mxp_status st = mxp_sens_memory(s, g, B, want_fisher, &whole, &streaming, err);
    if (st) return st;
    char a[32], b[32], c[32];
    if (o->stream != MXP_STREAM_AUTO) {
        *stream = o->stream == MXP_STREAM_ON;
        if (say)
            fprintf(stderr, "calibrate: %s (--stream %s): activations and buffers ~%s (in memory ~%s, streaming ~%s)\n",
                    *stream ? "streaming block by block" : "in memory", *stream ? "on" : "off",
                    size_str(a, sizeof a, *stream ? streaming : whole), size_str(b, sizeof b, whole),
                    size_str(c, sizeof c, streaming));
        return MXP_OK;
    }
    uint64_t limit = o->max_memory;
    const char *why = "--max-memory";
    if (!limit) {
        limit = mem_available() / 2;
        why = "half of MemAvailable";
    }
    *stream = limit && whole > limit;
    if (!say) return MXP_OK;
    if (!limit)
        fprintf(stderr, "calibrate: in memory (MemAvailable unreadable): activations and buffers ~%s\n",
                size_str(a, sizeof a, whole));
    else if (*stream)
        fprintf(stderr,
                "calibrate: streaming block by block: in memory the activations and buffers would take ~%s, over "
                "%s (%s); streaming they take ~%s\n",
                size_str(a, sizeof a, whole), size_str(b, sizeof b, limit), why, size_str(c, sizeof c, streaming));
    else
        fprintf(stderr, "calibrate: in memory: activations and buffers ~%s, within %s (%s)\n",
                size_str(a, sizeof a, whole), size_str(b, sizeof b, limit), why);
    return MXP_OK;
}

// The final table goes to out_path; checkpoints of an unfinished run go to out_path.partial
// (what --resume reads), so out_path never holds an incomplete table.
static void partial_path(const mxp_calib_opts *o, char *buf, size_t cap) { snprintf(buf, cap, "%s.partial", o->out_path); }

typedef struct save_ctx {
    const mxp_calib_opts *o;
    mxp_metric primary;
    const cJSON *prov;  // computed once (hashing the model is not free)
} save_ctx;

static mxp_status save(const mxp_sens *s, const save_ctx *c, int complete, mxp_err *err) {
    const mxp_calib_opts *o = c->o;
    char partial[4200];
    partial_path(o, partial, sizeof partial);
    cJSON *prov = cJSON_Duplicate(c->prov, 1);
    mxp_metric primary = c->primary;
    if (!prov) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    cJSON *j = mxp_sens_to_json(s, primary, prov, complete);
    if (!j) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    if (complete) {
        cJSON *calib = cJSON_AddObjectToObject(j, "calibration");
        cJSON_AddNumberToObject(calib, "seed", (double)o->seed);
        cJSON_AddStringToObject(calib, "split", "calibration");
    }
    mxp_status st = mxp_write_json_atomic(complete ? o->out_path : partial, j, err);
    cJSON_Delete(j);
    if (!st && complete) unlink(partial);
    return st;
}

static mxp_status checkpoint(void *ctx, const mxp_sens *s, mxp_err *err) { return save(s, ctx, 0, err); }

// The default --cache-mb: a quarter of the plan ops' weights as stored (so that the cache adds
// at most 0.25x the model to the resident set), within [MXP_CALIB_MIN_CACHE_MB,
// MXP_CALIB_MAX_CACHE_MB] MiB.
static size_t default_cache_bytes(const mxp_sens *s, const mxp_graph *g) {
    size_t bytes = 0;
    for (int i = 0; i < s->n_ops; i++) {
        const mxp_param *w = &g->params[g->nodes[s->ops[i].node].w];
        bytes += mxp_param_stored_bytes(w);
    }
    size_t lo = (size_t)MXP_CALIB_MIN_CACHE_MB << 20, hi = (size_t)MXP_CALIB_MAX_CACHE_MB << 20;
    bytes /= 4;
    return bytes < lo ? lo : bytes > hi ? hi : bytes;
}

mxp_status mxp_calibrate(mxp_model *m, const mxp_calib_opts *o, mxp_calib_result *r, mxp_err *err) {
    memset(r, 0, sizeof *r);
    const mxp_dist *dist = o->dist;
    const int root = !dist || dist->rank == 0;  // the rank that reads and writes files
    if (!o->data_path) return mxp_fail(err, MXP_ERR_ARG, "calibrate needs --data");
    if (!o->out_path) return mxp_fail(err, MXP_ERR_ARG, "calibrate needs -o FILE");
    if (o->stop_after < 0) return mxp_fail(err, MXP_ERR_ARG, "--stop-after must not be negative");
    if (o->stream < MXP_STREAM_AUTO || o->stream > MXP_STREAM_OFF)
        return mxp_fail(err, MXP_ERR_ARG, "--stream: unknown mode %d", (int)o->stream);
    if (o->max_memory && o->stream != MXP_STREAM_AUTO)
        return mxp_fail(err, MXP_ERR_ARG, "--max-memory chooses the mode: it does not go with --stream on or off");
    if (root && mxp_check_writable(o->out_path, err)) return err ? err->code : MXP_ERR_IO;
    mxp_format_id fmts[MXP_FMT_COUNT];
    int n_fmts = 0;
    mxp_status st = parse_formats(o->formats ? o->formats : MXP_DEFAULT_FORMATS, fmts, &n_fmts, err);
    if (st) return st;
    mxp_metric primary = MXP_METRIC_TAYLOR;
    if (o->metric && (st = mxp_metric_parse(o->metric, &primary, err))) return mxp_fail_prefix(err, "--metric: ");
    int want_fisher = o->fisher || o->check > 0 || primary == MXP_METRIC_FISHER;
    mxp_graph *g = &m->graph;
    int T = o->seq_len ? o->seq_len : 256;
    if (!o->seq_len && g->max_pos > 0 && T > g->max_pos) T = g->max_pos;
    int B = o->batch ? o->batch : MXP_CALIB_DEFAULT_BATCH;

    // every rank draws the same samples (same data, same seed) and runs its share of them
    mxp_tokens toks = {0};
    int32_t *seq = NULL;
    size_t got = 0, N = 0;
    int reduced = 0;
    st = mxp_model_load_data(m, &toks, o->data_path, err);
    if (!st)
        st = mxp_data_sample_count(&toks, MXP_SPLIT_CALIB, T, (size_t)o->samples, MXP_CALIB_DEFAULT_SAMPLES,
                                   "--samples", o->data_path, &N, &reduced, err);
    if (!st && reduced)
        fprintf(stderr,
                "warning: %s: the calibration split holds only %zu windows of %d+1 tokens: calibrating on %zu "
                "samples, not the default %d (--samples N chooses)\n",
                o->data_path, N, T, N, MXP_CALIB_DEFAULT_SAMPLES);
    if (!st) st = mxp_data_samples(&toks, MXP_SPLIT_CALIB, T, N, o->seed, o->data_path, &seq, &got, err);
    if (st) {
        mxp_tokens_free(&toks);
        return st;
    }
    mxp_sens s;
    mxp_qcache qc = {0};
    st = mxp_sens_init(&s, g, fmts, n_fmts, T, err);
    if (st) {
        free(seq);
        mxp_tokens_free(&toks);
        return st;
    }
    char partial[4200];
    partial_path(o, partial, sizeof partial);
    if (root && o->resume && access(partial, F_OK) != 0)
        st = mxp_fail(err, MXP_ERR_ARG, "--resume: no partial table %s to continue", partial);
    if (!st && root && o->resume) {
        cJSON *j = NULL;
        st = mxp_read_json(partial, &j, err);
        if (!st) st = mxp_sens_restore(&s, j, partial, err);
        cJSON_Delete(j);
        if (!st && s.samples > got)
            st = mxp_fail(err, MXP_ERR_ARG, "%s holds %zu samples, more than the %zu requested", partial, s.samples, got);
        if (!st && o->progress) fprintf(stderr, "calibrate: resuming after %zu samples\n", s.samples);
    }
    // the samples already in the table: rank 0 read them (a failure there ends the job before
    // the other ranks get an answer)
    uint64_t start = s.samples;
    if (!st && o->resume) mxp_dist_bcast_u64(dist, &start);
    if (!st) st = mxp_qcache_init(&qc, g, err);
    save_ctx sc = {.o = o, .primary = primary};
    cJSON *prov = NULL;
    if (!st && root && !(prov = mxp_provenance_json(m->path, o->data_path, err))) st = err ? err->code : MXP_ERR_NOMEM;
    // an MPI job says so (the table is the same; "machine" is rank 0's, with its threads)
    if (!st && prov && dist && dist->size > 1 && !cJSON_AddNumberToObject(prov, "processes", dist->size))
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
    sc.prov = prov;
    // checkpoint the accumulators every ~10% of the work
    size_t every = got / 10 > (size_t)B ? got / 10 : (size_t)B;
    double t0 = mxp_now();
    if (!st && o->stop_after && start >= (uint64_t)o->stop_after && start < got)
        st = mxp_fail(err, MXP_ERR_INTERRUPTED, "stopped after %zu samples (--stop-after)", (size_t)start);
    int stream = 0;
    if (!st && start < got)
        st = choose_stream(o, &s, g, (size_t)B < got ? B : (int)got, want_fisher, root && o->progress, &stream, err);
    if (!st && start < got) {
        size_t cache = o->cache_mb > 0 ? (size_t)o->cache_mb << 20 : o->cache_mb < 0 ? 0 : default_cache_bytes(&s, g);
        mxp_sens_run run = {.batch = B, .want_fisher = want_fisher, .cache_bytes = cache, .progress = root && o->progress, .stop = o->stop,
                            .stop_after = o->stop_after ? (size_t)o->stop_after - (size_t)start : 0,
                            .every = every, .checkpoint = checkpoint, .ctx = &sc, .dist = dist, .stream = stream};
        st = mxp_sens_accumulate(&s, m, &qc, seq + (size_t)start * (size_t)(T + 1), got - (size_t)start, &run, err);
    }
    if (st == MXP_ERR_INTERRUPTED) {
        // every rank stopped at the same round; the other ranks wait until the partial table is saved
        if (root && s.samples > 0) {
            mxp_err e2 = {0};
            if (save(&s, &sc, 0, &e2) == MXP_OK)
                mxp_fail(err, MXP_ERR_INTERRUPTED,
                         "interrupted after %zu of %zu samples; the partial table is in %s (continue with --resume)",
                         s.samples, got, partial);
        }
        mxp_dist_barrier(dist);
    }
    r->seconds = mxp_now() - t0;
    if (!st && root) st = save(&s, &sc, 1, err);
    cJSON_Delete(prov);
    r->samples = root ? s.samples : got;
    r->reference_loss = s.samples ? s.loss_sum / (double)s.samples : 0;
    // the check runs on rank 0 alone (the other ranks are done)
    if (!st && root && o->check > 0) {
        int32_t *held = NULL;
        size_t nh = 0;
        size_t want_h = 0;
        st = mxp_data_sample_count(&toks, MXP_SPLIT_EVAL, T, (size_t)o->check_samples, MXP_CHECK_DEFAULT_SAMPLES,
                                   "--check-samples", o->data_path, &want_h, &reduced, err);
        if (!st && reduced)
            fprintf(stderr,
                    "warning: %s: the evaluation split holds only %zu windows of %d+1 tokens: checking on %zu "
                    "samples, not the default %d (--check-samples N chooses)\n",
                    o->data_path, want_h, T, want_h, MXP_CHECK_DEFAULT_SAMPLES);
        if (!st) st = mxp_data_samples(&toks, MXP_SPLIT_EVAL, T, want_h, o->seed + 1, o->data_path, &held, &nh, err);
        if (!st) st = mxp_check_predictions(&s, m, &qc, held, nh, o->check, o->seed, o->check_csv,
                                            o->report ? o->report : stdout, o->progress, o->stop, r, err);
        free(held);
    }
    mxp_qcache_free(&qc);
    mxp_sens_free(&s);
    free(seq);
    mxp_tokens_free(&toks);
    return st;
}

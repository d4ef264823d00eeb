// test_stream.c: streaming passes (runtime/exec.h: segments between the graph's cut nodes, one
// arena shared by the segments, each segment's forward run again before its backward) give
// exactly the whole-graph pass (both through mxp_exec_pass): the same loss, every hook event
// the same x, dy and dx, bit for bit, in the same order, and the same weight gradients in each
// of the executor's modes (formed in the scratch buffer and shown to the hook:
// MXP_EXEC_WGRAD_SCRATCH; a gradient per parameter: MXP_EXEC_PARAM_GRADS) and linear outputs
// (MXP_EXEC_LINEAR_OUT), though the forward run again before a segment's backward leaves out
// the ops whose values no backward reads (unless the hook asks for the outputs); the pass's
// per-segment callback comes in segment order and its error ends the pass; and the
// sensitivity pass (mxp_sens_accumulate with run.stream) the same sums, byte for byte, with
// weights released from the resident set as it goes.
//
// Models: models/tiny (Llama, tied head), models/default (Llama, untied), a synthetic GPT-2
// (learned positions, LayerNorm, fused c_attn slices, biases, tied head), a synthetic Qwen2
// (q/k/v biases, GQA) and a synthetic Mistral (sliding window of 5); B = 2 sequences. Also:
// the streaming executor's value buffers are the kept cut nodes' plus one arena, and its
// estimate (mxp_exec_bytes) is below the whole graph's and equals what it allocates for the
// values and statistics.
#include <math.h>
#include <string.h>

#include "arch/model.h"
#include "check.h"
#include "core/rng.h"
#include "method/partition.h"
#include "method/sensitivity.h"
#include "runtime/exec.h"
#include "synthetic_archs.h"

// Every hook event as a running FNV-1a hash of its node, phase and the bytes it shows (the
// weight gradient too when the executor forms it in its scratch buffer); the segments
// mxp_exec_pass reported done, checked against the executor's segments as they come.
typedef struct trace {
    const mxp_graph *g;
    const mxp_exec *ex;
    int N;
    uint64_t h;
    int events, dw_events, y_events;
    int calls, next, order_ok;  // done calls; the segment (forward, then backward) the next must be
    int fail_at;                // done fails at this call (1-based), 0: never
} trace;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void trace_hook(void *ctx, const mxp_linear_event *e) {
    trace *t = ctx;
    const mxp_node *n = &t->g->nodes[e->node];
    t->h = fnv(t->h, &e->node, sizeof e->node);
    t->h = fnv(t->h, &e->phase, sizeof e->phase);
    size_t out = (size_t)t->N * (size_t)n->cols * sizeof(float);
    t->h = fnv(t->h, e->dy, out);
    if (e->phase != MXP_HOOK_EMBED) {
        size_t in = (size_t)t->N * (size_t)t->g->nodes[n->in[0]].cols * sizeof(float);
        t->h = fnv(t->h, e->x, in);
        t->h = fnv(t->h, e->dx, in);
    }
    if (e->dw) {
        t->h = fnv(t->h, e->dw, t->g->params[n->w].nelem * sizeof(float));
        t->dw_events++;
    }
    if (e->y) {
        t->h = fnv(t->h, e->y, out);
        t->y_events++;
    }
    t->events++;
}

// Whole graph: one call (0, n_nodes, backward). Streaming: segments 0 .. K-2 forward, then
// K-1 .. 0 backward.
static mxp_status trace_done(void *ctx, int first, int last, int backward, mxp_err *err) {
    trace *t = ctx;
    const mxp_exec *ex = t->ex;
    const int K = ex->n_seg;
    t->calls++;
    if (!K) {
        t->order_ok &= first == 0 && last == t->g->n_nodes && backward && t->calls == 1;
    } else {
        // calls 1 .. K-1: forward of segment call-1; calls K .. 2K-1: backward of segment 2K-1-call
        int k = t->calls <= K - 1 ? t->calls - 1 : 2 * K - 1 - t->calls;
        int want_bwd = t->calls > K - 1;
        t->order_ok &= k >= 0 && first == ex->seg[k] && last == ex->seg[k + 1] && backward == want_bwd;
    }
    if (t->calls == t->fail_at) return mxp_fail(err, MXP_ERR_ARG, "stop requested at call %d", t->calls);
    return MXP_OK;
}

// One forward + backward of seq's first batch (B sequences of T+1 tokens) with the trace hook,
// whole or streaming, through mxp_exec_pass with executor flags `flags`: each sequence's loss
// to loss (B), the events to *t, a hash of every parameter gradient (MXP_EXEC_PARAM_GRADS) to
// *pg. Checks the order of the done calls, and that a failing done call ends the pass with its
// status.
static void pass(const mxp_graph *g, int stream, unsigned flags, int B, int T, const int32_t *seq, double *loss,
                 trace *t, uint64_t *pg, const char *label) {
    mxp_err err = {0};
    mxp_exec ex;
    int *cuts = NULL, nc = 0;
    if (stream) CHECK(mxp_graph_cut_nodes(g, &cuts, &nc, &err) == MXP_OK, "%s", err.msg);
    mxp_status st = stream ? mxp_exec_init_stream(&ex, g, B, T, flags, cuts, nc, &err)
                           : mxp_exec_init(&ex, g, B, T, flags, &err);
    CHECK(st == MXP_OK, "%s: %s", label, err.msg);
    if (st) {
        free(cuts);
        return;
    }
    CHECK(mxp_exec_set_batch(&ex, seq, &err) == MXP_OK, "%s", err.msg);
    *t = (trace){.g = g, .ex = &ex, .N = B * T, .h = 14695981039346656037ull, .order_ok = 1};
    const int n = g->n_nodes;
    if (stream) {
        CHECK(ex.n_seg == nc && ex.n_seg > 2, "%s: %d segments", label, ex.n_seg);
        // every value but the kept cuts' lies in the arena
        size_t own = 0;
        for (int i = 0; i < n; i++) {
            int k = ex.seg_of[i], kept = k < ex.n_seg - 1 && i == ex.seg[k + 1] - 1;
            int in_arena = ex.val[i] >= ex.arena && ex.val[i] < ex.arena + ex.arena_floats;
            CHECK(kept != in_arena, "%s: node %d kept %d in arena %d", label, i, kept, in_arena);
            if (kept) own += (size_t)B * T * (size_t)g->nodes[i].cols;
        }
        size_t whole = mxp_exec_bytes(g, B, T, flags, NULL, 0);
        size_t part = mxp_exec_bytes(g, B, T, flags, cuts, nc);
        CHECK(part < whole, "%s: streaming estimate %zu not below %zu", label, part, whole);
        CHECK(own + ex.arena_floats <= part / sizeof(float), "%s: values %zu floats beyond the estimate %zu", label,
              own + ex.arena_floats, part / sizeof(float));
        // the forward run again before a segment's backward leaves out what no backward reads:
        // the cut ending each segment, and (unless the hook reads linear outputs) the output
        // projections the residual adds alone read
        int skipped_linear = 0, cut_run = 0;
        for (int k = 0; k < ex.n_seg - 1; k++) cut_run |= ex.refwd[ex.seg[k + 1] - 1];
        for (int i = 0; i < n; i++) skipped_linear += g->nodes[i].op == MXP_OP_LINEAR && !ex.refwd[i];
        CHECK(!cut_run, "%s: a kept cut is run again", label);
        CHECK((skipped_linear > 0) == !(flags & MXP_EXEC_LINEAR_OUT), "%s: %d linear ops not run again", label,
              skipped_linear);
    }
    double mean = -1;
    CHECK(mxp_exec_pass(&ex, 1.0f / (float)T, loss, &mean, trace_hook, trace_done, t, &err) == MXP_OK, "%s: %s",
          label, err.msg);
    double sum = 0;
    for (int b = 0; b < B; b++) sum += loss[b];
    CHECK(fabs(mean - sum / B) <= 1e-12 * fabs(mean), "%s: mean loss %.17g vs %.17g", label, mean, sum / B);
    CHECK(t->order_ok && t->calls == (stream ? 2 * ex.n_seg - 1 : 1), "%s: %d done calls (order %s)", label,
          t->calls, t->order_ok ? "right" : "WRONG");
    *pg = 14695981039346656037ull;
    for (int p = 0; ex.pgrad && p < g->n_params; p++)
        *pg = fnv(*pg, ex.pgrad[p], g->params[p].nelem * sizeof(float));
    // a done call that fails ends the pass with its status (the first backward one streaming)
    trace stop = {.g = g, .ex = &ex, .N = B * T, .order_ok = 1, .fail_at = stream ? ex.n_seg : 1};
    CHECK(mxp_exec_pass(&ex, 1.0f / (float)T, NULL, NULL, NULL, trace_done, &stop, &err) == MXP_ERR_ARG &&
              stop.calls == stop.fail_at && strstr(err.msg, "stop requested"),
          "%s: a failing done call did not end the pass (%d calls)", label, stop.calls);
    mxp_exec_free(&ex);
    free(cuts);
}

// The sensitivity sums of n samples, whole or streaming, into s (initialised here).
static void sens(mxp_model *m, int stream, int B, int T, const int32_t *seq, int n, mxp_sens *s) {
    mxp_err err = {0};
    const mxp_format_id fmts[] = {MXP_FMT_F32, MXP_FMT_BF16, MXP_FMT_Q8_0, MXP_FMT_Q4_0};
    CHECK(mxp_sens_init(s, &m->graph, fmts, 4, T, &err) == MXP_OK, "%s", err.msg);
    mxp_qcache qc;
    CHECK(mxp_qcache_init(&qc, &m->graph, &err) == MXP_OK, "%s", err.msg);
    mxp_sens_run run = {.batch = B, .want_fisher = 1, .cache_bytes = (size_t)1 << 20, .stream = stream};
    CHECK(mxp_sens_accumulate(s, m, &qc, seq, (size_t)n, &run, &err) == MXP_OK, "%s", err.msg);
    mxp_qcache_free(&qc);
}

static void check_model(const char *label, mxp_model *m, int T) {
    const mxp_graph *g = &m->graph;
    enum { B = 2, NS = 3 };
    int32_t *seq = malloc((size_t)NS * (T + 1) * sizeof *seq);
    mxp_rng rng;
    mxp_rng_seed(&rng, 42);
    for (int i = 0; i < NS * (T + 1); i++) seq[i] = (int32_t)(mxp_rng_uniform(&rng) * g->vocab) % g->vocab;
    double la[B], lb[B];
    trace ta, tb;
    uint64_t pa, pb;
    // the executor's modes: gradients for a hook only (calibration), the weight gradients in the
    // scratch buffer (shown to the hook), a gradient per parameter
    const unsigned modes[] = {MXP_EXEC_BACKWARD, MXP_EXEC_WGRAD_SCRATCH, MXP_EXEC_PARAM_GRADS,
                              MXP_EXEC_BACKWARD | MXP_EXEC_LINEAR_OUT};
    const char *mode_names[] = {"backward", "wgrad scratch", "param grads", "linear outputs"};
    int same_pass = 1;
    for (int k = 0; k < 4; k++) {
        pass(g, 0, modes[k], B, T, seq, la, &ta, &pa, label);
        pass(g, 1, modes[k], B, T, seq, lb, &tb, &pb, label);
        CHECK(!memcmp(la, lb, sizeof la), "%s, %s: losses %.9g %.9g vs %.9g %.9g", label, mode_names[k], la[0], la[1],
              lb[0], lb[1]);
        CHECK(ta.events == tb.events && ta.events > 0, "%s, %s: %d vs %d hook events", label, mode_names[k], ta.events,
              tb.events);
        CHECK(ta.h == tb.h, "%s, %s: the hook saw different values streaming", label, mode_names[k]);
        CHECK(ta.dw_events == tb.dw_events && (ta.dw_events > 0) == (modes[k] == MXP_EXEC_WGRAD_SCRATCH),
              "%s, %s: %d vs %d weight gradients shown", label, mode_names[k], ta.dw_events, tb.dw_events);
        CHECK(ta.y_events == tb.y_events && (ta.y_events > 0) == !!(modes[k] & MXP_EXEC_LINEAR_OUT),
              "%s, %s: %d vs %d linear outputs shown", label, mode_names[k], ta.y_events, tb.y_events);
        CHECK(pa == pb, "%s, %s: the parameter gradients differ streaming", label, mode_names[k]);
        same_pass &= !memcmp(la, lb, sizeof la) && ta.h == tb.h && pa == pb;
    }
    // 3 samples in batches of 2: a full batch, then a short one (the executor made again)
    mxp_sens a, b;
    sens(m, 0, B, T, seq, NS, &a);
    sens(m, 1, B, T, seq, NS, &b);
    int same = a.n_ops == b.n_ops && a.samples == b.samples && a.loss_sum == b.loss_sum && a.has_fisher == b.has_fisher;
    for (int i = 0; same && i < a.n_ops; i++) {
        const mxp_sens_op *x = &a.ops[i], *y = &b.ops[i];
        same = !memcmp(x->sum, y->sum, sizeof x->sum) && !memcmp(x->sum_d4, y->sum_d4, sizeof x->sum_d4) &&
               !memcmp(x->sum_w, y->sum_w, sizeof x->sum_w) && !memcmp(x->sum_a, y->sum_a, sizeof x->sum_a);
        CHECK(same, "%s: op %s differs streaming", label, x->name);
    }
    CHECK(same && a.samples == NS, "%s: sensitivity tables differ (samples %zu, %zu)", label, a.samples, b.samples);
    // the estimate the auto mode compares
    size_t whole, part;
    mxp_err err = {0};
    CHECK(mxp_sens_memory(&a, g, B, 1, &whole, &part, &err) == MXP_OK, "%s", err.msg);
    CHECK(part < whole, "%s: streaming %zu bytes, whole %zu", label, part, whole);
    printf("%-24s %3d hook events, %s; estimate %.2f MB whole, %.2f MB streaming\n", label, ta.events,
           same && same_pass ? "the same streaming" : "DIFFERENT streaming", whole / 1e6, part / 1e6);
    mxp_sens_free(&a);
    mxp_sens_free(&b);
    free(seq);
}

int main(void) {
    mxp_err err = {0};
    const char *dirs[] = {"models/tiny", "models/default"};
    for (int i = 0; i < 2; i++) {
        mxp_model *m;
        CHECK(mxp_model_load(dirs[i], &m, &err) == MXP_OK, "%s", err.msg);
        if (m) check_model(dirs[i], m, 48);
        mxp_model_free(m);
    }
    mxp_model_config syn[N_SYNTHETIC_ARCHS];
    synthetic_archs(128, 3, syn);
    for (int i = 0; i < N_SYNTHETIC_ARCHS; i++) {
        mxp_model *m;
        CHECK(mxp_model_synthetic(&syn[i], 21 + (uint64_t)i, &m, &err) == MXP_OK, "%s", err.msg);
        if (m) check_model(synthetic_arch_label[i], m, 40);
        mxp_model_free(m);
    }
    CHECK_DONE();
}

// test_solve.c: the integer program (solve.c) against brute force on hundreds of small random
// instances (each objective's kind of gains; loss budget, bytes budget, the dual), dominance
// pruning never losing the optimum, monotonicity in tau, a large instance (64 groups x 125
// configurations: time printed, optimality asserted), and the problem/plan layer (solve_io.c)
// on hand-written sensitivity and latency tables: ties, --force/--forbid, infeasible budgets,
// the Pareto sweep, the plan file and the llama.cpp tensor-type file.
#include <ggml.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/rng.h"
#include "io/jsonout.h"
#include "method/solve.h"

// ---- brute force ----

typedef struct bf_result {
    int feasible;
    double obj;
} bf_result;

static bf_result brute_force(const mxp_mckp *p, const mxp_mckp_opts *o, const unsigned char *keep) {
    int G = p->n_groups, idx[16];
    bf_result best = {0, 0};
    for (int g = 0; g < G; g++) idx[g] = p->start[g];
    for (;;) {
        double gain = 0, loss = 0, bytes = 0;
        int ok = 1;
        for (int g = 0; g < G; g++) {
            int j = idx[g];
            if (keep && !keep[j]) ok = 0;
            gain += p->gain[j];
            loss += p->loss[j];
            bytes += p->bytes ? p->bytes[j] : 0;
        }
        if (ok && o->has_max_loss && loss > o->max_loss) ok = 0;
        if (ok && o->has_min_gain && gain < o->min_gain) ok = 0;
        if (ok && o->has_max_bytes && bytes > o->max_bytes) ok = 0;
        if (ok) {
            double obj = o->sense == MXP_SOLVE_MAX_GAIN ? gain : loss;
            if (!best.feasible || (o->sense == MXP_SOLVE_MAX_GAIN ? obj > best.obj : obj < best.obj)) best.obj = obj;
            best.feasible = 1;
        }
        int g = 0;
        while (g < G && ++idx[g] == p->start[g + 1]) {
            idx[g] = p->start[g];
            g++;
        }
        if (g == G) break;
    }
    return best;
}

typedef struct inst {
    int G, start[17];
    double gain[256], loss[256], bytes[256];
} inst;

// kind 0: time-like gains (may be negative), 1: memory-like (gain = f32 bytes - bytes),
// 2: MAC-like (positive). Exact duplicates and zero losses on purpose.
static void random_instance(inst *in, mxp_rng *r, int kind) {
    in->G = 1 + (int)(mxp_rng_uniform(r) * 5);
    int n = 0;
    in->start[0] = 0;
    for (int g = 0; g < in->G; g++) {
        int c = 1 + (int)(mxp_rng_uniform(r) * 6);
        double ref = 1000 + floor(mxp_rng_uniform(r) * 9000);
        for (int j = 0; j < c; j++, n++) {
            if (j > 0 && mxp_rng_uniform(r) < 0.15) {  // an exact copy of the previous one
                in->gain[n] = in->gain[n - 1];
                in->loss[n] = in->loss[n - 1];
                in->bytes[n] = in->bytes[n - 1];
                continue;
            }
            in->bytes[n] = floor(ref * (0.1 + 0.9 * mxp_rng_uniform(r)));
            in->loss[n] = mxp_rng_uniform(r) < 0.2 ? 0 : 1e-4 * mxp_rng_uniform(r);
            if (kind == 0) in->gain[n] = 1e-3 * (mxp_rng_uniform(r) * 4 - 1);
            if (kind == 1) in->gain[n] = ref - in->bytes[n];
            if (kind == 2) in->gain[n] = 1e6 * mxp_rng_uniform(r);
        }
        in->start[g + 1] = n;
    }
}

static double plan_sum(const inst *in, const double *v, mxp_rng *r) {
    double s = 0;
    for (int g = 0; g < in->G; g++) {
        int c = in->start[g + 1] - in->start[g];
        s += v[in->start[g] + (int)(mxp_rng_uniform(r) * c) % c];
    }
    return s;
}

static void test_random(void) {
    mxp_rng r;
    mxp_rng_seed(&r, 12345);
    int n_inst = 0, n_infeasible = 0, n_pruned_away = 0;
    for (int it = 0; it < 600; it++) {
        inst in;
        int kind = it % 3, mode = (it / 3) % 4;
        random_instance(&in, &r, kind);
        mxp_mckp p = {in.G, in.start, in.gain, in.loss, in.bytes};
        mxp_mckp_opts o = {0};
        // budgets: often exactly a plan's total (ties with the budget), sometimes infeasible
        double tau = mxp_rng_uniform(&r) < 0.3 ? plan_sum(&in, in.loss, &r) : 3e-4 * mxp_rng_uniform(&r);
        double bud = mxp_rng_uniform(&r) < 0.3 ? plan_sum(&in, in.bytes, &r) : 9000.0 * in.G * mxp_rng_uniform(&r);
        double mg = mxp_rng_uniform(&r) < 0.3 ? plan_sum(&in, in.gain, &r) : 0.5 * plan_sum(&in, in.gain, &r);
        if (mode == 0 || mode == 1) {
            o.sense = MXP_SOLVE_MAX_GAIN;
            o.has_max_loss = 1, o.max_loss = tau;
            if (mode == 1) o.has_max_bytes = 1, o.max_bytes = bud;
        } else if (mode == 2) {
            o.sense = MXP_SOLVE_MIN_LOSS;
            o.has_min_gain = 1, o.min_gain = mg;
        } else {
            o.sense = MXP_SOLVE_MIN_LOSS;
            o.has_max_bytes = 1, o.max_bytes = bud;
        }
        bf_result bf = brute_force(&p, &o, NULL);
        // pruning keeps the optimum: brute force over the kept configurations agrees
        unsigned char keep[256];
        int kept = mxp_mckp_prune(&p, o.has_max_bytes, keep);
        n_pruned_away += in.start[in.G] - kept;
        bf_result bfk = brute_force(&p, &o, keep);
        CHECK(bf.feasible == bfk.feasible && (!bf.feasible || bf.obj == bfk.obj),
              "instance %d: pruning changed the optimum %g -> %g", it, bf.obj, bfk.obj);
        for (int np = 0; np < 2; np++) {
            o.no_prune = np;
            mxp_mckp_result res;
            mxp_err err = {0};
            CHECK(mxp_mckp_solve(&p, &o, &res, &err) == MXP_OK, "%s", err.msg);
            CHECK((res.status != MXP_SOLVE_INFEASIBLE) == bf.feasible, "instance %d (kind %d mode %d): status %s, brute force %s",
                  it, kind, mode, mxp_solve_status_name(res.status), bf.feasible ? "feasible" : "infeasible");
            if (bf.feasible && res.choice) {
                double obj = o.sense == MXP_SOLVE_MAX_GAIN ? res.gain : res.loss;
                double scale = 0;
                for (int j = 0; j < in.start[in.G]; j++)
                    scale += fabs(o.sense == MXP_SOLVE_MAX_GAIN ? in.gain[j] : in.loss[j]);
                CHECK(res.status == MXP_SOLVE_OPTIMAL && res.gap == 0, "instance %d: status %s gap %g", it,
                      mxp_solve_status_name(res.status), res.gap);
                CHECK(fabs(obj - bf.obj) <= 1e-9 * scale, "instance %d (kind %d mode %d, prune %d): objective %.17g, brute force %.17g",
                      it, kind, mode, !np, obj, bf.obj);
                // the choice itself: one per group, totals as reported, budgets met
                double gs = 0, ls = 0, bs = 0;
                for (int g = 0; g < in.G; g++) {
                    int j = res.choice[g];
                    CHECK(j >= in.start[g] && j < in.start[g + 1], "choice out of group");
                    if (j < in.start[g] || j >= in.start[g + 1]) continue;
                    gs += in.gain[j], ls += in.loss[j], bs += in.bytes[j];
                }
                CHECK(gs == res.gain && ls == res.loss && bs == res.bytes, "instance %d: totals", it);
                CHECK(!o.has_max_loss || ls <= o.max_loss * (1 + 1e-7), "instance %d: loss %g > tau %g", it, ls, o.max_loss);
                CHECK(!o.has_max_bytes || bs <= o.max_bytes * (1 + 1e-7), "instance %d: bytes %g > %g", it, bs, o.max_bytes);
                CHECK(!o.has_min_gain || gs >= o.min_gain - 1e-7 * fabs(o.min_gain), "instance %d: gain", it);
            }
            mxp_mckp_result_free(&res);
        }
        n_inst++;
        n_infeasible += !bf.feasible;
    }
    fprintf(stderr, "random: %d instances vs brute force (%d infeasible), pruning dropped %d configurations\n", n_inst,
            n_infeasible, n_pruned_away);
    CHECK(n_infeasible > 10 && n_infeasible < n_inst / 2, "the instances should mix feasible and infeasible (%d)", n_infeasible);
    CHECK(n_pruned_away > 100, "pruning should bite (%d)", n_pruned_away);
}

static void test_prune_ties(void) {
    // three identical configurations and one dominated: exactly one of the identical kept
    int start[2] = {0, 5};
    double gain[5] = {1, 1, 1, 0.5, 2}, loss[5] = {1, 1, 1, 1, 3}, bytes[5] = {10, 10, 10, 5, 10};
    mxp_mckp p = {1, start, gain, loss, bytes};
    unsigned char keep[5];
    CHECK(mxp_mckp_prune(&p, 0, keep) == 2 && keep[0] && !keep[1] && !keep[2] && !keep[3] && keep[4], "prune without bytes");
    // with bytes in the problem, the cheaper config 3 survives
    CHECK(mxp_mckp_prune(&p, 1, keep) == 3 && keep[0] && keep[3] && keep[4], "prune with bytes");
}

static void test_monotone(void) {
    mxp_rng r;
    mxp_rng_seed(&r, 777);
    for (int it = 0; it < 20; it++) {
        inst in;
        random_instance(&in, &r, it % 3);
        mxp_mckp p = {in.G, in.start, in.gain, in.loss, in.bytes};
        double prev = -INFINITY;
        for (int k = 0; k <= 20; k++) {
            mxp_mckp_opts o = {.sense = MXP_SOLVE_MAX_GAIN, .has_max_loss = 1, .max_loss = 5e-4 * k / 20.0};
            mxp_mckp_result res;
            CHECK(mxp_mckp_solve(&p, &o, &res, NULL) == MXP_OK, "solve");
            if (res.choice) {
                CHECK(res.gain >= prev, "gain not monotone in tau: %g after %g", res.gain, prev);
                prev = res.gain;
            } else {
                CHECK(prev == -INFINITY, "infeasible at a larger tau after a feasible smaller one");
            }
            mxp_mckp_result_free(&res);
        }
    }
}

// 64 sub-graphs of 3 ops x 5 formats = 125 configurations; losses additive over ops,
// gains additive plus interaction noise (what measurements look like).
static void test_large(void) {
    enum { G = 64, C = 125 };
    static int start[G + 1];
    static double gain[G * C], loss[G * C], bytes[G * C];
    mxp_rng r;
    mxp_rng_seed(&r, 4242);
    const double fbytes[5] = {4, 2, 2, 34.0 / 32, 18.0 / 32}, fgain[5] = {0, 0.5, 0.45, 0.75, 0.8};
    for (int g = 0; g < G; g++) {
        start[g] = g * C;
        double s[3][5], w[3];
        for (int o = 0; o < 3; o++) {
            w[o] = 1e5 * (1 + 3 * mxp_rng_uniform(&r));
            s[o][0] = 0;
            for (int f = 1; f < 5; f++) s[o][f] = 1e-7 * pow(10, f * 0.7) * (0.5 + mxp_rng_uniform(&r));
        }
        for (int j = 0; j < C; j++) {
            int f[3] = {j % 5, (j / 5) % 5, j / 25};
            double ga = 0, lo = 0, by = 0;
            for (int o = 0; o < 3; o++) {
                ga += 1e-9 * w[o] * fgain[f[o]];
                lo += s[o][f[o]];
                by += w[o] * fbytes[f[o]];
            }
            gain[g * C + j] = ga * (1 + 0.1 * (mxp_rng_uniform(&r) - 0.5));
            loss[g * C + j] = lo;
            bytes[g * C + j] = by;
        }
    }
    start[G] = G * C;
    mxp_mckp p = {G, start, gain, loss, bytes};
    double total_max = 0;
    for (int g = 0; g < G; g++) {
        double m = 0;
        for (int j = 0; j < C; j++) m = fmax(m, loss[g * C + j]);
        total_max += m;
    }
    for (int with_bytes = 0; with_bytes < 2; with_bytes++) {
        mxp_mckp_opts o = {.sense = MXP_SOLVE_MAX_GAIN, .has_max_loss = 1, .max_loss = 0.02 * total_max};
        if (with_bytes) o.has_max_bytes = 1, o.max_bytes = 0;
        if (with_bytes)
            for (int g = 0; g < G; g++) o.max_bytes += 0.5 * bytes[g * C];  // half of f32
        mxp_mckp_result a, b;
        mxp_err err = {0};
        CHECK(mxp_mckp_solve(&p, &o, &a, &err) == MXP_OK, "%s", err.msg);
        fprintf(stderr, "large instance %dx%d%s: %s, gap %g, %d of %d configurations kept by pruning, %.3f s\n", G, C,
                with_bytes ? " + bytes budget" : "", mxp_solve_status_name(a.status), a.gap, a.n_kept, a.n_cfg, a.seconds);
        CHECK(a.status == MXP_SOLVE_OPTIMAL && a.gap == 0, "large: %s gap %g", mxp_solve_status_name(a.status), a.gap);
        CHECK(a.choice && a.loss <= o.max_loss * (1 + 1e-7), "large: loss budget");
        // an independent formulation (no pruning: 8000 columns) must reach the same optimum
        o.no_prune = 1;
        CHECK(mxp_mckp_solve(&p, &o, &b, &err) == MXP_OK, "%s", err.msg);
        fprintf(stderr, "  same without pruning: %s, %.3f s\n", mxp_solve_status_name(b.status), b.seconds);
        CHECK(b.status == MXP_SOLVE_OPTIMAL && fabs(a.gain - b.gain) <= 1e-9 * fabs(a.gain), "large: pruned %.17g vs unpruned %.17g",
              a.gain, b.gain);
        mxp_mckp_result_free(&a);
        mxp_mckp_result_free(&b);
    }
}

static void test_bad_input(void) {
    int start[2] = {0, 2};
    double gain[2] = {1, NAN}, loss[2] = {0, 1}, bytes[2] = {1, 1};
    mxp_mckp p = {1, start, gain, loss, bytes};
    mxp_mckp_opts o = {.sense = MXP_SOLVE_MAX_GAIN, .has_max_loss = 1, .max_loss = 1};
    mxp_mckp_result r;
    mxp_err err = {0};
    CHECK(mxp_mckp_solve(&p, &o, &r, &err) == MXP_ERR_ARG && strstr(err.msg, "non-finite"), "NaN gain: %s", err.msg);
    gain[1] = 1, loss[1] = -1;
    CHECK(mxp_mckp_solve(&p, &o, &r, &err) == MXP_ERR_ARG, "negative loss");
}

// ---- the problem layer on hand-written tables ----

static const char *const FMTS[] = {"f32", "bf16", "f16", "q8_0", "q4_0"};

// One Llama block (q, k, v, o | gate, up, down) + lm_head. down_proj has width 48 (q8_0/q4_0
// impossible: absent from its maps). Latency: attention sub-graph with q,k,v tied (all
// 5^2 x 5 combos listed, so ties must drop some), MLP sub-graph; lm_head not profiled.
static cJSON *make_sens(void) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "mixprec-sensitivity");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON *prov = cJSON_AddObjectToObject(j, "provenance");
    cJSON_AddStringToObject(prov, "model", "models/fake");
    cJSON_AddStringToObject(prov, "model_hash", "fnv1a64:0123456789abcdef");
    cJSON *ops = cJSON_AddArrayToObject(j, "ops");
    static const char *const names[] = {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                                        "model.layers.0.self_attn.v_proj", "model.layers.0.self_attn.o_proj",
                                        "model.layers.0.mlp.gate_proj",    "model.layers.0.mlp.up_proj",
                                        "model.layers.0.mlp.down_proj",    "lm_head"};
    for (int i = 0; i < 8; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", names[i]);
        int in = i == 6 ? 48 : 64, out = i == 7 ? 256 : i >= 4 && i < 6 ? 48 : 64;
        cJSON_AddNumberToObject(o, "in", in);
        cJSON_AddNumberToObject(o, "out", out);
        cJSON *s = cJSON_AddObjectToObject(o, "s");
        for (int f = 0; f < 5; f++) {
            if (i == 6 && f >= 3) continue;
            cJSON_AddNumberToObject(s, FMTS[f], f == 0 ? 0 : 1e-6 * (i + 1) * f * f);
        }
        cJSON_AddItemToArray(ops, o);
    }
    return j;
}

static cJSON *make_lat(void) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "mixprec-latency");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddObjectToObject(j, "provenance");
    cJSON *ties = cJSON_AddArrayToObject(j, "ties");
    const char *qkv[3] = {"q_proj", "k_proj", "v_proj"};
    cJSON_AddItemToArray(ties, cJSON_CreateStringArray(qkv, 3));
    cJSON *sgs = cJSON_AddArrayToObject(j, "subgraphs");
    for (int sgi = 0; sgi < 2; sgi++) {
        cJSON *sg = cJSON_CreateObject();
        cJSON_AddNumberToObject(sg, "id", sgi + 1);
        const char *att[4] = {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                              "model.layers.0.self_attn.v_proj", "model.layers.0.self_attn.o_proj"};
        const char *mlp[3] = {"model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj"};
        int nops = sgi == 0 ? 4 : 3;
        cJSON_AddItemToObject(sg, "ops", cJSON_CreateStringArray(sgi == 0 ? att : mlp, nops));
        cJSON *cfgs = cJSON_AddArrayToObject(sg, "configs");
        int n = 1;
        for (int k = 0; k < nops; k++) n *= 5;
        for (int c = 0; c < n; c++) {
            cJSON *cf = cJSON_CreateObject();
            const char *fs[4];
            double gain = 0;
            for (int k = 0, x = c; k < nops; k++, x /= 5) {
                fs[k] = FMTS[x % 5];
                gain += 1e-5 * (x % 5);
            }
            cJSON_AddItemToObject(cf, "formats", cJSON_CreateStringArray(fs, nops));
            cJSON_AddNumberToObject(cf, "gain_s", gain);
            cJSON_AddNumberToObject(cf, "mac_gain", gain * 2);
            cJSON_AddItemToArray(cfgs, cf);
        }
        cJSON_AddItemToArray(sgs, sg);
    }
    return j;
}

static int op_index(const mxp_solve_problem *p, const char *name) {
    for (int i = 0; i < p->n_ops; i++)
        if (!strcmp(p->ops[i].name, name)) return i;
    return -1;
}

static void test_problem(void) {
    cJSON *sens = make_sens(), *lat = make_lat();
    mxp_solve_problem p;
    mxp_err err = {0};
    CHECK(mxp_solve_problem_build(&p, sens, "sens", lat, "lat", NULL, &err) == MXP_OK, "%s", err.msg);
    // attention: 625 listed, q=k=v leaves 25; MLP: 125 listed, down q8_0/q4_0 impossible -> 75;
    // lm_head: 5 formats of its own
    CHECK(p.n_groups == 3 && p.n_cfg == 25 + 75 + 5, "groups %d configs %d", p.n_groups, p.n_cfg);
    CHECK(p.n_dropped_input == 50 && p.n_dropped_user == 600, "dropped %d / %d", p.n_dropped_input, p.n_dropped_user);
    CHECK(p.profiled[0] && p.profiled[1] && !p.profiled[2], "profiled flags");
    // memory gain of lm_head q8_0 (256 x 64): f32 65536 bytes - 256 * 2 * 34
    int c_head = p.gstart[2] + 3;
    CHECK(p.cfg_fmt[p.cfg_fmt_off[c_head]] == MXP_FMT_Q8_0 && p.gain[MXP_OBJ_MEMORY][c_head] == 65536 - 256 * 68.0,
          "lm_head q8_0 memory gain %g", p.gain[MXP_OBJ_MEMORY][c_head]);
    mxp_solve_problem_free(&p);

    // force / forbid
    const char *force[] = {"lm_head=f32"}, *forbid[] = {"*.gate_proj=q4_0"};
    mxp_solve_filter f = {force, 1, forbid, 1};
    CHECK(mxp_solve_problem_build(&p, sens, "sens", lat, "lat", &f, &err) == MXP_OK, "%s", err.msg);
    mxp_mckp m = mxp_solve_problem_mckp(&p, MXP_OBJ_MEMORY);
    mxp_mckp_opts o = {.sense = MXP_SOLVE_MAX_GAIN, .has_max_loss = 1, .max_loss = 1};
    mxp_mckp_result r;
    CHECK(mxp_mckp_solve(&m, &o, &r, &err) == MXP_OK && r.choice, "%s", err.msg);
    if (r.choice) {
        unsigned char fm[16];
        mxp_solve_choice_formats(&p, r.choice, fm);
        CHECK(fm[op_index(&p, "lm_head")] == MXP_FMT_F32, "forced lm_head");
        CHECK(fm[op_index(&p, "model.layers.0.mlp.gate_proj")] == MXP_FMT_Q8_0, "gate: q4_0 forbidden, q8_0 next smallest");
        CHECK(fm[op_index(&p, "model.layers.0.self_attn.q_proj")] == MXP_FMT_Q4_0 &&
                  fm[op_index(&p, "model.layers.0.self_attn.k_proj")] == MXP_FMT_Q4_0,
              "tied q/k at the smallest format");
        CHECK(fm[op_index(&p, "model.layers.0.mlp.down_proj")] <= MXP_FMT_F16, "down never q8/q4");
        cJSON *body = mxp_solve_plan_body(&p, MXP_OBJ_MEMORY, &o, &r);
        const cJSON *ops = cJSON_GetObjectItemCaseSensitive(body, "ops");
        CHECK(cJSON_GetArraySize(ops) == 8, "plan lists every op");
        cJSON_Delete(body);
    }
    mxp_mckp_result_free(&r);
    mxp_solve_problem_free(&p);

    // bad rules and bad tables fail with names
    const char *bad[] = {"nomatch*=f16"};
    mxp_solve_filter fb = {bad, 1, NULL, 0};
    CHECK(mxp_solve_problem_build(&p, sens, "sens", lat, "lat", &fb, &err) == MXP_ERR_ARG && strstr(err.msg, "matches no op"),
          "%s", err.msg);
    const char *bad2[] = {"*.down_proj=q4_0"};
    mxp_solve_filter fb2 = {bad2, 1, NULL, 0};
    CHECK(mxp_solve_problem_build(&p, sens, "sens", lat, "lat", &fb2, &err) == MXP_ERR_ARG && strstr(err.msg, "cannot take"),
          "%s", err.msg);
    cJSON *sg0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(lat, "subgraphs"), 0);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(sg0, "ops"), cJSON_CreateString("model.layers.9.mlp.up_proj"));
    CHECK(mxp_solve_problem_build(&p, sens, "sens", lat, "lat.json", NULL, &err) == MXP_ERR_FORMAT &&
              strstr(err.msg, "lat.json") && strstr(err.msg, "layers.9"),
          "%s", err.msg);
    cJSON_Delete(lat);
    lat = make_lat();
    // an op listed twice, and an op too large to hold in memory (an assertion once)
    cJSON *sops = cJSON_GetObjectItemCaseSensitive(sens, "ops");
    cJSON *extra = cJSON_Duplicate(cJSON_GetArrayItem(sops, 7), 1);
    cJSON_AddItemToArray(sops, extra);
    CHECK(mxp_solve_problem_build(&p, sens, "sens.json", lat, "lat", NULL, &err) == MXP_ERR_FORMAT &&
              strstr(err.msg, "sens.json") && strstr(err.msg, "\"lm_head\" is listed twice"),
          "%s", err.msg);
    cJSON_ReplaceItemInObject(extra, "name", cJSON_CreateString("huge"));
    cJSON_ReplaceItemInObject(extra, "in", cJSON_CreateNumber(1e12));
    cJSON_ReplaceItemInObject(extra, "out", cJSON_CreateNumber(1e12));
    CHECK(mxp_solve_problem_build(&p, sens, "sens.json", lat, "lat", NULL, &err) == MXP_ERR_FORMAT &&
              strstr(err.msg, "sens.json") && strstr(err.msg, "\"huge\"") && strstr(err.msg, "too large"),
          "%s", err.msg);
    cJSON_DeleteItemFromArray(sops, 8);
    // many ops: names are looked up by bisection (this took minutes when lookups were linear)
    for (int i = 0; i < 200000; i++) {
        char name[32];
        snprintf(name, sizeof name, "extra.%d", i);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", name);
        cJSON_AddNumberToObject(e, "in", 32);
        cJSON_AddNumberToObject(e, "out", 32);
        cJSON_AddObjectToObject(e, "s");
        cJSON_AddItemToArray(sops, e);
    }
    CHECK(mxp_solve_problem_build(&p, sens, "sens", lat, "lat", NULL, &err) == MXP_OK && p.n_ops == 200008 &&
              p.n_groups == 2 + 200001,
          "many ops: %s (%d ops, %d groups)", err.msg, p.n_ops, p.n_groups);
    mxp_solve_problem_free(&p);
    for (int i = 0; i < 200000; i++) cJSON_DeleteItemFromArray(sops, 8);
    cJSON_AddFalseToObject(sens, "complete");
    CHECK(mxp_solve_problem_build(&p, sens, "sens.json", lat, "lat", NULL, &err) == MXP_ERR_ARG && strstr(err.msg, "partial"),
          "%s", err.msg);
    cJSON_ReplaceItemInObject(sens, "version", cJSON_CreateNumber(2));
    CHECK(mxp_solve_problem_build(&p, sens, "sens.json", lat, "lat", NULL, &err) == MXP_ERR_UNSUPPORTED, "%s", err.msg);
    cJSON_Delete(sens);
    cJSON_Delete(lat);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static void test_end_to_end(void) {
    char dir[200];
    if (!check_tmpdir(dir, sizeof dir, "mxp_test_solve")) return;
    char sp[300], lp[300], pp[300], tp[300], cp[300];
    snprintf(sp, sizeof sp, "%s/sens.json", dir);
    snprintf(lp, sizeof lp, "%s/lat.json", dir);
    snprintf(pp, sizeof pp, "%s/plan.json", dir);
    snprintf(tp, sizeof tp, "%s/types.txt", dir);
    snprintf(cp, sizeof cp, "%s/pareto.csv", dir);
    cJSON *s = make_sens(), *l = make_lat();
    mxp_err err = {0};
    CHECK(mxp_write_json_atomic(sp, s, &err) == MXP_OK && mxp_write_json_atomic(lp, l, &err) == MXP_OK, "%s", err.msg);
    cJSON_Delete(s);
    cJSON_Delete(l);
    const char *forbid[] = {"*=bf16"};
    mxp_solve_opts o = {.sens_path = sp, .latency_path = lp, .has_max_loss = 1, .max_loss_mse = 2e-5,
                        .forbid = forbid, .n_forbid = 1, .out_plan = pp, .out_tensor_types = tp,
                        .pareto = 6, .out_csv = cp};
    mxp_solve_report rep;
    CHECK(mxp_solve(&o, &rep, &err) == MXP_OK, "%s", err.msg);
    CHECK(rep.solved && !strcmp(rep.status, "optimal") && rep.loss_mse <= 2e-5 && rep.time_gain_s > 0, "report %s %g %g",
          rep.status, rep.loss_mse, rep.time_gain_s);
    cJSON *plan = NULL;
    CHECK(mxp_read_json(pp, &plan, &err) == MXP_OK, "%s", err.msg);
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(plan, "provenance");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(prov, "inputs");
    const cJSON *sprov = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(in, "sensitivity"), "provenance");
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(prov, "model_hash")) && cJSON_IsObject(sprov) &&
              cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(in, "latency"), "provenance")),
          "plan provenance carries the inputs' provenance");
    const cJSON *gv = cJSON_GetObjectItemCaseSensitive(prov, "ggml");
    CHECK(cJSON_IsString(gv) && !strncmp(gv->valuestring, ggml_version(), strlen(ggml_version())) &&
              strstr(gv->valuestring, ggml_commit()),
          "plan provenance names ggml %s %s", ggml_version(), ggml_commit());
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(plan, "ops");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(ops, "model.layers.0.self_attn.q_proj");
    CHECK(cJSON_GetArraySize(ops) == 8 && cJSON_IsString(q), "plan ops");
    const cJSON *pred = cJSON_GetObjectItemCaseSensitive(plan, "predicted");
    CHECK(cJSON_GetObjectItemCaseSensitive(pred, "loss_mse")->valuedouble == rep.loss_mse, "predicted loss in the file");
    const cJSON *par = cJSON_GetObjectItemCaseSensitive(plan, "pareto");
    CHECK(cJSON_GetArraySize(par) == 6, "pareto points %d", cJSON_GetArraySize(par));
    double prev = -1;
    for (const cJSON *pt = par ? par->child : NULL; pt; pt = pt->next) {
        double g = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pt, "predicted"), "time_gain_s")->valuedouble;
        CHECK(g >= prev, "pareto gains monotone");
        prev = g;
    }
    // tensor-type file: one line per op, the plan's formats
    char *tt = slurp(tp);
    char want[128];
    snprintf(want, sizeof want, "blk.0.attn_q.weight=%s\n", cJSON_IsString(q) ? q->valuestring : "?");
    CHECK(tt && strstr(tt, want) && strstr(tt, "output.weight=") && strstr(tt, "blk.0.ffn_down.weight="), "types file:\n%s", tt ? tt : "(none)");
    int lines = 0;
    for (char *c = tt; c && *c; c++) lines += *c == '\n';
    CHECK(lines == 8, "types file lines %d", lines);
    char *csv = slurp(cp);
    lines = 0;
    for (char *c = csv; c && *c; c++) lines += *c == '\n';
    CHECK(csv && !strncmp(csv, "max_loss_mse,status", 19) && lines == 7, "csv");
    cJSON_Delete(plan);

    // infeasible: every op forced to q4_0 where possible, tiny budget -> message with the least loss
    const char *force[] = {"*_proj=f16", "lm_head=q4_0"};
    mxp_solve_opts o2 = {.sens_path = sp, .latency_path = lp, .has_max_loss = 1, .max_loss_mse = 1e-9,
                         .force = force, .n_force = 2, .out_plan = pp};
    CHECK(mxp_solve(&o2, &rep, &err) == MXP_ERR_ARG && strstr(err.msg, "infeasible") && strstr(err.msg, "least-loss plan") &&
              rep.has_nearest && rep.nearest_loss_mse > 1e-9,
          "%s", err.msg);
    fprintf(stderr, "infeasible message: %s\n", err.msg);
    // the dual: least loss for a required gain
    mxp_solve_opts o3 = {.sens_path = sp, .latency_path = lp, .has_min_gain = 1, .min_gain = 1e-4, .out_plan = pp};
    CHECK(mxp_solve(&o3, &rep, &err) == MXP_OK && rep.time_gain_s >= 1e-4 - 1e-12, "%s", err.msg);
    // bytes budget below anything reachable
    mxp_solve_opts o4 = {.sens_path = sp, .latency_path = lp, .has_max_bytes = 1, .max_bytes = 10, .out_plan = pp};
    CHECK(mxp_solve(&o4, &rep, &err) == MXP_ERR_ARG && strstr(err.msg, "smallest weight bytes"), "%s", err.msg);
    unlink(sp), unlink(lp), unlink(pp), unlink(tp), unlink(cp);
    rmdir(dir);
}

int main(void) {
    test_prune_ties();
    test_bad_input();
    test_random();
    test_monotone();
    test_large();
    test_problem();
    test_end_to_end();
    CHECK_DONE();
}

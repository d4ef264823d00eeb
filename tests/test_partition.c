// test_partition.c: cut nodes and sequential sub-graphs (src/method/partition.c).
//  1. Hand-made graphs with known cut nodes: a chain, a diamond, a residual block, parallel
//     branches, a branch that skips several residual blocks, two token inputs, a dead node.
//  2. Random DAGs: the dominator-based cut nodes equal a brute-force reference (v is a cut
//     iff removing it disconnects the token input from the output, by graph search).
//  3. The real builders (synthetic Llama with GQA and biases, GPT-2): embedding, then one
//     attention and one MLP sub-graph per block holding exactly that block's linear ops,
//     then the final norm and the head; equal blocks share one signature, different shapes
//     do not.
#include <string.h>

#include "arch/model.h"
#include "check.h"
#include "core/rng.h"
#include "method/partition.h"

static const float dummy[1] = {0};


static int node(mxp_graph *g, mxp_op op, int n_in, int a, int b, int cols) {
    mxp_node n = {.op = op, .n_in = n_in, .in = {a, b}, .cols = cols};
    int idx;
    mxp_err err;
    MXP_ASSERT(mxp_graph_add_node(g, &n, &idx, &err) == MXP_OK);
    return idx;
}

static int lin(mxp_graph *g, int x, int out) {
    int64_t shape[2] = {out, g->nodes[x].cols};
    int w, idx;
    mxp_err err;
    MXP_ASSERT(mxp_graph_add_param(g, "w", 2, shape, dummy, 0, &w, &err) == MXP_OK);
    char name[32];
    snprintf(name, sizeof name, "lin%d", g->n_nodes);
    mxp_node n = {.op = MXP_OP_LINEAR, .n_in = 1, .in = {x}, .cols = out, .has_w = 1, .w = w, .name = name};
    MXP_ASSERT(mxp_graph_add_node(g, &n, &idx, &err) == MXP_OK);
    return idx;
}

static int embed(mxp_graph *g) { return node(g, MXP_OP_EMBED, 0, 0, 0, 8); }
static int add(mxp_graph *g, int a, int b) { return node(g, MXP_OP_ADD, 2, a, b, g->nodes[a].cols); }
static int gelu(mxp_graph *g, int a) { return node(g, MXP_OP_GELU, 1, a, 0, g->nodes[a].cols); }

static void expect_cuts(const char *what, const mxp_graph *g, const int *want, int n_want) {
    int *cuts, nc;
    mxp_err err = {0};
    CHECK(mxp_graph_cut_nodes(g, &cuts, &nc, &err) == MXP_OK, "%s", err.msg);
    int same = nc == n_want;
    for (int i = 0; same && i < nc; i++) same = cuts[i] == want[i];
    CHECK(same, "%s: cut nodes differ (got %d of them, want %d)", what, nc, n_want);
    if (!same) {
        for (int i = 0; i < nc; i++) fprintf(stderr, " %d", cuts[i]);
        fprintf(stderr, "\n");
    }
    free(cuts);
}

// Brute force: v is a cut iff the output cannot be reached from the token input without v.
static int is_cut_brute(const mxp_graph *g, int v) {
    int n = g->n_nodes;
    char *reach = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) {
        if (i == v) continue;
        const mxp_node *nd = &g->nodes[i];
        if (nd->n_in == 0) reach[i] = 1;
        for (int k = 0; k < nd->n_in; k++)
            if (reach[nd->in[k]]) reach[i] = 1;
    }
    int cut = !reach[n - 1];
    free(reach);
    return cut;
}

static void test_hand_made(void) {
    mxp_graph g = {0};
    // chain: every node is a cut
    int e = embed(&g), l1 = lin(&g, e, 8), gl = gelu(&g, l1), l2 = lin(&g, gl, 4);
    int chain[] = {e, l1, gl, l2};
    expect_cuts("chain", &g, chain, 4);
    mxp_partition p;
    mxp_err err = {0};
    CHECK(mxp_partition_build(&p, &g, &err) == MXP_OK, "%s", err.msg);
    CHECK(p.n == 4 && p.sg[1].first == 1 && p.sg[1].last == 2 && p.sg[1].n_ops == 1 && p.sg[1].ops[0] == l1,
          "chain sub-graphs");
    CHECK(p.n_sig == 4, "chain: 4 different signatures, got %d", p.n_sig);
    mxp_partition_free(&p);
    mxp_graph_free(&g);

    // diamond: e -> a, b -> a + b
    e = embed(&g);
    int a = lin(&g, e, 8), b = lin(&g, e, 8), s = add(&g, a, b);
    int diamond[] = {e, s};
    expect_cuts("diamond", &g, diamond, 2);
    mxp_graph_free(&g);

    // residual block, twice, then a head: the adds are cuts, the norms are not
    e = embed(&g);
    int x = e, adds[2];
    for (int k = 0; k < 2; k++) {
        int nrm = node(&g, MXP_OP_RMSNORM, 1, x, 0, 8);
        int l = lin(&g, nrm, 8);
        x = adds[k] = add(&g, x, l);
    }
    int head = lin(&g, x, 16);
    int resid[] = {e, adds[0], adds[1], head};
    expect_cuts("residual", &g, resid, 4);
    CHECK(mxp_partition_build(&p, &g, &err) == MXP_OK, "%s", err.msg);
    CHECK(p.n == 4 && p.n_sig == 3 && p.sg[1].sig == p.sg[2].sig && p.sig_count[p.sg[1].sig] == 2,
          "two equal residual blocks share one signature (n %d, n_sig %d)", p.n, p.n_sig);
    CHECK(p.sg[1].first == 1 && p.sg[1].last == adds[0] + 1 && p.sg[2].first == adds[0] + 1, "block ranges");
    mxp_partition_free(&p);
    mxp_graph_free(&g);

    // parallel branches merged in two steps
    e = embed(&g);
    int b1 = gelu(&g, lin(&g, e, 8)), b2 = gelu(&g, lin(&g, e, 8)), b3 = lin(&g, e, 8);
    int m1 = add(&g, b1, b2), m2 = add(&g, m1, b3), out = lin(&g, m2, 4);
    int par[] = {e, m2, out};
    expect_cuts("parallel", &g, par, 3);
    mxp_graph_free(&g);

    // a branch that skips two residual blocks: their adds are no longer cuts
    e = embed(&g);
    int n0 = gelu(&g, e);
    x = n0;
    for (int k = 0; k < 2; k++) x = add(&g, x, lin(&g, x, 8));
    int skip = lin(&g, n0, 8);
    int join = add(&g, x, skip);
    out = lin(&g, join, 4);
    int skipc[] = {e, n0, join, out};
    expect_cuts("skip", &g, skipc, 4);
    mxp_graph_free(&g);

    // two token inputs (token and a second table) merged; a dead node off the main path
    int e1 = embed(&g), e2 = embed(&g), mg = add(&g, e1, e2);
    lin(&g, mg, 8);  // dead: nothing reads it
    int l3 = lin(&g, mg, 8);
    int two[] = {mg, l3};
    expect_cuts("two inputs + dead node", &g, two, 2);
    mxp_graph_free(&g);
}

static void test_random_dags(void) {
    mxp_rng r;
    mxp_rng_seed(&r, 5);
    int mismatches = 0;
    for (int trial = 0; trial < 400; trial++) {
        mxp_graph g = {0};
        int n = 2 + (int)mxp_rng_below(&r, 14);
        for (int i = 0; i < n; i++) {
            int kind = i == 0 ? 0 : (int)mxp_rng_below(&r, 10);
            if (kind == 0) embed(&g);
            else if (kind < 5) gelu(&g, (int)mxp_rng_below(&r, (uint64_t)i));
            else add(&g, (int)mxp_rng_below(&r, (uint64_t)i), (int)mxp_rng_below(&r, (uint64_t)i));
        }
        int *cuts, nc;
        mxp_err err = {0};
        CHECK(mxp_graph_cut_nodes(&g, &cuts, &nc, &err) == MXP_OK, "%s", err.msg);
        char *is = calloc((size_t)n, 1);
        for (int k = 0; k < nc; k++) is[cuts[k]] = 1;
        for (int v = 0; v < n; v++)
            if (is[v] != is_cut_brute(&g, v)) mismatches++;
        for (int k = 1; k < nc; k++) CHECK(cuts[k] > cuts[k - 1], "cuts ascending");
        CHECK(nc > 0 && cuts[nc - 1] == n - 1, "the output is a cut");
        free(is);
        free(cuts);
        mxp_graph_free(&g);
    }
    CHECK(mismatches == 0, "%d node verdicts differ from the brute-force reference", mismatches);
}

static const char *suffix(const char *name) {
    const char *d = strrchr(name, '.');
    return d ? d + 1 : name;
}

static void test_builders(void) {
    mxp_err err = {0};
    mxp_model_config llama = {.arch = MXP_ARCH_LLAMA, .vocab = 96, .dim = 64, .n_layers = 3, .n_heads = 4,
                              .n_kv_heads = 2, .head_dim = 16, .ffn = 96, .max_pos = 64, .norm_eps = 1e-5f,
                              .rope_theta = 10000.0, .qkv_bias = 1};
    mxp_model *m;
    CHECK(mxp_model_synthetic(&llama, 1, &m, &err) == MXP_OK, "%s", err.msg);
    if (m) {
        mxp_partition p;
        CHECK(mxp_partition_build(&p, &m->graph, &err) == MXP_OK, "%s", err.msg);
        int L = llama.n_layers;
        CHECK(p.n == 2 * L + 3, "llama: %d sub-graphs, want %d", p.n, 2 * L + 3);
        CHECK(p.n_sig == 5, "llama: %d signatures, want 5 (embed, attention, mlp, norm, head)", p.n_sig);
        for (int l = 0; l < L && p.n == 2 * L + 3; l++) {
            const mxp_subgraph *at = &p.sg[1 + 2 * l], *ml = &p.sg[2 + 2 * l];
            const char *want_at[] = {"q_proj", "k_proj", "v_proj", "o_proj"}, *want_ml[] = {"gate_proj", "up_proj", "down_proj"};
            CHECK(at->n_ops == 4 && ml->n_ops == 3, "block %d: %d attention ops, %d mlp ops", l, at->n_ops, ml->n_ops);
            for (int k = 0; k < at->n_ops && at->n_ops == 4; k++)
                CHECK(!strcmp(suffix(m->graph.nodes[at->ops[k]].name), want_at[k]), "block %d attention op %d is %s", l,
                      k, m->graph.nodes[at->ops[k]].name);
            for (int k = 0; k < ml->n_ops && ml->n_ops == 3; k++)
                CHECK(!strcmp(suffix(m->graph.nodes[ml->ops[k]].name), want_ml[k]), "block %d mlp op %d is %s", l, k,
                      m->graph.nodes[ml->ops[k]].name);
            CHECK(m->graph.nodes[at->last - 1].op == MXP_OP_ADD && m->graph.nodes[ml->last - 1].op == MXP_OP_ADD,
                  "block %d sub-graphs end at the residual adds", l);
            CHECK(at->sig == p.sg[1].sig && ml->sig == p.sg[2].sig, "block %d shares the signatures of block 0", l);
        }
        CHECK(p.sg[0].n_ops == 0 && m->graph.nodes[0].op == MXP_OP_EMBED && p.sg[0].last == 1, "embedding alone");
        const mxp_subgraph *hd = &p.sg[p.n - 1];
        CHECK(hd->n_ops == 1 && !strcmp(m->graph.nodes[hd->ops[0]].name, "lm_head"), "head sub-graph");
        CHECK(p.sg[p.n - 2].n_ops == 0 && m->graph.nodes[p.sg[p.n - 2].first].op == MXP_OP_RMSNORM, "final norm");
        int covered = 0;
        for (int k = 0; k < p.n; k++) {
            covered += p.sg[k].last - p.sg[k].first;
            if (k) CHECK(p.sg[k].first == p.sg[k - 1].last, "sub-graphs tile the node list");
        }
        CHECK(covered == m->graph.n_nodes, "every node in one sub-graph");
        mxp_partition_free(&p);
        mxp_model_free(m);
    }

    // a different MLP width changes the MLP signature only
    mxp_model_config wide = llama;
    wide.ffn = 128;
    mxp_model *m2;
    CHECK(mxp_model_synthetic(&llama, 1, &m, &err) == MXP_OK && mxp_model_synthetic(&wide, 1, &m2, &err) == MXP_OK, "%s",
          err.msg);
    if (m && m2) {
        mxp_partition a, b;
        CHECK(!mxp_partition_build(&a, &m->graph, &err) && !mxp_partition_build(&b, &m2->graph, &err), "%s", err.msg);
        CHECK(!strcmp(a.sg[1].signature, b.sg[1].signature), "attention signature independent of ffn");
        CHECK(strcmp(a.sg[2].signature, b.sg[2].signature) != 0, "mlp signature depends on ffn");
        mxp_partition_free(&a);
        mxp_partition_free(&b);
        mxp_model_free(m2);
        mxp_model_free(m);
    }

    mxp_model_config gpt2 = {.arch = MXP_ARCH_GPT2, .vocab = 80, .dim = 64, .n_layers = 2, .n_heads = 4,
                             .n_kv_heads = 4, .head_dim = 16, .ffn = 256, .max_pos = 64, .norm_eps = 1e-5f};
    CHECK(mxp_model_synthetic(&gpt2, 2, &m, &err) == MXP_OK, "%s", err.msg);
    if (m) {
        mxp_partition p;
        CHECK(mxp_partition_build(&p, &m->graph, &err) == MXP_OK, "%s", err.msg);
        int L = gpt2.n_layers;
        // embed, posembed, (attention, mlp) x L, ln_f, head
        CHECK(p.n == 2 * L + 4 && p.n_sig == 6, "gpt2: %d sub-graphs (want %d), %d signatures (want 6)", p.n, 2 * L + 4,
              p.n_sig);
        for (int l = 0; l < L && p.n == 2 * L + 4; l++) {
            const mxp_subgraph *at = &p.sg[2 + 2 * l], *ml = &p.sg[3 + 2 * l];
            CHECK(at->n_ops == 2 && !strcmp(suffix(m->graph.nodes[at->ops[0]].name), "c_attn"), "gpt2 block %d attention",
                  l);
            CHECK(ml->n_ops == 2 && !strcmp(suffix(m->graph.nodes[ml->ops[0]].name), "c_fc"), "gpt2 block %d mlp", l);
        }
        mxp_partition_free(&p);
        mxp_model_free(m);
    }
}

int main(void) {
    test_hand_made();
    test_random_dags();
    test_builders();
    CHECK_DONE();
}

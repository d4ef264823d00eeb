// partition.c: cut nodes (dominators of the output) and sequential sub-graphs with their
// signatures. Walks the graph structure only: no kernels, no architecture knowledge.
#include "method/partition.h"

#include <stdarg.h>
#include <string.h>

// Immediate dominators over the DAG in topological order. Node indices are shifted by one so
// that 0 is the virtual source (the token input). idom[v] < v for every node; intersect walks
// up the dominator tree by always moving the larger index (Cooper, Harvey and Kennedy's
// algorithm; one pass suffices on a DAG processed in topological order).
static int intersect(const int *idom, int a, int b) {
    while (a != b) {
        while (a > b) a = idom[a];
        while (b > a) b = idom[b];
    }
    return a;
}

mxp_status mxp_graph_cut_nodes(const mxp_graph *g, int **cuts, int *n_cuts, mxp_err *err) {
    *cuts = NULL;
    *n_cuts = 0;
    int n = g->n_nodes;
    MXP_ASSERT(n > 0);
    int *idom = malloc((size_t)(n + 1) * sizeof *idom);
    int *out = malloc((size_t)n * sizeof *out);
    if (!idom || !out) {
        free(idom);
        free(out);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory partitioning the graph");
    }
    idom[0] = 0;
    for (int i = 0; i < n; i++) {
        const mxp_node *nd = &g->nodes[i];
        int d = 0;  // no inputs: reads the token input (the source)
        for (int k = 0; k < nd->n_in; k++) {
            MXP_ASSERT(nd->in[k] >= 0 && nd->in[k] < i);
            int p = nd->in[k] + 1;
            d = k == 0 ? p : intersect(idom, d, p);
        }
        idom[i + 1] = d;
    }
    int m = 0;
    for (int v = n; v != 0; v = idom[v]) out[m++] = v - 1;
    for (int a = 0, b = m - 1; a < b; a++, b--) {  // ascending
        int t = out[a];
        out[a] = out[b];
        out[b] = t;
    }
    free(idom);
    *cuts = out;
    *n_cuts = m;
    return MXP_OK;
}

// ---- signatures ----

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    MXP_ASSERT(k >= 0 && (size_t)k < sizeof tmp);
    if (b->len + (size_t)k + 1 > b->cap) {
        size_t nc = b->cap ? 2 * b->cap : 256;
        while (nc < b->len + (size_t)k + 1) nc *= 2;
        char *p = realloc(b->s, nc);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = nc;
    }
    memcpy(b->s + b->len, tmp, (size_t)k + 1);
    b->len += (size_t)k;
}

// One token per node: op, output width, inputs (internal: distance back in nodes; external:
// "x" and its width), then what sets the op's cost (weight shape, bias, heads...). Weight
// values and module names are not part of it.
static char *signature(const mxp_graph *g, int first, int last) {
    sbuf b = {0};
    for (int i = first; i < last; i++) {
        const mxp_node *n = &g->nodes[i];
        sb_printf(&b, "%s%s:%d(", i > first ? ";" : "", mxp_op_name(n->op), n->cols);
        for (int k = 0; k < n->n_in; k++) {
            int j = n->in[k];
            if (j >= first) sb_printf(&b, "%s-%d", k ? "," : "", i - j);
            else sb_printf(&b, "%sx%d", k ? "," : "", g->nodes[j].cols);
        }
        sb_printf(&b, ")");
        if (n->has_w) {
            const mxp_param *w = &g->params[n->w];
            if (w->ndim == 2) sb_printf(&b, "w%lldx%lld", (long long)w->shape[0], (long long)w->shape[1]);
            else sb_printf(&b, "w%lld", (long long)w->shape[0]);
        }
        if (n->has_b) sb_printf(&b, "b");
        switch (n->op) {
        case MXP_OP_ROPE: sb_printf(&b, "h%dd%d", n->heads, n->head_dim); break;
        case MXP_OP_ATTENTION:
            sb_printf(&b, "h%dkv%dd%d", n->heads, n->kv_heads, n->head_dim);
            if (n->window) sb_printf(&b, "sw%d", n->window);  // the window changes the work
            break;
        case MXP_OP_SLICE: sb_printf(&b, "@%d", n->slice_off); break;
        default: break;
        }
    }
    if (b.oom || !b.s) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

void mxp_partition_free(mxp_partition *p) {
    if (!p) return;
    for (int k = 0; k < p->n && p->sg; k++) {
        free(p->sg[k].ops);
        free(p->sg[k].signature);
    }
    free(p->sg);
    free(p->sig_rep);
    free(p->sig_count);
    memset(p, 0, sizeof *p);
}

mxp_status mxp_partition_build(mxp_partition *p, const mxp_graph *g, mxp_err *err) {
    memset(p, 0, sizeof *p);
    int *cuts, nc;
    mxp_status st = mxp_graph_cut_nodes(g, &cuts, &nc, err);
    if (st) return st;
    p->sg = calloc((size_t)nc, sizeof *p->sg);
    p->sig_rep = calloc((size_t)nc, sizeof *p->sig_rep);
    p->sig_count = calloc((size_t)nc, sizeof *p->sig_count);
    int ok = p->sg && p->sig_rep && p->sig_count;
    for (int k = 0; ok && k < nc; k++) {
        mxp_subgraph *s = &p->sg[k];
        p->n = k + 1;
        s->first = k ? cuts[k - 1] + 1 : 0;
        s->last = cuts[k] + 1;
        for (int i = s->first; i < s->last; i++) s->n_ops += g->nodes[i].op == MXP_OP_LINEAR;
        if (s->n_ops && !(s->ops = malloc((size_t)s->n_ops * sizeof *s->ops))) ok = 0;
        for (int i = s->first, m = 0; ok && i < s->last; i++)
            if (g->nodes[i].op == MXP_OP_LINEAR) s->ops[m++] = i;
        if (ok && !(s->signature = signature(g, s->first, s->last))) ok = 0;
        if (!ok) break;
        s->sig = -1;
        for (int c = 0; c < p->n_sig; c++)
            if (!strcmp(p->sg[p->sig_rep[c]].signature, s->signature)) {
                s->sig = c;
                p->sig_count[c]++;
                break;
            }
        if (s->sig < 0) {
            s->sig = p->n_sig;
            p->sig_rep[p->n_sig] = k;
            p->sig_count[p->n_sig++] = 1;
        }
    }
    free(cuts);
    if (!ok) {
        mxp_partition_free(p);
        return mxp_fail(err, MXP_ERR_NOMEM, "out of memory partitioning the graph");
    }
    return MXP_OK;
}

// solve.c: the multiple-choice knapsack of docs/DESIGN.md 1.3 with GLPK. The only file that
// includes glpk.h (GLPK is a required dependency: CMake stops without it).
//
// Model: binary z_j per kept configuration j;  sum_{j in g} z_j = 1 for every group g;
// optional rows  sum loss_j z_j <= tau,  sum gain_j z_j >= G,  sum bytes_j z_j <= B;
// objective max sum gain_j z_j (or min sum loss_j z_j for the dual). Every row and the
// objective are divided by their largest magnitude before GLPK sees them, so its absolute
// tolerances (1e-7 on bounds) act relative to the budgets (loss MSEs of 1e-9..1e-2 and
// byte counts of 1e9 would otherwise meet them unequally). Totals are recomputed in double
// from the inputs; the result carries those, never GLPK's scaled values.
//
// Must not: print (GLPK's terminal output is switched off), keep state between calls.
#include "method/solve.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <glpk.h>

const char *mxp_solve_status_name(mxp_solve_status s) {
    switch (s) {
    case MXP_SOLVE_OPTIMAL: return "optimal";
    case MXP_SOLVE_FEASIBLE: return "feasible";
    case MXP_SOLVE_INFEASIBLE: return "infeasible";
    }
    return "unknown";
}

void mxp_mckp_result_free(mxp_mckp_result *r) {
    if (!r) return;
    free(r->choice);
    r->choice = NULL;
}

// Does k dominate j (k at least as good on every criterion, and strictly better on one or
// equal on all with k first)?
static int dominates(const mxp_mckp *p, int use_bytes, int k, int j) {
    double gk = p->gain[k], gj = p->gain[j], lk = p->loss[k], lj = p->loss[j];
    double bk = use_bytes ? p->bytes[k] : 0, bj = use_bytes ? p->bytes[j] : 0;
    if (gk < gj || lk > lj || bk > bj) return 0;
    if (gk > gj || lk < lj || bk < bj) return 1;
    return k < j;  // exact tie: keep the first
}

int mxp_mckp_prune(const mxp_mckp *p, int use_bytes, unsigned char *keep) {
    int kept = 0;
    for (int g = 0; g < p->n_groups; g++) {
        int a = p->start[g], b = p->start[g + 1];
        for (int j = a; j < b; j++) {
            keep[j] = 1;
            // A dominated k may itself be dominated: dominance is transitive, so comparing with
            // every other configuration (kept or not) gives the same answer as with kept ones.
            for (int k = a; k < b && keep[j]; k++)
                if (k != j && dominates(p, use_bytes, k, j)) keep[j] = 0;
            kept += keep[j];
        }
    }
    return kept;
}

typedef struct cb_info {
    int maximize, have;
    double bound;  // in GLPK's (scaled) objective units
} cb_info;

// Track the best bound over the open nodes (a valid global bound at each call).
static void track_bound(glp_tree *tree, void *info) {
    cb_info *c = info;
    int node = glp_ios_best_node(tree);
    if (!node) return;
    double b = glp_ios_node_bound(tree, node);
    if (!c->have || (c->maximize ? b < c->bound : b > c->bound)) {
        c->bound = b;
        c->have = 1;
    }
}

static mxp_status check_input(const mxp_mckp *p, const mxp_mckp_opts *o, mxp_err *err) {
    if (p->n_groups < 0 || !p->start || p->start[0] != 0)
        return mxp_fail(err, MXP_ERR_ARG, "solve: bad group table");
    for (int g = 0; g < p->n_groups; g++)
        if (p->start[g + 1] < p->start[g]) return mxp_fail(err, MXP_ERR_ARG, "solve: bad group table");
    int n = p->start[p->n_groups];
    if (o->has_max_bytes && !p->bytes) return mxp_fail(err, MXP_ERR_ARG, "solve: a bytes budget needs bytes per configuration");
    for (int j = 0; j < n; j++) {
        if (!isfinite(p->gain[j]) || !isfinite(p->loss[j]) || p->loss[j] < 0 ||
            (p->bytes && (!isfinite(p->bytes[j]) || p->bytes[j] < 0)))
            return mxp_fail(err, MXP_ERR_ARG, "solve: configuration %d has a non-finite gain/loss/bytes or a negative loss", j);
    }
    if ((o->has_max_loss && !(o->max_loss >= 0 && isfinite(o->max_loss))) ||
        (o->has_min_gain && !isfinite(o->min_gain)) || (o->has_max_bytes && !(o->max_bytes >= 0 && isfinite(o->max_bytes))))
        return mxp_fail(err, MXP_ERR_ARG, "solve: budgets must be finite and non-negative");
    if (!(o->mip_gap >= 0 && o->mip_gap < 1)) return mxp_fail(err, MXP_ERR_ARG, "solve: mip gap must lie in [0, 1)");
    if (!(o->time_limit_s >= 0)) return mxp_fail(err, MXP_ERR_ARG, "solve: time limit must be >= 0");
    return MXP_OK;
}

static double max_abs(const double *v, const int *idx, int n) {
    double m = 0;
    for (int i = 0; i < n; i++)
        if (fabs(v[idx[i]]) > m) m = fabs(v[idx[i]]);
    return m;
}

mxp_status mxp_mckp_solve(const mxp_mckp *p, const mxp_mckp_opts *o, mxp_mckp_result *r, mxp_err *err) {
    memset(r, 0, sizeof *r);
    double t0 = mxp_now();
    mxp_status st = check_input(p, o, err);
    if (st) return st;
    const int G = p->n_groups, n = p->start[G];
    r->n_cfg = n;
    r->status = MXP_SOLVE_INFEASIBLE;
    if (G == 0) {  // nothing to choose: the empty plan, if it meets the budgets
        int ok = (!o->has_min_gain || o->min_gain <= 0);
        r->status = ok ? MXP_SOLVE_OPTIMAL : MXP_SOLVE_INFEASIBLE;
        r->choice = ok ? malloc(sizeof *r->choice) : NULL;
        r->seconds = mxp_now() - t0;
        if (ok && !r->choice) return mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        return MXP_OK;
    }
    for (int g = 0; g < G; g++)
        if (p->start[g + 1] == p->start[g]) {  // a group with no configuration left
            r->seconds = mxp_now() - t0;
            return MXP_OK;
        }
    unsigned char *keep = malloc((size_t)n + 1);
    int *col = malloc(((size_t)n + 1) * sizeof *col);  // kept configuration of GLPK column c+1
    int *ia = NULL, *ja = NULL;
    double *ar = NULL;
    r->choice = malloc(((size_t)G + 1) * sizeof *r->choice);
    if (!keep || !col || !r->choice) {
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        goto done;
    }
    int use_bytes = o->has_max_bytes;
    if (o->no_prune) {
        memset(keep, 1, (size_t)n);
        r->n_kept = n;
    } else {
        r->n_kept = mxp_mckp_prune(p, use_bytes, keep);
    }
    int m = 0;
    for (int j = 0; j < n; j++)
        if (keep[j]) col[m++] = j;
    // scales
    const int maximize = o->sense == MXP_SOLVE_MAX_GAIN;
    double s_gain = max_abs(p->gain, col, m), s_loss = max_abs(p->loss, col, m);
    double s_bytes = use_bytes ? max_abs(p->bytes, col, m) : 1;
    if (o->has_max_loss && o->max_loss > s_loss) s_loss = o->max_loss;
    if (o->has_min_gain && fabs(o->min_gain) > s_gain) s_gain = fabs(o->min_gain);
    if (use_bytes && o->max_bytes > s_bytes) s_bytes = o->max_bytes;
    if (!(s_gain > 0)) s_gain = 1;
    if (!(s_loss > 0)) s_loss = 1;
    if (!(s_bytes > 0)) s_bytes = 1;

    MXP_ASSERT(m >= G);  // pruning keeps at least one configuration per group
    glp_prob *lp = glp_create_prob();
    glp_set_obj_dir(lp, maximize ? GLP_MAX : GLP_MIN);
    int rows = G + (o->has_max_loss ? 1 : 0) + (o->has_min_gain ? 1 : 0) + (use_bytes ? 1 : 0);
    glp_add_rows(lp, rows);
    glp_add_cols(lp, m);
    for (int g = 0; g < G; g++) glp_set_row_bnds(lp, g + 1, GLP_FX, 1.0, 1.0);
    int row_loss = 0, row_gain = 0, row_bytes = 0, next = G + 1;
    if (o->has_max_loss) {
        row_loss = next++;
        glp_set_row_bnds(lp, row_loss, GLP_UP, 0.0, o->max_loss / s_loss);
    }
    if (o->has_min_gain) {
        row_gain = next++;
        glp_set_row_bnds(lp, row_gain, GLP_LO, o->min_gain / s_gain, 0.0);
    }
    if (use_bytes) {
        row_bytes = next++;
        glp_set_row_bnds(lp, row_bytes, GLP_UP, 0.0, o->max_bytes / s_bytes);
    }
    size_t nz = (size_t)m * (size_t)(rows - G + 1) + 1;
    ia = malloc(nz * sizeof *ia);
    ja = malloc(nz * sizeof *ja);
    ar = malloc(nz * sizeof *ar);
    if (!ia || !ja || !ar) {
        glp_delete_prob(lp);
        st = mxp_fail(err, MXP_ERR_NOMEM, "out of memory");
        goto done;
    }
    int k = 0, g = 0;
    for (int c = 0; c < m; c++) {
        int j = col[c];
        while (j >= p->start[g + 1]) g++;
        glp_set_col_kind(lp, c + 1, GLP_BV);
        glp_set_obj_coef(lp, c + 1, maximize ? p->gain[j] / s_gain : p->loss[j] / s_loss);
        k++, ia[k] = g + 1, ja[k] = c + 1, ar[k] = 1.0;
        if (row_loss) k++, ia[k] = row_loss, ja[k] = c + 1, ar[k] = p->loss[j] / s_loss;
        if (row_gain) k++, ia[k] = row_gain, ja[k] = c + 1, ar[k] = p->gain[j] / s_gain;
        if (row_bytes) k++, ia[k] = row_bytes, ja[k] = c + 1, ar[k] = p->bytes[j] / s_bytes;
    }
    glp_load_matrix(lp, k, ia, ja, ar);

    cb_info info = {.maximize = maximize};
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_ON;
    parm.tol_int = 1e-9;
    parm.mip_gap = o->mip_gap;
    double tl = o->time_limit_s > 0 ? o->time_limit_s : 60.0;
    parm.tm_lim = tl * 1000 > 2e9 ? 2000000000 : (int)(tl * 1000);
    parm.cb_func = track_bound;
    parm.cb_info = &info;
    parm.gmi_cuts = GLP_ON;
    parm.mir_cuts = GLP_ON;
    // no cover cuts: GLPK 5.0's cover-cut setup aborts on a presolved problem whose knapsack
    // rows lost every column (seen on small instances), and it prints regardless of msg_lev
    parm.cov_cuts = GLP_OFF;
    int term = glp_term_out(GLP_OFF);  // GLPK's own per-thread terminal switch, restored below
    int ret = glp_intopt(lp, &parm);
    glp_term_out(term);
    int ms = glp_mip_status(lp);
    if (ret == GLP_ENOPFS || ret == GLP_ENODFS || ms == GLP_NOFEAS) {
        r->status = MXP_SOLVE_INFEASIBLE;
    } else if (ms == GLP_OPT || ms == GLP_FEAS) {
        r->status = (ret == 0 && ms == GLP_OPT) ? MXP_SOLVE_OPTIMAL : MXP_SOLVE_FEASIBLE;
    } else if (ret == GLP_ETMLIM || ret == GLP_ESTOP) {
        r->status = MXP_SOLVE_INFEASIBLE;  // stopped before any plan was found
        glp_delete_prob(lp);
        st = mxp_fail(err, MXP_ERR_UNSUPPORTED, "solve: time limit (%g s) reached before GLPK found any plan", tl);
        goto done;
    } else {
        glp_delete_prob(lp);
        st = mxp_fail(err, MXP_ERR_UNSUPPORTED, "solve: GLPK failed (glp_intopt returned %d, status %d)", ret, ms);
        goto done;
    }
    if (r->status != MXP_SOLVE_INFEASIBLE) {
        for (int gg = 0; gg < G; gg++) r->choice[gg] = -1;
        g = 0;
        for (int c = 0; c < m; c++) {
            int j = col[c];
            while (j >= p->start[g + 1]) g++;
            if (glp_mip_col_val(lp, c + 1) > 0.5) {
                MXP_ASSERT(r->choice[g] < 0);  // the GUB row allows one
                r->choice[g] = j;
            }
        }
        for (int gg = 0; gg < G; gg++) {
            int j = r->choice[gg];
            MXP_ASSERT(j >= 0);
            r->gain += p->gain[j];
            r->loss += p->loss[j];
            if (p->bytes) r->bytes += p->bytes[j];
        }
        double obj = maximize ? r->gain : r->loss, scale = maximize ? s_gain : s_loss;
        if (r->status == MXP_SOLVE_OPTIMAL && o->mip_gap == 0) {
            r->bound = obj;
            r->gap = 0;
        } else {
            r->bound = info.have ? info.bound * scale : obj;
            // the incumbent may beat the last open node's bound once the tree is exhausted
            if (maximize ? r->bound < obj : r->bound > obj) r->bound = obj;
            r->gap = fabs(obj - r->bound) / (fabs(obj) + 1e-300);
            if (r->status == MXP_SOLVE_OPTIMAL && r->gap > o->mip_gap) r->gap = o->mip_gap;
        }
    }
    glp_delete_prob(lp);
done:
    if (st || r->status == MXP_SOLVE_INFEASIBLE) {
        free(r->choice);
        r->choice = NULL;
    }
    free(keep);
    free(col);
    free(ia);
    free(ja);
    free(ar);
    r->seconds = mxp_now() - t0;
    return st;
}

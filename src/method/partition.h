// partition.h: cutting a model graph into sequential sub-graphs (docs/DESIGN.md 1.2).
//
// The graph is a DAG from one virtual source (the token input, read by every node without
// inputs) to the output (the last node). A *cut node* is a node that every source-to-output
// path passes through: the dominator chain of the output. Cut nodes c_1 < c_2 < ... < c_K
// (c_K = the output) split the nodes into sequential sub-graphs: sub-graph k holds the nodes
// with index in (c_{k-1}, c_k] (c_0 = -1), a contiguous range because the node list is
// topological and every path visits the cuts in order. Its only input from outside is the
// value of c_{k-1} (or the tokens); its output is c_k.
//
// Nothing here knows an architecture: a Llama block gives an attention and an MLP sub-graph
// because its residual adds are the only cut nodes inside it, not because of any rule here.
// Sub-graphs with equal signatures (op sequence, wiring and shapes; not weight values) share
// one signature class, so a profiler measures one of them for all.
#ifndef MXP_PARTITION_H
#define MXP_PARTITION_H

#include "core/graph.h"

typedef struct mxp_subgraph {
    int first, last;   // node range [first, last); node last-1 is the cut node ending it
    int n_ops;         // quantizable (LINEAR) nodes inside
    int *ops;          // (n_ops) their node indices, ascending; owned
    int sig;           // signature class in [0, n_sig)
    char *signature;   // owned, NUL-terminated; equal strings <=> equal classes
} mxp_subgraph;

typedef struct mxp_partition {
    int n;             // sub-graphs, in graph order
    mxp_subgraph *sg;  // (n) owned
    int n_sig;         // distinct signatures
    int *sig_rep;      // (n_sig) the first sub-graph of each class; owned
    int *sig_count;    // (n_sig) how many sub-graphs share the class; owned
} mxp_partition;

// The cut nodes of g in ascending order: *cuts (malloc'd, caller frees) gets *n_cuts indices;
// the last is always n_nodes-1. MXP_ERR_NOMEM only (the graph must be topological, which
// builders guarantee: asserted).
mxp_status mxp_graph_cut_nodes(const mxp_graph *g, int **cuts, int *n_cuts, mxp_err *err);

// Partition g (see the top of this file). On success p owns everything (mxp_partition_free).
mxp_status mxp_partition_build(mxp_partition *p, const mxp_graph *g, mxp_err *err);
void mxp_partition_free(mxp_partition *p);

#endif

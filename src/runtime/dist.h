// dist.h: the few collective operations calibration needs across the processes of an MPI job
// (the job itself: mxp_dist in include/mixprec.h). With a process on its own (d NULL or
// d->size 1) each is a copy or nothing, so callers have one code path for any number of
// processes. Every rank of the job must make the same calls in the same order. Failures inside
// MPI end the whole job (MPI's default error handler), so none of these returns an error.
#ifndef MXP_DIST_H
#define MXP_DIST_H

#include "core/base.h"

// Rank 0 receives every rank's counts[rank] doubles from send, one rank after the other in
// rank order, into recv (room for the sum of counts; NULL on other ranks). counts (size
// entries, zeros allowed) must be the same on every rank.
void mxp_dist_gather(const mxp_dist *d, const double *send, const int *counts, double *recv);
// 1 if flag is non-zero on any rank (the same answer on every rank).
int mxp_dist_any(const mxp_dist *d, int flag);
// Rank 0's *v on every rank.
void mxp_dist_bcast_u64(const mxp_dist *d, uint64_t *v);
// Wait until every rank has come here.
void mxp_dist_barrier(const mxp_dist *d);

#endif

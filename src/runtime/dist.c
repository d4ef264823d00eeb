// dist.c: the only file that talks to MPI (built with MXP_HAVE_MPI when CMake's MXP_MPI is on;
// without it, the same API for a process on its own). MPI is initialised only when a launcher
// started this process, so a plain `mixprec` never touches it (an MPI singleton would spawn a
// helper daemon and print warnings on machines without a network). MPI calls come from the
// main thread only (MPI_THREAD_FUNNELED); OpenMP threads never call here.
#include "runtime/dist.h"

#include <string.h>
#ifdef MXP_HAVE_MPI
#include <mpi.h>
#endif

// The environment variable a launcher sets, parsed as a count; 0 when absent or junk.
static long env_count(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v > 0 ? v : 0;
}

// Open MPI's mpirun, PMI (MPICH's hydra, srun --mpi=pmi2) and PMIx (srun --mpi=pmix) each say so
// in the environment of the processes they start.
static int launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMI_RANK") || getenv("PMIX_RANK");
}

int mxp_dist_env_size(void) {
    if (!launched()) return 1;
    long n = env_count("OMPI_COMM_WORLD_SIZE");
    if (!n) n = env_count("PMI_SIZE");
    if (!n && getenv("PMIX_RANK")) n = env_count("SLURM_STEP_NUM_TASKS");
    return n > 1 && n < (1L << 30) ? (int)n : 1;
}

static int single(const mxp_dist *d) { return !d || d->size <= 1; }

#ifdef MXP_HAVE_MPI

mxp_status mxp_dist_init(mxp_dist *d, mxp_err *err) {
    d->rank = 0;
    d->size = 1;
    if (!launched()) return MXP_OK;
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return mxp_fail(err, MXP_ERR_IO, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    return MXP_OK;
}

void mxp_dist_finalize(mxp_dist *d) {
    int inited = 0, done = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&done);
    if (inited && !done) MPI_Finalize();
    d->rank = 0;
    d->size = 1;
}

void mxp_dist_abort(const mxp_dist *d, int code) {
    if (single(d)) return;
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

void mxp_dist_gather(const mxp_dist *d, const double *send, const int *counts, double *recv) {
    if (single(d)) {
        if (counts[0]) memcpy(recv, send, (size_t)counts[0] * sizeof *recv);
        return;
    }
    int *displs = NULL;
    if (d->rank == 0) {
        displs = malloc((size_t)d->size * sizeof *displs);
        MXP_ASSERT(displs);
        long long off = 0;
        for (int r = 0; r < d->size; r++) {
            MXP_ASSERT(counts[r] >= 0 && off <= INT32_MAX);
            displs[r] = (int)off;
            off += counts[r];
        }
    }
    // MPI-3 takes const send buffers; older headers do not (the cast only drops the qualifier)
    MPI_Gatherv((void *)send, counts[d->rank], MPI_DOUBLE, recv, (int *)counts, displs, MPI_DOUBLE, 0,
                MPI_COMM_WORLD);
    free(displs);
}

int mxp_dist_any(const mxp_dist *d, int flag) {
    if (single(d)) return flag != 0;
    int in = flag != 0, out = 0;
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return out;
}

void mxp_dist_bcast_u64(const mxp_dist *d, uint64_t *v) {
    if (!single(d)) MPI_Bcast(v, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
}

void mxp_dist_barrier(const mxp_dist *d) {
    if (!single(d)) MPI_Barrier(MPI_COMM_WORLD);
}

#else  // built without MPI: always a process on its own

mxp_status mxp_dist_init(mxp_dist *d, mxp_err *err) {
    d->rank = 0;
    d->size = 1;
    int n = mxp_dist_env_size();
    if (n > 1)
        return mxp_fail(err, MXP_ERR_UNSUPPORTED,
                        "started as one of %d MPI processes, but this mixprec was built without MPI "
                        "(configure with -DMXP_MPI=ON and an MPI installed: Debian's libopenmpi-dev)",
                        n);
    return MXP_OK;
}

void mxp_dist_finalize(mxp_dist *d) {
    d->rank = 0;
    d->size = 1;
}

void mxp_dist_abort(const mxp_dist *d, int code) {
    (void)d;
    (void)code;
}

void mxp_dist_gather(const mxp_dist *d, const double *send, const int *counts, double *recv) {
    MXP_ASSERT(single(d));
    if (counts[0]) memcpy(recv, send, (size_t)counts[0] * sizeof *recv);
}

int mxp_dist_any(const mxp_dist *d, int flag) {
    MXP_ASSERT(single(d));
    return flag != 0;
}

void mxp_dist_bcast_u64(const mxp_dist *d, uint64_t *v) {
    (void)v;
    MXP_ASSERT(single(d));
}

void mxp_dist_barrier(const mxp_dist *d) { MXP_ASSERT(single(d)); }

#endif

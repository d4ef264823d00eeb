// mapfile.c: read-only file mappings for the loaders.
//
// Maps a regular file PROT_READ, MAP_PRIVATE, so pages are read lazily (a loader touching only
// the header of a 4 GB file reads only the header). Must not: map writable, accept
// directories or other non-regular files, or leak the descriptor. Note: if another process
// truncates the file while it is mapped, touching the lost pages raises SIGBUS; that cannot be
// checked here.
#include "io/tensors.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

mxp_status mxp_map_file(mxp_mapping *m, const char *path, mxp_err *err) {
    MXP_ASSERT(m && path);
    m->base = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mxp_fail(err, MXP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mxp_fail(err, MXP_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return mxp_fail(err, MXP_ERR_IO, "%s: is a directory, not a file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mxp_fail(err, MXP_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return mxp_fail(err, MXP_ERR_IO, "%s: file size %lld cannot be mapped", path,
                        (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        return MXP_OK;  // empty file: base NULL, size 0
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return mxp_fail(err, MXP_ERR_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(e));
    m->base = p;
    m->size = size;
    return MXP_OK;
}

int mxp_map_release(const mxp_mapping *m, const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)m->base;
    if (!m->base || a < base || n > m->size || a - base > m->size - n) return 0;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (a + page - 1) / page * page, hi = (a + n) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);  // advice: a failure changes nothing
    return 1;
}

void mxp_unmap(mxp_mapping *m) {
    if (!m) return;
    if (m->base && m->size) munmap((void *)(uintptr_t)m->base, m->size);
    m->base = NULL;
    m->size = 0;
}

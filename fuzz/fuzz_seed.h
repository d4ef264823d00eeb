// fuzz_seed.h: how the targets that build their valid inputs in code write them as seeds.
// With MXP_FUZZ_WRITE_SEEDS=DIR set, such a target writes its valid inputs into DIR during
// LLVMFuzzerInitialize; regenerate the committed seeds with
//   MXP_FUZZ_WRITE_SEEDS=fuzz/corpus/NAME BUILD_DIR/fuzz_NAME -runs=0
// Header-only.
#ifndef MXP_FUZZ_SEED_H
#define MXP_FUZZ_SEED_H

#include <stdio.h>
#include <stdlib.h>

static void fuzz_write_seed(const char *dir, const char *name, const void *data, size_t size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) {
        fprintf(stderr, "fuzz: cannot write the seed %s\n", path);
        abort();
    }
}

#endif

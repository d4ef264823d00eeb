// main.c: the mixprec command line. A thin client of include/mixprec.h.
#include <stdio.h>
#include <string.h>
#include "mixprec.h"

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: mixprec COMMAND ...\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) { printf("mixprec %s\n", mxp_version()); return 0; }
    fprintf(stderr, "mixprec: unknown command '%s'\n", argv[1]);
    return 2;
}

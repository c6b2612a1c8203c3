/* A page-fault-heavy loop: map 64 MiB, touch every page, unmap; repeat for the given
 * seconds and print the faults per second it reached. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "now.h"

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 5;
    size_t len = 64 << 20;
    long faults = 0;
    double start = now();
    while (now() - start < secs) {
        char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 1;
        /* MADV_NOHUGEPAGE: 4 KiB faults, not one 2 MiB fault per 512 pages. */
        madvise(p, len, MADV_NOHUGEPAGE);
        for (size_t i = 0; i < len; i += 4096) p[i] = 1;
        munmap(p, len);
        faults += len / 4096;
    }
    printf("%.0f\n", faults / (now() - start));
    return 0;
}

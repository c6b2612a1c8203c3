// First write of every page of fresh anonymous memory: ns per page (one minor fault
// each, 4 KiB pages). The same operation as syslens's lazy-init lab.
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    size_t len = (argc > 1 ? atol(argv[1]) : 16) << 20;
    int trials = argc > 2 ? atoi(argv[2]) : 15;
    long ps = sysconf(_SC_PAGESIZE);
    double per[256];
    for (int t = 0; t < trials + 2; t++) {
        volatile char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        madvise((void *)p, len, MADV_NOHUGEPAGE);
        long long t0 = now();
        for (size_t o = 0; o < len; o += ps) p[o] = 1;
        long long t1 = now();
        munmap((void *)p, len);
        if (t >= 2) per[t - 2] = (double)(t1 - t0) / (len / ps);
    }
    qsort(per, trials, sizeof per[0], cmp);
    printf("%.1f\n", per[trials / 2]);
    return 0;
}
